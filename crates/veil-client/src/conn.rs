//! The connection to a relay: QUIC with a pinned certificate (fingerprint in the address,
//! or trusted on first use and remembered), one stream per request, automatic reconnect
//! with backoff for short network faults.

use crate::error::{ClientError, Result};
use crate::home::Home;
use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use veil_format::identity::Identity;
use veil_quic::PinVerifier;
use veil_wire::{ErrorCode, MailboxMsg, Request, Response, Side, WireError, encode_frame};

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

/// Fewest chunk requests a transfer keeps in flight: enough for loopback and LANs, where
/// the bandwidth-delay product is small and the relay's store latency dominates.
pub const MIN_IN_FLIGHT: usize = 6;
/// Most chunk requests in flight unless told otherwise (the memory budget: one chunk of
/// memory each), reached on long fat paths only.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 24;

/// How long to keep retrying after the connection breaks, unless told otherwise.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// How to connect to a relay. Its `Debug` shows whether an identity is held, not which.
#[derive(Clone)]
pub struct ConnectOptions {
    /// An identity to prove when the relay asks for one (and only then).
    pub identity: Option<Identity>,
    /// How long to keep retrying after the connection breaks or the relay's store
    /// hiccups.
    pub retry_budget: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { identity: None, retry_budget: DEFAULT_RETRY_BUDGET }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("identity", &self.identity.is_some())
            .field("retry_budget", &self.retry_budget)
            .finish()
    }
}

/// A connection to one relay, re-established on demand.
pub struct Relay {
    addr: RelayAddr,
    home: Home,
    endpoint: quinn::Endpoint,
    verifier: Arc<PinVerifier>,
    client_cfg: quinn::ClientConfig,
    conn: tokio::sync::Mutex<Option<Conn>>,
    identity: Option<Identity>,
    retry_budget: Duration,
    /// The relay asked for our identity once ([`ErrorCode::AuthRequired`]): prove it on
    /// every later connection too.
    auth_wanted: std::sync::atomic::AtomicBool,
}

/// A live connection and whether it proved our identity.
struct Conn {
    quic: quinn::Connection,
    authenticated: bool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("addr", &self.addr.hostport).finish_non_exhaustive()
    }
}

impl Relay {
    /// Connect (pinning the certificate: from the address, else from `known_relays.json`,
    /// else trust on first use and remember), without proving an identity.
    pub async fn connect(addr: RelayAddr, home: Home) -> Result<Arc<Relay>> {
        Self::connect_as(addr, home, None).await
    }

    /// Connect like [`Relay::connect`], holding an identity to prove when the relay asks
    /// for one ([`ErrorCode::AuthRequired`]: an allow-list, per-identity quotas, our own
    /// inbox) and only then, so a relay that needs no identity never learns it.
    pub async fn connect_as(addr: RelayAddr, home: Home, identity: Option<Identity>) -> Result<Arc<Relay>> {
        Self::connect_with(addr, home, ConnectOptions { identity, ..ConnectOptions::default() }).await
    }

    /// Connect like [`Relay::connect_as`], with every option spelled out.
    pub async fn connect_with(addr: RelayAddr, home: Home, opts: ConnectOptions) -> Result<Arc<Relay>> {
        let known = home.known_relays()?;
        let expected = addr.pin.clone().or_else(|| known.get(&addr.hostport).cloned());
        let verifier = PinVerifier::new(expected);
        let client_cfg = veil_quic::client_config(verifier.clone(), veil_quic::client_transport())?;
        let remote = resolve(&addr.hostport)?;
        let bind: SocketAddr = match remote {
            SocketAddr::V4(a) if a.ip().is_loopback() => ([127, 0, 0, 1], 0).into(),
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(a) if a.ip().is_loopback() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = veil_quic::udp_socket(bind).map_err(|e| ClientError::io("binding", "udp socket", e))?;
        let endpoint = quinn::Endpoint::new(veil_quic::endpoint_config()?, None, socket, Arc::new(quinn::TokioRuntime))
            .map_err(|e| ClientError::io("starting", "QUIC endpoint", e))?;
        let relay = Arc::new(Relay {
            addr,
            home,
            endpoint,
            verifier,
            client_cfg,
            conn: tokio::sync::Mutex::new(None),
            identity: opts.identity,
            retry_budget: opts.retry_budget,
            auth_wanted: std::sync::atomic::AtomicBool::new(false),
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
        let nonce = match exchange(conn, &Request::AuthChallenge, None, 0).await? {
            (Response::Challenge { nonce }, _) => nonce,
            (Response::Error(e), _) => return Err(ClientError::Relay(e)),
            _ => return Err(ClientError::UnexpectedAnswer { request: "an authentication challenge" }),
        };
        let mut exporter = [0u8; veil_wire::AUTH_EXPORTER_LEN];
        conn.export_keying_material(&mut exporter, veil_wire::AUTH_EXPORTER_LABEL, b"")
            .map_err(|_| ClientError::Protocol("the TLS session exports no keying material".into()))?;
        let signature = id.signing_key().sign(&veil_wire::auth_message(&nonce, &exporter)).to_bytes();
        match exchange(conn, &Request::Auth { ed25519: id.public().ed25519, signature }, None, 0).await? {
            (Response::Ok, _) => Ok(()),
            (Response::Error(e), _) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::UnexpectedAnswer { request: "authentication" }),
        }
    }

    async fn dial(&self) -> Result<quinn::Connection> {
        let remote = resolve(&self.addr.hostport)?;
        let connecting = self
            .endpoint
            .connect_with(self.client_cfg.clone(), remote, veil_quic::SERVER_NAME)
            .map_err(|e| ClientError::Connect { addr: self.addr.hostport.clone(), reason: e.to_string() })?;
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(c)) => {
                if self.verifier.expected().is_none()
                    && let Some(fp) = self.verifier.seen()
                {
                    self.home.pin_relay(&self.addr.hostport, &fp)?;
                }
                Ok(c)
            }
            Ok(Err(e)) => {
                if let (Some(old), Some(new)) = (self.verifier.expected().map(str::to_string), self.verifier.seen())
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
            && c.quic.close_reason().is_none()
        {
            return Ok(c.quic.clone());
        }
        let deadline = tokio::time::Instant::now() + self.retry_budget;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.dial().await {
                Ok(c) => {
                    let mut authenticated = false;
                    if let Some(id) = self.identity.as_ref().filter(|_| self.auth_wanted.load(Ordering::Relaxed)) {
                        match self.authenticate(&c, id).await {
                            Ok(()) => authenticated = true,
                            Err(ClientError::Transport(e)) if tokio::time::Instant::now() + backoff <= deadline => {
                                tracing::debug!(error = %e, "authentication interrupted; reconnecting");
                                tokio::time::sleep(backoff).await;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    *g = Some(Conn { quic: c.clone(), authenticated });
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

    /// The relay answered [`ErrorCode::AuthRequired`]: prove our identity on the current
    /// connection (and every later one). False if we have no identity to prove or this
    /// connection proved it already (the request then fails with the relay's answer).
    async fn authenticate_on_demand(&self) -> Result<bool> {
        let Some(id) = &self.identity else { return Ok(false) };
        self.auth_wanted.store(true, Ordering::Relaxed);
        let mut g = self.conn.lock().await;
        let Some(c) = g.as_mut().filter(|c| c.quic.close_reason().is_none()) else {
            // Gone meanwhile: the next connection authenticates as it is made.
            return Ok(true);
        };
        if c.authenticated {
            return Ok(false);
        }
        self.authenticate(&c.quic, id).await?;
        c.authenticated = true;
        Ok(true)
    }

    /// One request/response exchange, retried on connection loss. A `Data` body is
    /// limited by what the request can legitimately bring back ([`body_limit`]).
    pub async fn request(&self, req: &Request, body: Option<Bytes>) -> Result<(Response, Option<Bytes>)> {
        self.request_capped(req, body, body_limit(req)).await
    }

    /// Like [`Relay::request`], with a `Data` body of at most `cap` bytes (a receiver
    /// that knows the exact size of a chunk asks for no more).
    pub async fn request_capped(
        &self,
        req: &Request,
        body: Option<Bytes>,
        cap: u32,
    ) -> Result<(Response, Option<Bytes>)> {
        let deadline = tokio::time::Instant::now() + self.retry_budget;
        let mut asked_auth = false;
        loop {
            match self.try_request(req, body.clone(), cap).await {
                // The relay's store hiccupped (S3 restarting, disk full for a moment): the
                // request is idempotent, so try again within the budget.
                Ok((Response::Error(e), _))
                    if e.code == ErrorCode::Storage && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(error = %e, "relay store unavailable; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok((Response::Error(e), b)) if e.code == ErrorCode::AuthRequired && !asked_auth => {
                    asked_auth = true;
                    if !self.authenticate_on_demand().await? {
                        return Ok((Response::Error(e), b));
                    }
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

    async fn try_request(&self, req: &Request, body: Option<Bytes>, cap: u32) -> Result<(Response, Option<Bytes>)> {
        let conn = self.connection().await?;
        exchange(&conn, req, body, cap).await
    }

    /// Open a mailbox stream (allocate a nameplate with None).
    pub async fn mailbox(&self, nameplate: Option<u32>, side: Side) -> Result<Mailbox> {
        let mut mb = self.open_mailbox(nameplate, side).await?;
        mb.opened().await?;
        Ok(mb)
    }

    /// Open the mailbox of a known nameplate without waiting for the relay's answer: the
    /// first messages travel with the request (one round trip saved), and the answer is
    /// read before the first incoming message. An error answer surfaces from
    /// [`Mailbox::recv`]; a redirect to another instance is followed there, and the
    /// messages sent so far are sent again on the new mailbox.
    pub async fn mailbox_pipelined(&self, nameplate: u32, side: Side) -> Result<Mailbox> {
        self.open_mailbox(Some(nameplate), side).await
    }

    /// Send the mailbox request; the answer is read by [`Mailbox::opened`].
    async fn open_mailbox(&self, nameplate: Option<u32>, side: Side) -> Result<Mailbox> {
        let conn = self.connection().await?;
        let (send, recv) = open_stream(&conn, &Request::Mailbox { nameplate, side }).await?;
        let unconfirmed = Some(Unconfirmed { home: self.home.clone(), asked: nameplate, side, sent: Vec::new() });
        Ok(Mailbox { nameplate: nameplate.unwrap_or(0), send, recv, _owner: None, unconfirmed })
    }

    /// Open a long-lived request stream (live streams): sends `req`, expects
    /// [`Response::Ok`], and hands back both halves.
    pub async fn open_request(&self, req: &Request) -> Result<(SendStream, RecvStream)> {
        match self.try_open_request(req).await {
            Err(ClientError::Relay(e)) if e.code == ErrorCode::AuthRequired => {
                if !self.authenticate_on_demand().await? {
                    return Err(ClientError::Relay(e));
                }
                self.try_open_request(req).await
            }
            r => r,
        }
    }

    async fn try_open_request(&self, req: &Request) -> Result<(SendStream, RecvStream)> {
        let conn = self.connection().await?;
        let (send, mut recv) = open_stream(&conn, req).await?;
        match read_frame::<Response>(&mut recv).await? {
            Some(Response::Ok) => Ok((send, recv)),
            Some(Response::Error(e)) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::UnexpectedAnswer { request: "a stream request" }),
        }
    }

    /// The connection's smoothed round-trip time now (zero when not connected).
    pub fn rtt(&self) -> Duration {
        self.conn.try_lock().ok().and_then(|g| g.as_ref().map(|c| c.quic.rtt())).unwrap_or(Duration::ZERO)
    }

    /// The chunk window of a transfer over this connection: at least [`MIN_IN_FLIGHT`]
    /// (or `max` if smaller), at most `max` chunks, following the path in between.
    pub(crate) fn window(self: &Arc<Self>, max: usize) -> crate::pipeline::Window {
        let me = self.clone();
        crate::pipeline::Window { min: MIN_IN_FLIGHT.min(max), max, rtt: Box::new(move || me.rtt()) }
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        if let Some(Conn { quic: c, .. }) = self.conn.lock().await.take() {
            let st = c.stats();
            tracing::debug!(
                mtu = st.path.current_mtu,
                lost = st.path.lost_packets,
                sent = st.path.sent_packets,
                "connection stats"
            );
            c.close(0u32.into(), b"bye");
            // Wait only until the CONNECTION_CLOSE frame has left (so the relay frees the
            // connection now rather than at its idle timeout), not for the draining
            // period `Endpoint::wait_idle` waits out: that cost every command 0.5 s.
            let t = tokio::time::Instant::now();
            while c.stats().frame_tx.connection_close == 0 && t.elapsed() < CLOSE_FLUSH {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
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
    /// Opened without waiting ([`Relay::mailbox_pipelined`]): the relay's answer is
    /// still to be read.
    unconfirmed: Option<Unconfirmed>,
}

/// What a mailbox needs until the relay's answer to its request is read.
#[derive(Debug)]
struct Unconfirmed {
    home: Home,
    /// The nameplate asked for (None: allocate one).
    asked: Option<u32>,
    side: Side,
    /// Messages sent meanwhile, sent again if the mailbox is elsewhere.
    sent: Vec<MailboxMsg>,
}

impl Mailbox {
    /// The relay instance holding this mailbox when it is not the one we connected to
    /// (a redirect): a live stream published behind this mailbox is on that instance.
    pub fn instance(&self) -> Option<Arc<Relay>> {
        self._owner.clone()
    }

    /// Send a frame.
    pub async fn send(&mut self, m: &MailboxMsg) -> Result<()> {
        if let Some(u) = &mut self.unconfirmed {
            u.sent.push(m.clone());
        }
        let frame = encode_frame(m)?;
        let written = self.send.write_all(&frame).await;
        if written.is_err()
            && let Some(u) = self.unconfirmed.take()
        {
            // A relay that refused the mailbox (a burned code, a nameplate in use) stops
            // reading: its answer says why.
            self.confirm(u).await?;
        }
        written.map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Next frame from the relay (None when the relay closed the mailbox).
    pub async fn recv(&mut self) -> Result<Option<MailboxMsg>> {
        if let Some(u) = self.unconfirmed.take() {
            self.confirm(u).await?;
        }
        read_frame(&mut self.recv).await
    }

    /// Wait for the relay's answer to the mailbox request (at once when it was read
    /// already): after this the nameplate is ours on every instance.
    pub async fn opened(&mut self) -> Result<()> {
        match self.unconfirmed.take() {
            Some(u) => self.confirm(u).await,
            None => Ok(()),
        }
    }

    /// Read the relay's answer to a mailbox opened without waiting.
    async fn confirm(&mut self, u: Unconfirmed) -> Result<()> {
        match read_frame::<Response>(&mut self.recv).await? {
            Some(Response::MailboxOpened { nameplate }) => {
                self.nameplate = nameplate;
                Ok(())
            }
            Some(Response::Redirect { addr, fingerprint }) => {
                // The mailbox lives on another instance sharing this relay's store; its
                // address and certificate came over our pinned connection.
                let target = RelayAddr::parse(&format!("{addr}#{fingerprint}"))?;
                tracing::debug!(%addr, "mailbox redirected");
                let other = Box::pin(Relay::connect(target, u.home)).await?;
                let mb = Box::pin(other.mailbox(u.asked, u.side)).await?;
                self.nameplate = mb.nameplate;
                self.send = mb.send;
                self.recv = mb.recv;
                self._owner = Some(other);
                for m in &u.sent {
                    let frame = encode_frame(m)?;
                    self.send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))?;
                }
                Ok(())
            }
            Some(Response::Error(e)) => Err(ClientError::Relay(e)),
            _ => Err(ClientError::UnexpectedAnswer { request: "a mailbox request" }),
        }
    }

    /// Release the nameplate.
    pub async fn close(mut self) {
        let _ = self.send(&MailboxMsg::Close).await;
        let _ = self.send.finish();
        // Give the relay a moment to read the close before the stream is dropped.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.recv.read_to_end(1 << 16)).await;
    }
}

/// Longest a client waits at exit for its goodbye to the relay to be sent.
const CLOSE_FLUSH: Duration = Duration::from_millis(50);

/// Longest a relay may leave a body read without sending a byte: past it the request
/// fails as a transport error, which [`Relay::request`] retries within its budget.
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the answer to a request, on top of the time the request itself asks
/// the relay to wait for data (`wait_secs`).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest `Data` body request `req` can bring back (0: it brings none).
pub fn body_limit(req: &Request) -> u32 {
    match req {
        Request::GetChunk { .. } => veil_wire::MAX_CHUNK_BODY,
        Request::GetManifest { .. } => veil_wire::MAX_MANIFEST_BODY,
        Request::BundleGet { .. } => veil_wire::MAX_BUNDLE_BODY,
        _ => 0,
    }
}

fn answer_deadline(req: &Request) -> Duration {
    let asked = match req {
        Request::GetChunk { wait_secs, .. } | Request::GetManifest { wait_secs, .. } => *wait_secs,
        _ => 0,
    };
    ANSWER_TIMEOUT + Duration::from_secs(asked.into())
}

/// One request/response exchange on `conn`; a `Data` body above `cap` is refused before
/// anything is allocated for it, and is read as it arrives (never allocated up front).
async fn exchange(
    conn: &quinn::Connection,
    req: &Request,
    body: Option<Bytes>,
    cap: u32,
) -> Result<(Response, Option<Bytes>)> {
    let (mut send, mut recv) = open_stream(conn, req).await?;
    if let Some(b) = body {
        // The relay may refuse before reading the body (limits); its answer says why.
        let _ = send.write_chunk(b).await;
    }
    let _ = send.finish();
    let resp: Response = tokio::time::timeout(answer_deadline(req), read_frame(&mut recv))
        .await
        .map_err(|_| ClientError::Transport("the relay did not answer in time".into()))??
        .ok_or_else(|| ClientError::Transport("relay closed the stream".into()))?;
    if let Response::Data { len } = resp {
        if len > cap {
            let _ = recv.stop(0u32.into());
            return Err(ClientError::BodyTooLarge { len, cap });
        }
        return Ok((resp, Some(read_body(&mut recv, len as usize).await?)));
    }
    Ok((resp, None))
}

/// Open a request stream and send `req` on it.
async fn open_stream(conn: &quinn::Connection, req: &Request) -> Result<(SendStream, RecvStream)> {
    let (mut send, recv) = conn.open_bi().await.map_err(|e| ClientError::Transport(e.to_string()))?;
    let frame = encode_frame(req)?;
    send.write_all(&frame).await.map_err(|e| ClientError::Transport(e.to_string()))?;
    Ok((send, recv))
}

/// Read exactly `len` body bytes, growing the buffer as they come, with a progress
/// deadline on every read.
async fn read_body(recv: &mut RecvStream, len: usize) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(len.min(1 << 20));
    while buf.len() < len {
        let want = len - buf.len();
        match tokio::time::timeout(PROGRESS_TIMEOUT, recv.read_chunk(want, true)).await {
            Err(_) => {
                let _ = recv.stop(0u32.into());
                return Err(ClientError::Transport(format!(
                    "the relay stopped sending ({} of {len} bytes in, nothing for {} s)",
                    buf.len(),
                    PROGRESS_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(ClientError::Transport(e.to_string())),
            Ok(Ok(None)) => {
                return Err(ClientError::Transport(format!("the relay sent {} of {len} bytes", buf.len())));
            }
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c.bytes),
        }
    }
    Ok(buf.freeze())
}

/// Read one length-prefixed frame; None at a clean end of stream.
pub async fn read_frame<T: for<'de> serde::Deserialize<'de>>(recv: &mut RecvStream) -> Result<Option<T>> {
    Ok(veil_quic::read_frame(recv).await?)
}

/// Read one frame's body (without its length prefix); `Ok(None)` at a clean end.
pub async fn read_frame_body(recv: &mut RecvStream) -> Result<Option<Vec<u8>>> {
    Ok(veil_quic::read_frame_body(recv).await?)
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
