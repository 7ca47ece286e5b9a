//! The web side (`--web ADDR`): the receive page and the ciphertext over HTTPS, so a link
//! opens in any browser. The page (built from `relay/web`, embedded at compile time)
//! decrypts in the browser; the key stays in the URL fragment, which browsers never send.
//!
//! The relay stays blind: these endpoints serve the same opaque bytes as QUIC, authorized
//! by the download capability (a header, never the URL), through the same
//! [`crate::state::Transfers`] checks (expiry, download limit, metrics) and the same
//! connection limits ([`crate::slots::Slots`]).
//!
//! | Method and path | Header | Answer |
//! |---|---|---|
//! | `GET /` (and the page's assets) | | the page |
//! | `GET /v1/transfers/{tid}` | `Veil-Download` | JSON status |
//! | `GET /v1/transfers/{tid}/manifest` | `Veil-Download` | sealed manifest (ranges) |
//! | `GET /v1/transfers/{tid}/chunks/{index}` | `Veil-Download` | sealed chunk (ranges) |
//! | `POST /v1/transfers/{tid}/receipt` | `Veil-Receipt` | `{"remaining": n or null}` |

use crate::Shared;
use crate::error::StartError;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use veil_wire::{ErrorCode, TransferId, WireError};

/// The page as built by `npm run build` in `relay/web` (committed, so `cargo build`
/// needs no npm).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", "text/html; charset=utf-8", include_bytes!("../web/dist/index.html")),
    ("/app.js", "text/javascript; charset=utf-8", include_bytes!("../web/dist/app.js")),
    ("/sw.js", "text/javascript; charset=utf-8", include_bytes!("../web/dist/sw.js")),
    ("/style.css", "text/css; charset=utf-8", include_bytes!("../web/dist/style.css")),
    ("/favicon.svg", "image/svg+xml", include_bytes!("../web/dist/favicon.svg")),
];

/// Every response's policy: scripts only from this origin (and WebAssembly, which
/// libsodium is), no inline script, no third-party origin, not framed by anyone (the page
/// itself frames its download URL, which its service worker answers), no referrer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; worker-src 'self'; frame-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// How long a chunk request waits for a chunk the sender is still uploading.
const CHUNK_WAIT: Duration = Duration::from_secs(20);
/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The web listener, bound before the server starts so its URL is known.
#[derive(Debug)]
pub struct WebListener {
    listener: TcpListener,
    /// Bound address.
    pub addr: SocketAddr,
    /// The public base URL (`--web-url`, else `https://ADDR/`), ending in `/`.
    pub url: String,
}

impl WebListener {
    /// Bind `addr`; `url` is the public base URL when the relay sits behind a name or a
    /// proxy.
    pub async fn bind(addr: SocketAddr, url: Option<String>) -> Result<WebListener, StartError> {
        let listener =
            TcpListener::bind(addr).await.map_err(|source| StartError::Bind { what: "web (HTTPS)", addr, source })?;
        let addr = listener.local_addr().map_err(|e| StartError::Setup(format!("web address: {e}")))?;
        let mut url = url.unwrap_or_else(|| format!("https://{addr}/"));
        if !url.starts_with("https://") || url.contains(['#', '?']) || url.chars().any(char::is_whitespace) {
            return Err(StartError::Setup(format!(
                "the web URL {url:?} must be an https:// URL without a query or fragment (links add #<ticket>)"
            )));
        }
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(WebListener { listener, addr, url })
    }

    /// Serve HTTPS with `tls` until the task is aborted; a connection with no traffic
    /// either way for `idle` is closed (so a client going quiet cannot keep its slot).
    pub fn serve(
        self,
        shared: Arc<Shared>,
        tls: Arc<rustls::ServerConfig>,
        idle: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let local = self.addr;
        let acceptor = TlsAcceptor::from(tls);
        let slots = shared.clone();
        let accept = tokio::spawn(accept_loop(self.listener, acceptor, slots, tx, idle));
        let app = router(shared).into_make_service_with_connect_info::<PeerAddr>();
        tokio::spawn(async move {
            let _accept = AbortOnDrop(accept);
            if let Err(e) = axum::serve(TlsListener { rx, local }, app).await {
                tracing::error!(error = %e, "web server stopped");
            }
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The rustls configuration of the web side: the relay's certificate, ring, HTTP/1.1.
pub fn tls_config(tls: &crate::tls::TlsIdentity) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(veil_quic::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Setup(format!("web TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(|e| StartError::Certificate(format!("loading the certificate for the web side: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accept TCP connections within the relay's connection limits, shake hands with a
/// deadline (each on its own task, so a slow client stalls nobody), hand them on.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    tx: tokio::sync::mpsc::Sender<(Conn, SocketAddr)>,
    idle: Duration,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "web accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = shared.slots.connection(peer.ip()) else {
            shared.metrics.reject("web_too_many_connections");
            continue;
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let conn = Conn { inner: tls, _permit: permit, idle, quiet: Box::pin(tokio::time::sleep(idle)) };
                    let _ = tx.send((conn, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "web TLS handshake failed"),
                Err(_) => tracing::debug!("web TLS handshake timed out"),
            }
        });
    }
}

/// What `axum::serve` accepts from: handshaken TLS connections.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop ended (the server is stopping): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The peer of a web connection (for the access log).
#[derive(Debug, Clone, Copy)]
struct PeerAddr(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// A TLS connection holding its connection slot until it closes, closed after `idle`
/// without traffic.
struct Conn {
    inner: TlsStream<TcpStream>,
    _permit: crate::slots::ConnPermit,
    idle: Duration,
    quiet: Pin<Box<tokio::time::Sleep>>,
}

impl Conn {
    /// After a poll of the stream: progress pushes the deadline back; waiting past it is
    /// an error that closes the connection.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.quiet.as_mut().reset(next);
                Poll::Ready(v)
            }
            Poll::Pending => match self.quiet.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "web connection idle")))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        me.watch(cx, r)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_write(cx, buf);
        me.watch(cx, r)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_flush(cx);
        me.watch(cx, r)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
        me.watch(cx, r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The routes of the web side.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut r = Router::new();
    for (path, _, _) in ASSETS {
        r = r.route(path, get(asset));
    }
    r.route("/v1/transfers/{tid}", get(status))
        .route("/v1/transfers/{tid}/manifest", get(manifest))
        .route("/v1/transfers/{tid}/chunks/{index}", get(chunk))
        .route("/v1/transfers/{tid}/receipt", post(receipt))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "NotFound", "no such page") })
        .layer(middleware::from_fn(headers_and_log))
        .with_state(shared)
}

async fn asset(method: Method, uri: axum::http::Uri) -> Response {
    let path = if uri.path() == "/index.html" { "/" } else { uri.path() };
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, body)) if method == Method::GET || method == Method::HEAD => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Bytes::from_static(body),
        )
            .into_response(),
        _ => problem(StatusCode::NOT_FOUND, "NotFound", "no such page"),
    }
}

/// Security headers on every response, and one access-log line per request: method,
/// path (transfer ids and chunk numbers only; capabilities travel in headers, the key
/// never reaches the relay), status and time.
async fn headers_and_log(ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let t = std::time::Instant::now();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    tracing::info!(
        target: "veil_relay::web",
        peer = %peer.ip(),
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        ms = t.elapsed().as_millis() as u64,
        "web request"
    );
    res
}

/// A JSON answer.
fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// A JSON error: `{"code": ..., "message": ...}`.
fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = json(serde_json::json!({ "code": code, "message": message }));
    *r.status_mut() = status;
    r
}

/// Why a web request failed: an HTTP status and a JSON body.
#[derive(Debug)]
struct WebError {
    status: StatusCode,
    code: String,
    message: String,
}

impl WebError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> WebError {
        WebError { status, code: code.to_string(), message: message.into() }
    }
}

impl From<WireError> for WebError {
    fn from(e: WireError) -> WebError {
        let status = match e.code {
            ErrorCode::BadRequest | ErrorCode::TooLarge => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden | ErrorCode::AuthRequired => StatusCode::FORBIDDEN,
            ErrorCode::Expired | ErrorCode::DownloadLimit => StatusCode::GONE,
            ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Timeout | ErrorCode::Storage => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        WebError { status, code: format!("{:?}", e.code), message: e.message }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        problem(self.status, &self.code, &self.message)
    }
}

fn tid(s: &str) -> Result<TransferId, WebError> {
    veil_wire::tid_from_hex(s).ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "NotFound", "no such transfer"))
}

/// A capability from header `name` (64 hex digits).
fn cap(headers: &HeaderMap, name: &str) -> Result<[u8; 32], WebError> {
    let missing =
        || WebError::new(StatusCode::FORBIDDEN, "Forbidden", format!("the {name} header is missing or malformed"));
    let v = headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    if v.len() != 64 {
        return Err(missing());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).map_err(|_| missing())?;
    Ok(out)
}

async fn status(State(s): State<Arc<Shared>>, Path(t): Path<String>, headers: HeaderMap) -> Result<Response, WebError> {
    let tid = tid(&t)?;
    let cap = cap(&headers, "veil-download")?;
    let st = s.transfers.status(&tid, &cap).await?;
    Ok(json(serde_json::json!({
        "manifest": st.manifest,
        "complete": st.complete,
        "downloads": st.downloads,
        "max_downloads": st.max_downloads,
        "expires_in_secs": st.expires_in_secs,
    })))
}

async fn manifest(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let tid = tid(&t)?;
    let cap = cap(&headers, "veil-download")?;
    let body = s.transfers.get_manifest(&tid, &cap, Duration::ZERO).await?;
    Ok(ranged(&headers, body))
}

async fn chunk(
    State(s): State<Arc<Shared>>,
    Path((t, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let tid = tid(&t)?;
    let index: u64 = index
        .parse()
        .ok()
        .filter(|i| *i <= veil_wire::MAX_CHUNK_INDEX)
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "NotFound", "no such chunk"))?;
    let cap = cap(&headers, "veil-download")?;
    let body = match s.transfers.get_chunk(&tid, &cap, index, CHUNK_WAIT).await? {
        crate::state::Body::Stored(b) => b,
        // HTTP readers get whole chunks: wait for the upload arriving to be stored.
        crate::state::Body::Arriving(p) => p.wait_stored().await.ok_or_else(|| {
            WebError::new(StatusCode::SERVICE_UNAVAILABLE, "Storage", "the upload of this chunk broke off; try again")
        })?,
    };
    Ok(ranged(&headers, body))
}

async fn receipt(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let tid = tid(&t)?;
    let cap = cap(&headers, "veil-receipt")?;
    let remaining = s.transfers.receipt(&tid, &cap).await?;
    Ok(json(serde_json::json!({ "remaining": remaining })))
}

/// `body`, or the part a single `Range: bytes=...` asks for (so a download can resume).
fn ranged(headers: &HeaderMap, body: Bytes) -> Response {
    let len = body.len() as u64;
    let octets = (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let ranges = (header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return ([octets, ranges], body).into_response();
    };
    match parse_range(spec, len) {
        Some(Some((start, end))) => {
            let part = body.slice(start as usize..=end as usize);
            let cr = format!("bytes {start}-{end}/{len}");
            let mut res = (StatusCode::PARTIAL_CONTENT, [octets, ranges], Body::from(part)).into_response();
            if let Ok(v) = HeaderValue::from_str(&cr) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            res
        }
        Some(None) => {
            let mut res = problem(StatusCode::RANGE_NOT_SATISFIABLE, "BadRequest", "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            res
        }
        // Several ranges or a malformed header: the whole body, as RFC 9110 allows.
        None => ([octets, ranges], body).into_response(),
    }
}

/// One byte range of a body of `len` bytes: `Some(Some((first, last)))`,
/// `Some(None)` when it cannot be satisfied, None when the header is not one range.
fn parse_range(spec: &str, len: u64) -> Option<Option<(u64, u64)>> {
    let r = spec.trim().strip_prefix("bytes=")?;
    if r.contains(',') {
        return None;
    }
    let (a, b) = r.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(None);
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() { u64::MAX } else { b.parse().ok()? };
        if start >= len || end < start {
            return Some(None);
        }
        (start, end.min(len - 1))
    };
    Some(Some(range))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Some((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(None));
        assert_eq!(parse_range("bytes=5-4", 100), Some(None));
        assert_eq!(parse_range("bytes=-0", 100), Some(None));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
    }
}
