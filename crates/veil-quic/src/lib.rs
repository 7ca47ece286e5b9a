//! # veil-quic: the QUIC layer of veil
//!
//! What the relay and the client library both need on top of quinn, written once:
//! the transport tuning and UDP socket setup measured for veil, length-prefixed
//! [`veil_wire`] frames over quinn streams, and the certificate pinning that clients use
//! instead of a certificate authority. It depends on quinn, rustls and `veil-wire` only,
//! so the relay stays blind (it never links the crypto crate).
//!
//! ```
//! let pin = veil_quic::PinVerifier::new(None);
//! let cfg = veil_quic::client_config(pin.clone(), veil_quic::client_transport()).unwrap();
//! # let _ = cfg;
//! assert!(pin.seen().is_none());
//! ```
#![forbid(unsafe_code)]

use quinn::{RecvStream, SendStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use veil_wire::FrameError;

/// Largest UDP payload accepted and probed for by MTU discovery (on loopback bigger
/// packets halve QUIC's CPU cost; on the Internet discovery finds what the path allows).
pub const MAX_UDP_PAYLOAD: u16 = 4000;
/// UDP socket buffers: the defaults lose thousands of packets per GiB on loopback.
pub const UDP_BUFFER: usize = 4 << 20;
/// The server name clients ask for (certificates are pinned, not matched by name).
pub const SERVER_NAME: &str = "veil-relay";

/// Errors of the QUIC layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// A frame was too large or did not decode.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended inside a frame or failed.
    #[error("stream read failed: {0}")]
    Read(String),
    /// Writing to the stream failed.
    #[error("stream write failed: {0}")]
    Write(String),
    /// TLS or QUIC configuration failed.
    #[error("QUIC setup: {0}")]
    Setup(String),
}

/// A UDP socket bound to `addr` with [`UDP_BUFFER`]-byte buffers (best effort: the kernel
/// caps them at `net.core.{r,w}mem_max`).
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// An endpoint configuration that accepts datagrams up to [`MAX_UDP_PAYLOAD`].
pub fn endpoint_config() -> Result<quinn::EndpointConfig, QuicError> {
    let mut cfg = quinn::EndpointConfig::default();
    cfg.max_udp_payload_size(MAX_UDP_PAYLOAD).map_err(|e| QuicError::Setup(e.to_string()))?;
    Ok(cfg)
}

/// Per-stream receive window: a whole sealed chunk (1 MiB of plaintext plus its
/// authentication tags and the request frame) fits in it, so a chunk never waits a round
/// trip for a window update at its tail (with exactly 1 MiB, a 500 Mbit/s, 150 ms path
/// ran at 44 % instead of 72 %). It also bounds how fragmented one stream's receive
/// buffer can get: quinn aborts a connection ("too many gaps in stream buffer") when a
/// stream holds more than 1024 separate pieces, and a stream can only hold what its
/// window lets the peer send, in pieces of at least a minimum-MTU packet's worth (over
/// 1100 bytes), so 1 MiB + 32 KiB allows at most about 980 pieces however the path loses
/// or reorders packets. Veil moves each chunk on its own stream and fills the path with
/// many streams at once, so a small per-stream window costs no throughput.
pub const STREAM_WINDOW: u32 = (1 << 20) + (32 << 10);
/// Connection receive window of a client, and what a relay grants a connection that is
/// moving a transfer ([`RELAY_BULK_WINDOW`]): 24 MiB covers twice the bandwidth-delay
/// product of 500 Mbit/s at 150 ms. It is credit, not memory: bytes are buffered only
/// while the application has not read them.
pub const CLIENT_WINDOW: u32 = 24 << 20;
/// What a relay grants every connection at first (requests, mailboxes, small transfers).
pub const RELAY_BASE_WINDOW: u32 = 2 << 20;
/// What a relay grants a connection once it moves chunks, within its window budget.
pub const RELAY_BULK_WINDOW: u32 = CLIENT_WINDOW;
/// Bytes a sender keeps unacknowledged on one connection.
pub const SEND_WINDOW: u64 = 24 << 20;

fn base_transport(receive_window: u32) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(STREAM_WINDOW.into());
    t.receive_window(receive_window.into());
    t.send_window(SEND_WINDOW);
    // Chunks in the order they were written: the first chunk finishes first (so a relay
    // can serve it on), instead of every chunk in flight advancing together.
    t.send_fairness(false);
    // BBR paces and models the path, so random loss is not read as congestion (Cubic
    // falls to 1 % of a 100 Mbit/s, 100 ms link at 1 % loss); see STREAM_WINDOW for why
    // quinn's "too many gaps" abort cannot hit veil's streams.
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    // Most paths are far shorter than quinn's default guess of 333 ms; the first
    // measurement replaces this anyway, it only times the first retransmissions.
    t.initial_rtt(Duration::from_millis(100));
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_UDP_PAYLOAD);
    t.mtu_discovery_config(Some(mtu));
    t
}

/// The relay's transport: 256 request streams per connection, no unidirectional
/// streams, connections idle for `idle` closed, [`RELAY_BASE_WINDOW`] of receive credit
/// (raised per connection while it moves a transfer).
pub fn server_transport(idle: Duration) -> quinn::TransportConfig {
    let mut t = base_transport(RELAY_BASE_WINDOW);
    t.max_concurrent_bidi_streams(256u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    if let Ok(idle) = quinn::IdleTimeout::try_from(idle) {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// The client's transport: keep-alives every 2 s, idle after 8 s (so a dead path is
/// noticed quickly and the client reconnects), [`CLIENT_WINDOW`] of receive credit.
pub fn client_transport() -> quinn::TransportConfig {
    let mut t = base_transport(CLIENT_WINDOW);
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(8)) {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// SHA-256 of a certificate (lowercase hex): what clients pin.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}

/// Accepts the server certificate whose [`fingerprint`] is pinned, or any certificate
/// when nothing is pinned yet (trust on first use: the caller remembers [`Self::seen`]).
/// Handshake signatures are always verified.
#[derive(Debug)]
pub struct PinVerifier {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinVerifier {
    /// Pin `expected` (lowercase hex), or trust on first use with None.
    pub fn new(expected: Option<String>) -> Arc<Self> {
        Arc::new(PinVerifier { expected, seen: Mutex::new(None), provider: provider() })
    }

    /// The pinned fingerprint.
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }

    /// The fingerprint of the last certificate presented.
    pub fn seen(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity.as_ref());
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(fp.clone());
        }
        match &self.expected {
            Some(e) if *e != fp => {
                Err(rustls::Error::General("relay certificate does not match the pinned fingerprint".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The crypto provider veil uses (ring; named explicitly because aws-sdk-s3 also
/// compiles aws-lc-rs in, and rustls refuses to guess between two).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration: TLS 1.3 only, the veil ALPN, certificates checked by `pin`.
pub fn client_config(
    pin: Arc<PinVerifier>,
    transport: quinn::TransportConfig,
) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(pin.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| QuicError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(pin)
        .with_no_client_auth();
    tls.alpn_protocols = vec![veil_wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| QuicError::Setup(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Read one frame's body (its 4-byte length prefix checked against the protocol limit);
/// `Ok(None)` when the stream finished cleanly before a frame began.
pub async fn read_frame_body(recv: &mut RecvStream) -> Result<Option<Vec<u8>>, QuicError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(QuicError::Read(e.to_string())),
    }
    let n = veil_wire::frame_len(len)?;
    let mut body = vec![0u8; n];
    recv.read_exact(&mut body).await.map_err(|e| QuicError::Read(e.to_string()))?;
    Ok(Some(body))
}

/// Read and decode one frame; `Ok(None)` at a clean end of the stream.
pub async fn read_frame<T: for<'de> serde::Deserialize<'de>>(recv: &mut RecvStream) -> Result<Option<T>, QuicError> {
    match read_frame_body(recv).await? {
        Some(body) => Ok(Some(veil_wire::decode_body(&body)?)),
        None => Ok(None),
    }
}

/// Encode and write one frame.
pub async fn write_frame<T: serde::Serialize>(send: &mut SendStream, value: &T) -> Result<(), QuicError> {
    let bytes = veil_wire::encode_frame(value)?;
    send.write_all(&bytes).await.map_err(|e| QuicError::Write(e.to_string()))
}
