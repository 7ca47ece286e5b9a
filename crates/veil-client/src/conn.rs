//! The connection to a relay: QUIC with a pinned certificate (fingerprint in the address,
//! or trusted on first use and remembered), one stream per request, automatic reconnect
//! with backoff for short network faults.

use crate::error::{ClientError, Result};
use crate::home::Home;
use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use veil_format::identity::Identity;
use veil_wire::{MailboxMsg, Request, Response, Side, WireError, encode_frame, frame_len};

/// Largest UDP payload we accept and probe for (MTU discovery finds what the path
/// allows; on loopback bigger packets halve QUIC's CPU cost).
pub const MAX_UDP_PAYLOAD: u16 = 4000;

/// Default relay when none is configured.
pub const DEFAULT_RELAY: &str = "127.0.0.1:4433";

/// A relay address: `host:port`, optionally `#<sha256 of the certificate>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAddr {
    /// `host:port`.
    pub hostport: String,
    /// Pinned certificate fingerprint (lowercase hex).
    pub pin: Option<String>,
}

impl RelayAddr {
    /// Parse `host:port[#fingerprint]`.
    pub fn parse(s: &str) -> Result<RelayAddr> {
        let s = s.trim().trim_start_matches("veil://");
        let (hp, pin) = match s.split_once('#') {
            Some((a, b)) => (a, Some(b.trim().to_lowercase().replace(':', ""))),
            None => (s, None),
        };
        if let Some(p) = &pin
            && (p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ClientError::Usage(format!("relay fingerprint must be 64 hex digits, got {p:?}")));
        }
        if !hp.contains(':') {
            return Err(ClientError::Usage(format!("relay address must be host:port, got {hp:?}")));
        }
        Ok(RelayAddr { hostport: hp.to_string(), pin })
    }
}

#[derive(Debug)]
struct PinVerifier {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let fp = hex::encode(Sha256::digest(end_entity.as_ref()));
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// How long to keep retrying after the connection breaks.
fn retry_budget() -> Duration {
    std::env::var("VEIL_RETRY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// A connection to one relay, re-established on demand.
pub struct Relay {
    addr: RelayAddr,
    home: Home,
    endpoint: quinn::Endpoint,
    verifier: Arc<PinVerifier>,
    client_cfg: quinn::ClientConfig,
    conn: tokio::sync::Mutex<Option<quinn::Connection>>,
    identity: Option<Identity>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("addr", &self.addr.hostport).finish_non_exhaustive()
    }
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

impl Relay {
    /// Connect (pinning the certificate: from the address, else from `known_relays.json`,
    /// else trust on first use and remember), without proving an identity.
    pub async fn connect(addr: RelayAddr, home: Home) -> Result<Arc<Relay>> {
        Self::connect_as(addr, home, None).await
    }

    /// Connect like [`Relay::connect`] and, with an identity, prove it on every
    /// (re)connection before any other request ([`Request::AuthChallenge`] /
    /// [`Request::Auth`]), so allow-lists, quotas and inboxes see who we are.
    pub async fn connect_as(addr: RelayAddr, home: Home, identity: Option<Identity>) -> Result<Arc<Relay>> {
        let known = home.known_relays()?;
        let expected = addr.pin.clone().or_else(|| known.get(&addr.hostport).cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(PinVerifier { expected, seen: Mutex::new(None), provider: provider.clone() });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        tls.alpn_protocols = vec![veil_wire::ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut client_cfg = quinn::ClientConfig::new(Arc::new(crypto));
        let mut t = quinn::TransportConfig::default();
        t.stream_receive_window((2u32 << 20).into());
        t.receive_window((8u32 << 20).into());
        t.send_window(8 << 20);
        t.keep_alive_interval(Some(Duration::from_secs(2)));
        if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(8)) {
            t.max_idle_timeout(Some(idle));
        }
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(MAX_UDP_PAYLOAD);
        t.mtu_discovery_config(Some(mtu));
        client_cfg.transport_config(Arc::new(t));
        let remote = resolve(&addr.hostport)?;
        let bind: SocketAddr = match remote {
            SocketAddr::V4(a) if a.ip().is_loopback() => ([127, 0, 0, 1], 0).into(),
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = udp_socket(bind).map_err(|e| ClientError::io("binding", "udp socket", e))?;
        let mut ep_cfg = quinn::EndpointConfig::default();
        ep_cfg.max_udp_payload_size(MAX_UDP_PAYLOAD).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let endpoint = quinn::Endpoint::new(ep_cfg, None, socket, Arc::new(quinn::TokioRuntime))
            .map_err(|e| ClientError::io("starting", "QUIC endpoint", e))?;
        let relay = Arc::new(Relay {
            addr,
            home,
            endpoint,
            verifier,
            client_cfg,
            conn: tokio::sync::Mutex::new(None),
            identity,
        });
        relay.connection().await?;
        Ok(relay)
    }

    /// The relay address.
    pub fn addr(&self) -> &RelayAddr {
        &self.addr
    }

    /// The identity this client proves to the relay, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Prove our identity on a fresh connection.
    async fn authenticate(&self, conn: &quinn::Connection, id: &Identity) -> Result<()> {
        use ed25519_dalek::Signer;
        let nonce = match exchange(conn, &Request::AuthChallenge, None).await? {
            (Response::Challenge { nonce }, _) => nonce,
            (Response::Error(e), _) => return Err(ClientError::Relay(e)),
            _ => return Err(ClientError::Protocol("unexpected answer to an authentication challenge".into())),
        };
        let signature = id.signing_key().sign(&veil_wire::auth_message(&nonce)).to_bytes();
        match exchange(conn, &Request::Auth { ed25519: id.public().ed25519, signature }, None).await? {
            (Response::Ok, _) => Ok(()),
            (Response::Error(e), _) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::Protocol("unexpected answer to authentication".into())),
        }
    }

    async fn dial(&self) -> Result<quinn::Connection> {
        let remote = resolve(&self.addr.hostport)?;
        let connecting = self
            .endpoint
            .connect_with(self.client_cfg.clone(), remote, "veil-relay")
            .map_err(|e| ClientError::Connect { addr: self.addr.hostport.clone(), reason: e.to_string() })?;
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(c)) => {
                if self.verifier.expected.is_none()
                    && let Some(fp) = self.verifier.seen.lock().ok().and_then(|s| s.clone())
                {
                    self.home.pin_relay(&self.addr.hostport, &fp)?;
                }
                Ok(c)
            }
            Ok(Err(e)) => {
                if let (Some(old), Some(new)) =
                    (self.verifier.expected.clone(), self.verifier.seen.lock().ok().and_then(|s| s.clone()))
                    && old != new
                {
                    return Err(ClientError::CertificateChanged {
                        addr: self.addr.hostport.clone(),
                        old,
                        new,
                        known: self.home.path("known_relays.json").display().to_string(),
                    });
                }
                Err(ClientError::Connect { addr: self.addr.hostport.clone(), reason: e.to_string() })
            }
            Err(_) => {
                Err(ClientError::Connect { addr: self.addr.hostport.clone(), reason: "no answer within 10 s".into() })
            }
        }
    }

    /// The current connection, reconnecting (with backoff, within the retry budget) if needed.
    pub async fn connection(&self) -> Result<quinn::Connection> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref()
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let deadline = tokio::time::Instant::now() + retry_budget();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.dial().await {
                Ok(c) => {
                    if let Some(id) = &self.identity {
                        match self.authenticate(&c, id).await {
                            Ok(()) => {}
                            Err(ClientError::Transport(e)) if tokio::time::Instant::now() + backoff <= deadline => {
                                tracing::debug!(error = %e, "authentication interrupted; reconnecting");
                                tokio::time::sleep(backoff).await;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    *g = Some(c.clone());
                    return Ok(c);
                }
                Err(e @ ClientError::CertificateChanged { .. }) => return Err(e),
                Err(e) => {
                    if tokio::time::Instant::now() + backoff > deadline {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                }
            }
        }
    }

    /// One request/response exchange, retried on connection loss.
    pub async fn request(&self, req: &Request, body: Option<Bytes>) -> Result<(Response, Option<Bytes>)> {
        let deadline = tokio::time::Instant::now() + retry_budget();
        loop {
            match self.try_request(req, body.clone()).await {
                // The relay's store hiccupped (S3 restarting, disk full for a moment): the
                // request is idempotent, so try again within the budget.
                Ok((Response::Error(e), _))
                    if e.code == veil_wire::ErrorCode::Storage && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(error = %e, "relay store unavailable; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(r) => return Ok(r),
                Err(ClientError::Transport(e)) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(ClientError::Transport(e));
                    }
                    tracing::debug!(error = %e, "request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`Relay::request`], but a relay error comes back as `Err(ClientError::Relay)`
    /// and anything other than the expected shape is a protocol error.
    pub async fn call(&self, req: &Request, body: Option<Bytes>) -> Result<(Response, Option<Bytes>)> {
        match self.request(req, body).await? {
            (Response::Error(e), _) => Err(ClientError::Relay(e)),
            r => Ok(r),
        }
    }

    async fn try_request(&self, req: &Request, body: Option<Bytes>) -> Result<(Response, Option<Bytes>)> {
        let conn = self.connection().await?;
        exchange(&conn, req, body).await
    }

    /// Open a mailbox stream (allocate a nameplate with None).
    pub async fn mailbox(&self, nameplate: Option<u32>, side: Side) -> Result<Mailbox> {
        let conn = self.connection().await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let frame =
            encode_frame(&Request::Mailbox { nameplate, side }).map_err(|e| ClientError::Protocol(e.to_string()))?;
        send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        match read_frame::<Response>(&mut recv).await? {
            Some(Response::MailboxOpened { nameplate }) => Ok(Mailbox { nameplate, send, recv, _owner: None }),
            Some(Response::Redirect { addr, fingerprint }) => {
                // The mailbox lives on another instance sharing this relay's store; its
                // address and certificate came over our pinned connection.
                let target = RelayAddr::parse(&format!("{addr}#{fingerprint}"))?;
                tracing::debug!(%addr, "mailbox redirected");
                let other = Box::pin(Relay::connect(target, self.home.clone())).await?;
                let mut mb = Box::pin(other.mailbox(nameplate, side)).await?;
                mb._owner = Some(other);
                Ok(mb)
            }
            Some(Response::Error(e)) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::Protocol("unexpected answer to a mailbox request".into())),
        }
    }

    /// Open a long-lived request stream (live streams): sends `req`, expects
    /// [`Response::Ok`], and hands back both halves.
    pub async fn open_request(&self, req: &Request) -> Result<(SendStream, RecvStream)> {
        let conn = self.connection().await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let frame = encode_frame(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        match read_frame::<Response>(&mut recv).await? {
            Some(Response::Ok) => Ok((send, recv)),
            Some(Response::Error(e)) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::Protocol("unexpected answer".into())),
        }
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        if let Some(c) = self.conn.lock().await.take() {
            let st = c.stats();
            tracing::debug!(
                mtu = st.path.current_mtu,
                lost = st.path.lost_packets,
                sent = st.path.sent_packets,
                "connection stats"
            );
            c.close(0u32.into(), b"bye");
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await;
    }
}

/// An open mailbox on the relay.
#[derive(Debug)]
pub struct Mailbox {
    /// Our nameplate.
    pub nameplate: u32,
    send: SendStream,
    recv: RecvStream,
    /// The instance holding the mailbox, when we were redirected there.
    _owner: Option<Arc<Relay>>,
}

impl Mailbox {
    /// The relay instance holding this mailbox when it is not the one we connected to
    /// (a redirect): a live stream published behind this mailbox is on that instance.
    pub fn instance(&self) -> Option<Arc<Relay>> {
        self._owner.clone()
    }

    /// Send a frame.
    pub async fn send(&mut self, m: &MailboxMsg) -> Result<()> {
        let frame = encode_frame(m).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Next frame from the relay (None when the relay closed the mailbox).
    pub async fn recv(&mut self) -> Result<Option<MailboxMsg>> {
        read_frame(&mut self.recv).await
    }

    /// Release the nameplate.
    pub async fn close(mut self) {
        let _ = self.send(&MailboxMsg::Close).await;
        let _ = self.send.finish();
        // Give the relay a moment to read the close before the stream is dropped.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.recv.read_to_end(1 << 16)).await;
    }
}

/// One request/response exchange on `conn`.
async fn exchange(conn: &quinn::Connection, req: &Request, body: Option<Bytes>) -> Result<(Response, Option<Bytes>)> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Transport(e.to_string()))?;
    let frame = encode_frame(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))?;
    if let Some(b) = body {
        // The relay may refuse before reading the body (limits); its answer says why.
        let _ = send.write_chunk(b).await;
    }
    let _ = send.finish();
    let resp: Response =
        read_frame(&mut recv).await?.ok_or_else(|| ClientError::Transport("relay closed the stream".into()))?;
    if let Response::Data { len } = resp {
        let mut buf = BytesMut::zeroed(len as usize);
        recv.read_exact(&mut buf).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        return Ok((resp, Some(buf.freeze())));
    }
    Ok((resp, None))
}

/// Read one length-prefixed frame; None at a clean end of stream.
pub async fn read_frame<T: for<'de> serde::Deserialize<'de>>(recv: &mut RecvStream) -> Result<Option<T>> {
    match read_frame_body(recv).await? {
        Some(body) => veil_wire::decode_body(&body).map(Some).map_err(|e| ClientError::Protocol(e.to_string())),
        None => Ok(None),
    }
}

/// Read one frame's body (without its length prefix); `Ok(None)` at a clean end.
pub async fn read_frame_body(recv: &mut RecvStream) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(ClientError::Transport(e.to_string())),
    }
    let n = frame_len(len).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let mut body = vec![0u8; n];
    recv.read_exact(&mut body).await.map_err(|e| ClientError::Transport(e.to_string()))?;
    Ok(Some(body))
}

fn resolve(hostport: &str) -> Result<SocketAddr> {
    hostport
        .to_socket_addrs()
        .map_err(|e| ClientError::Connect { addr: hostport.to_string(), reason: e.to_string() })?
        .next()
        .ok_or_else(|| ClientError::Connect { addr: hostport.to_string(), reason: "no address".into() })
}

/// Map a relay error to the client error, keeping the code.
pub fn relay_err(e: WireError) -> ClientError {
    ClientError::Relay(e)
}
