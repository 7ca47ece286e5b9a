//! `quic-forward`: the practical ceiling for `benches/transfer.sh`.
//!
//! The same two QUIC hops as veil (sender -> relay -> receiver) with nothing else: no
//! end-to-end encryption (only QUIC's own TLS), no chunking, no storage on the relay, no
//! resume. The QUIC tuning is veil's (`crates/veil-client/src/conn.rs`,
//! `relay/src/quic.rs`): 4 MiB UDP socket buffers, 16 MiB stream / 64 MiB connection
//! windows, MTU discovery up to 16000 bytes, rustls with the ring provider named
//! explicitly, TLS 1.3 only.
//!
//! Design: each client opens **one** bidirectional stream and writes a small header (role
//! and transfer id). The relay pairs a sender's stream with the receiver's stream for the
//! same id (either may arrive first) and pipes bytes both ways without copying
//! (`read_chunk` -> `write_chunk`): file data from sender to receiver, and the receiver's
//! one-line acknowledgement back, so the sender exits only once the receiver has the whole
//! file on disk. One stream keeps the ceiling simple; on loopback flow-control windows and
//! stream counts do not matter (measured on loopback), per-packet cost does.
//!
//! The receiver fsyncs the output file before acknowledging, as veil's receiver does.
//!
//! Note on MTU: quinn caps MTU discovery at the peer's `max_udp_payload_size` transport
//! parameter, which comes from `EndpointConfig::max_udp_payload_size` (default 1472). veil
//! keeps that default, so its `upper_bound(16_000)` has no effect and packets stay at 1472
//! bytes; this tool does the same unless `--max-udp-payload N` is given (to all three
//! processes) to measure what larger packets would change.
//!
//! **Benchmark-only**: the client accepts any relay certificate (the handshake signature
//! is still checked, so the TLS cost is real). Never use this to move real data.
//!
//! ```text
//! quic-forward relay --listen 127.0.0.1:0
//! quic-forward send  --relay ADDR --file F   [--id ID]
//! quic-forward recv  --relay ADDR --out F    [--id ID]
//! ```

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// ALPN of this tool (deliberately not veil's).
const ALPN: &[u8] = b"veil-bench-forward/1";
/// Stream header role bytes.
const ROLE_SEND: u8 = b'S';
const ROLE_RECV: u8 = b'R';
/// The receiver's acknowledgement.
const ACK: &[u8] = b"ok\n";
/// File I/O block size.
const BLOCK: usize = 1 << 20;
/// UDP socket buffers, as veil.
const UDP_BUFFER: usize = 4 << 20;

#[derive(Debug)]
enum Command {
    Relay { listen: SocketAddr },
    Send { relay: SocketAddr, file: PathBuf, id: String },
    Recv { relay: SocketAddr, out: PathBuf, id: String },
}

const USAGE: &str = "usage:
  quic-forward relay --listen ADDR             [--max-udp-payload N]
  quic-forward send --relay ADDR --file FILE [--id ID] [--max-udp-payload N]
  quic-forward recv --relay ADDR --out FILE  [--id ID] [--max-udp-payload N]

--max-udp-payload sets quinn's EndpointConfig::max_udp_payload_size (default 1472, as veil),
which caps MTU discovery: give the same value to all three to allow jumbo packets.";

/// The command and the endpoint configuration (`--max-udp-payload`).
fn parse_args() -> Result<(Command, quinn::EndpointConfig)> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or_else(|| anyhow!("{USAGE}"))?;
    let mut opts: HashMap<String, String> = HashMap::new();
    while let Some(flag) = args.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| anyhow!("unexpected argument {flag:?}\n{USAGE}"))?;
        let value = args.next().ok_or_else(|| anyhow!("--{name} needs a value\n{USAGE}"))?;
        opts.insert(name.to_string(), value);
    }
    let mut take = |name: &str| opts.remove(name).ok_or_else(|| anyhow!("missing --{name}\n{USAGE}"));
    let addr = |s: String| s.parse::<SocketAddr>().with_context(|| format!("bad address {s:?}"));
    let mut endpoint = quinn::EndpointConfig::default();
    if let Ok(n) = take("max-udp-payload") {
        let n: u16 = n.parse().with_context(|| format!("bad --max-udp-payload {n:?}"))?;
        endpoint.max_udp_payload_size(n).map_err(|e| anyhow!("--max-udp-payload {n}: {e}"))?;
    }
    let cmd = match mode.as_str() {
        "relay" => Command::Relay { listen: addr(take("listen")?)? },
        "send" => Command::Send {
            relay: addr(take("relay")?)?,
            file: take("file")?.into(),
            id: take("id").unwrap_or_else(|_| "bench".into()),
        },
        "recv" => Command::Recv {
            relay: addr(take("relay")?)?,
            out: take("out")?.into(),
            id: take("id").unwrap_or_else(|_| "bench".into()),
        },
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        other => bail!("unknown mode {other:?}\n{USAGE}"),
    };
    if let Some(k) = opts.keys().next() {
        bail!("unknown option --{k}\n{USAGE}");
    }
    Ok((cmd, endpoint))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("quic-forward: error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn run() -> Result<()> {
    let (cmd, endpoint) = parse_args()?;
    match cmd {
        Command::Relay { listen } => relay(endpoint, listen).await,
        Command::Send { relay, file, id } => send(endpoint, relay, file, id).await,
        Command::Recv { relay, out, id } => recv(endpoint, relay, out, id).await,
    }
}

// ---------------------------------------------------------------------------------------
// QUIC setup (veil's tuning)

fn udp_socket(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort, as veil: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&addr.into()).with_context(|| format!("binding UDP {addr}"))?;
    Ok(s.into())
}

fn transport(idle: Duration, keep_alive: Option<Duration>) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(256u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window((16u32 << 20).into());
    t.receive_window((64u32 << 20).into());
    t.send_window(64 << 20);
    t.keep_alive_interval(keep_alive);
    if let Ok(idle) = quinn::IdleTimeout::try_from(idle) {
        t.max_idle_timeout(Some(idle));
    }
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(16_000);
    t.mtu_discovery_config(Some(mtu));
    // QUIC_FORWARD_CC=bbr compares quinn's BBR with its default, Cubic (benches/wan.sh).
    match std::env::var("QUIC_FORWARD_CC").as_deref() {
        Ok("bbr") => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
        }
        Ok("newreno") => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()));
        }
        _ => {}
    }
    t
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config() -> Result<quinn::ServerConfig> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["quic-forward".to_string()]).context("generating a certificate")?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 setup")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("loading the certificate")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC TLS setup")?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport(Duration::from_secs(60), None)));
    Ok(cfg)
}

/// Accepts any certificate (benchmark only) but checks the handshake signature.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to the relay and opens the one stream, header written.
async fn connect(
    endpoint_cfg: quinn::EndpointConfig,
    relay: SocketAddr,
    role: u8,
    id: &str,
) -> Result<(quinn::Endpoint, quinn::Connection, SendStream, RecvStream)> {
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 setup")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).context("QUIC TLS setup")?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport(Duration::from_secs(8), Some(Duration::from_secs(2)))));
    let bind: SocketAddr =
        if relay.is_ipv4() { ([127, 0, 0, 1], 0).into() } else { (std::net::Ipv6Addr::LOCALHOST, 0).into() };
    let endpoint = quinn::Endpoint::new(endpoint_cfg, None, udp_socket(bind)?, Arc::new(quinn::TokioRuntime))
        .context("starting the QUIC endpoint")?;
    let conn =
        endpoint.connect_with(cfg, relay, "quic-forward")?.await.with_context(|| format!("connecting to {relay}"))?;
    let (mut send, recv) = conn.open_bi().await?;
    let id = id.as_bytes();
    let id_len = u8::try_from(id.len()).map_err(|_| anyhow!("--id is longer than 255 bytes"))?;
    let mut header = vec![role, id_len];
    header.extend_from_slice(id);
    send.write_all(&header).await?;
    Ok((endpoint, conn, send, recv))
}

/// Closes the connection. The data is already acknowledged end to end, so this only
/// gives the endpoint a moment to send CONNECTION_CLOSE; waiting for the full draining
/// period (3 PTO, about 80 ms on loopback because PTO includes the 25 ms max ACK delay)
/// would add latency without changing the outcome.
async fn close(endpoint: quinn::Endpoint, conn: quinn::Connection) {
    conn.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_millis(20), endpoint.wait_idle()).await;
}

/// MTU, datagrams and losses of the connection, for the log line.
fn path_stats(conn: &quinn::Connection) -> String {
    let s = conn.stats();
    format!(
        "mtu {}, {} datagrams out / {} in, {} lost, rtt {:?}",
        s.path.current_mtu, s.udp_tx.datagrams, s.udp_rx.datagrams, s.path.lost_packets, s.path.rtt
    )
}

fn mb_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------
// Sender

async fn send(endpoint: quinn::EndpointConfig, relay: SocketAddr, file: PathBuf, id: String) -> Result<()> {
    let started = Instant::now();
    let mut f = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
    let (endpoint, conn, mut send, mut recv) = connect(endpoint, relay, ROLE_SEND, &id).await?;

    // A blocking reader thread feeds 1 MiB blocks; the QUIC task only writes them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        loop {
            let mut buf = BytesMut::zeroed(BLOCK);
            let mut filled = 0;
            while filled < BLOCK {
                match f.read(&mut buf[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 {
                return Ok(());
            }
            buf.truncate(filled);
            if tx.blocking_send(buf.freeze()).is_err() {
                return Ok(());
            }
        }
    });
    let mut total = 0u64;
    while let Some(block) = rx.recv().await {
        total += block.len() as u64;
        send.write_chunk(block).await?;
    }
    reader.await??;
    send.finish()?;
    let ack = recv.read_to_end(64).await.context("waiting for the receiver's acknowledgement")?;
    if ack != ACK {
        bail!("the receiver did not acknowledge the transfer");
    }
    let took = started.elapsed();
    let stats = path_stats(&conn);
    close(endpoint, conn).await;
    eprintln!(
        "quic-forward: sent {total} bytes in {:.3} s ({:.1} MB/s; {stats})",
        took.as_secs_f64(),
        mb_per_s(total, took)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Receiver

async fn recv(endpoint: quinn::EndpointConfig, relay: SocketAddr, out: PathBuf, id: String) -> Result<()> {
    let started = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    let (endpoint, conn, mut send, mut recv) = connect(endpoint, relay, ROLE_RECV, &id).await?;

    // Fill 1 MiB blocks from the stream; a blocking writer thread writes them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<BytesMut>(4);
    let writer = tokio::task::spawn_blocking(move || -> Result<()> {
        while let Some(block) = rx.blocking_recv() {
            f.write_all(&block)?;
        }
        f.sync_all()?;
        Ok(())
    });
    let mut total = 0u64;
    loop {
        let mut buf = BytesMut::zeroed(BLOCK);
        let mut filled = 0;
        while filled < BLOCK {
            match recv.read(&mut buf[filled..]).await? {
                Some(n) => filled += n,
                None => break,
            }
        }
        if filled == 0 {
            break;
        }
        total += filled as u64;
        buf.truncate(filled);
        if tx.send(buf).await.is_err() {
            break;
        }
    }
    drop(tx);
    writer.await??;
    send.write_all(ACK).await?;
    send.finish()?;
    // Wait until the relay has read the acknowledgement before closing the connection.
    let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
    let took = started.elapsed();
    let stats = path_stats(&conn);
    close(endpoint, conn).await;
    eprintln!(
        "quic-forward: received {total} bytes in {:.3} s ({:.1} MB/s; {stats})",
        took.as_secs_f64(),
        mb_per_s(total, took)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Relay

/// A stream waiting for its peer.
struct Waiting {
    role: u8,
    send: SendStream,
    recv: RecvStream,
}

type Rendezvous = Arc<Mutex<HashMap<String, Waiting>>>;

async fn relay(endpoint_cfg: quinn::EndpointConfig, listen: SocketAddr) -> Result<()> {
    let endpoint =
        quinn::Endpoint::new(endpoint_cfg, Some(server_config()?), udp_socket(listen)?, Arc::new(quinn::TokioRuntime))
            .context("starting the QUIC endpoint")?;
    println!("quic-forward relay listening on {}", endpoint.local_addr()?);
    let waiting: Rendezvous = Arc::new(Mutex::new(HashMap::new()));
    let accept = {
        let endpoint = endpoint.clone();
        async move {
            while let Some(incoming) = endpoint.accept().await {
                let waiting = waiting.clone();
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => handle_conn(conn, waiting).await,
                        Err(e) => eprintln!("quic-forward relay: handshake failed: {e}"),
                    }
                });
            }
        }
    };
    tokio::select! {
        () = accept => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    endpoint.close(0u32.into(), b"relay shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(())
}

async fn handle_conn(conn: quinn::Connection, waiting: Rendezvous) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_stream(send, recv, waiting).await {
                eprintln!("quic-forward relay: {e:#}");
            }
        });
    }
}

async fn handle_stream(send: SendStream, mut recv: RecvStream, waiting: Rendezvous) -> Result<()> {
    let mut head = [0u8; 2];
    recv.read_exact(&mut head).await.context("reading the stream header")?;
    let role = head[0];
    if role != ROLE_SEND && role != ROLE_RECV {
        bail!("unknown role byte {role}");
    }
    let mut id = vec![0u8; usize::from(head[1])];
    recv.read_exact(&mut id).await.context("reading the stream header")?;
    let id = String::from_utf8_lossy(&id).into_owned();
    let me = Waiting { role, send, recv };
    let peer = {
        let mut map = waiting.lock().map_err(|_| anyhow!("rendezvous lock poisoned"))?;
        match map.remove(&id) {
            Some(other) if other.role != role => other,
            // Nobody yet, or a second stream with the same role: the newest one waits.
            _ => {
                map.insert(id, me);
                return Ok(());
            }
        }
    };
    let (sender, receiver) = if role == ROLE_SEND { (me, peer) } else { (peer, me) };
    let data = pipe(sender.recv, receiver.send);
    let ack = pipe(receiver.recv, sender.send);
    let (data, ack) = tokio::join!(data, ack);
    data.context("forwarding data")?;
    ack.context("forwarding the acknowledgement")?;
    Ok(())
}

/// Copies one direction without copying bytes (QUIC frames are passed on as they come).
async fn pipe(mut from: RecvStream, mut to: SendStream) -> Result<u64> {
    let mut n = 0u64;
    while let Some(chunk) = from.read_chunk(usize::MAX, true).await? {
        n += chunk.bytes.len() as u64;
        to.write_chunk(chunk.bytes).await?;
    }
    to.finish()?;
    // Keep the stream open until the peer has everything.
    let _ = to.stopped().await;
    Ok(n)
}
