//! # veil-relay: the blind relay
//!
//! A QUIC server that stores and forwards ciphertext it cannot read, with rendezvous
//! mailboxes for one-time codes. It depends on the wire protocol (`veil-wire`) and the
//! storage trait (`veil-store`), never on the crypto core: it is blind by construction,
//! and CI checks that with `cargo tree`.
//!
//! The binary is a thin shell over [`Server::spawn`]; tests start the server in-process
//! or as a process.
#![forbid(unsafe_code)]

pub mod access;
mod allow_list;
pub mod cut_through;
pub mod error;
pub mod http;
pub mod inbox;
pub mod keys;
mod live;
pub mod metrics;
pub mod quic;
pub mod record;
pub mod rendezvous;
pub mod slots;
pub mod state;
pub mod streams;
pub mod tls;
pub mod web;

pub use error::StartError;
use metrics::Metrics;
use rendezvous::Rendezvous;
use state::{TransferLimits, Transfers};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use veil_store::Store;

/// Everything the relay can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// HTTP listen address (health, metrics); None disables it.
    pub http: Option<SocketAddr>,
    /// Folder for the TLS identity (and the filesystem store by default).
    pub data_dir: PathBuf,
    /// A real certificate chain (PEM) and key instead of the self-signed one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Transfer limits.
    pub limits: TransferLimits,
    /// Most QUIC connections at once.
    pub max_connections: usize,
    /// Most QUIC connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Receive credit (bytes) the relay grants, beyond every connection's base window,
    /// to connections uploading chunks: [`veil_quic::RELAY_BULK_WINDOW`] each, for as
    /// many as fit (see [`slots::Slots::widen`]).
    pub window_budget: u64,
    /// Close connections idle this long.
    pub idle_timeout: Duration,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
    /// Address clients use to reach this instance (for redirects between instances
    /// sharing a store); defaults to the bound QUIC address.
    pub public_addr: Option<String>,
    /// Allow-list and quotas.
    pub access: access::AccessConfig,
    /// Limits on live streams.
    pub streams: streams::StreamLimits,
    /// HTTPS address of the web page that opens links in a browser; None: no page.
    pub web: Option<SocketAddr>,
    /// Public base URL of that page (behind a proxy or a name); defaults to
    /// `https://<bound web address>/`.
    pub web_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: PathBuf::from("veil-data"),
            cert: None,
            limits: TransferLimits::default(),
            max_connections: 4096,
            max_connections_per_ip: 64,
            window_budget: 4 << 30,
            idle_timeout: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            public_addr: None,
            access: access::AccessConfig::default(),
            streams: streams::StreamLimits::default(),
            web: None,
            web_url: None,
        }
    }
}

/// State shared by all tasks.
#[derive(Debug)]
pub struct Shared {
    /// Transfers.
    pub transfers: Transfers,
    /// Nameplates and mailboxes.
    pub rendezvous: Arc<Rendezvous>,
    /// Live streams.
    pub streams: streams::Streams,
    /// Inboxes of identities.
    pub inboxes: inbox::Inboxes,
    /// Who may upload, quotas.
    pub access: access::Access,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Open connections and mailboxes.
    pub slots: Arc<slots::Slots>,
    /// Base URL of the web page, when the relay serves one (`--web`).
    pub web_url: Option<String>,
}

pub use slots::{MAX_MAILBOXES_PER_CONN, MAX_MAILBOXES_PER_IP};

/// A running relay. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    /// Bound QUIC address.
    pub quic_addr: SocketAddr,
    /// Bound HTTP address.
    pub http_addr: Option<SocketAddr>,
    /// Bound HTTPS address of the web page (`--web`).
    pub web_addr: Option<SocketAddr>,
    /// Base URL of the web page (links open at `URL#TICKET`).
    pub web_url: Option<String>,
    /// SHA-256 fingerprint of the certificate clients must pin.
    pub fingerprint: String,
    /// Shared state (for tests and embedding).
    pub shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Bind and start serving.
    pub async fn spawn(config: Config, store: Arc<dyn Store>) -> Result<Server, StartError> {
        let tls = match &config.cert {
            Some((c, k)) => tls::load_pem(c, k)?,
            None => tls::load_or_create(&config.data_dir.join("tls"))?,
        };
        let fingerprint = tls.fingerprint();
        store.check().await.map_err(|source| StartError::Store { kind: store.kind(), source })?;
        let endpoint = quic_endpoint(&config, &tls)?;
        let quic_addr = endpoint.local_addr().map_err(|e| setup("QUIC address", &e))?;
        let web = match config.web {
            Some(addr) => Some(web::WebListener::bind(addr, config.web_url.clone()).await?),
            None => None,
        };
        let (web_addr, web_url) = (web.as_ref().map(|w| w.addr), web.as_ref().map(|w| w.url.clone()));
        let shared = shared_state(&config, store, quic_addr, &fingerprint, web_url.clone())?;
        let mut tasks = vec![tokio::spawn(quic::accept_loop(shared.clone(), endpoint.clone()))];
        if let Some(w) = web {
            tasks.push(w.serve(shared.clone(), web::tls_config(&tls)?, config.idle_timeout));
        }
        let http_addr = match config.http {
            Some(addr) => Some(serve_http(&shared, addr, &mut tasks).await?),
            None => None,
        };
        tasks.push(tokio::spawn(sweep_forever(shared.clone(), config.sweep_interval)));
        let rdv = shared.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                rdv.rendezvous.maintain().await;
            }
        }));
        Ok(Server { quic_addr, http_addr, web_addr, web_url, fingerprint, shared, endpoint, tasks })
    }

    /// Stop accepting, close connections, stop background tasks.
    pub async fn shutdown(self) {
        self.endpoint.close(0u32.into(), b"relay shutting down");
        for t in &self.tasks {
            t.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

fn setup(what: &str, e: &dyn std::fmt::Display) -> StartError {
    StartError::Setup(format!("{what}: {e}"))
}

/// The QUIC endpoint: TLS 1.3 with the relay's certificate, the veil ALPN, no 0-RTT.
fn quic_endpoint(config: &Config, tls: &tls::TlsIdentity) -> Result<quinn::Endpoint, StartError> {
    let mut rustls_cfg = rustls::ServerConfig::builder_with_provider(veil_quic::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup("TLS 1.3", &e))?
        .with_no_client_auth()
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(|e| StartError::Certificate(format!("loading the certificate: {e}")))?;
    rustls_cfg.alpn_protocols = vec![veil_wire::ALPN.to_vec()];
    rustls_cfg.max_early_data_size = 0;
    let quic_crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(rustls_cfg).map_err(|e| setup("QUIC TLS", &e))?;
    let mut server_cfg = quinn::ServerConfig::with_crypto(Arc::new(quic_crypto));
    server_cfg.transport_config(Arc::new(quic::transport(config.idle_timeout)));
    let socket = veil_quic::udp_socket(config.listen).map_err(|source| StartError::Bind {
        what: "QUIC",
        addr: config.listen,
        source,
    })?;
    let ep_cfg = veil_quic::endpoint_config().map_err(|e| setup("QUIC endpoint", &e))?;
    quinn::Endpoint::new(ep_cfg, Some(server_cfg), socket, Arc::new(quinn::TokioRuntime))
        .map_err(|e| setup("starting the QUIC endpoint", &e))
}

/// Everything the tasks share, for an instance reachable at `quic_addr`.
fn shared_state(
    config: &Config,
    store: Arc<dyn Store>,
    quic_addr: SocketAddr,
    fingerprint: &str,
    web_url: Option<String>,
) -> Result<Arc<Shared>, StartError> {
    let metrics = Arc::new(Metrics::new());
    let mut instance = [0u8; 8];
    getrandom::fill(&mut instance).map_err(|e| setup("random instance id", &e))?;
    let advert = rendezvous::Advert {
        addr: config.public_addr.clone().unwrap_or_else(|| quic_addr.to_string()),
        fingerprint: fingerprint.to_string(),
        instance: hex::encode(instance),
    };
    let access = access::Access::new(config.access.clone(), metrics.clone())?;
    Ok(Arc::new(Shared {
        inboxes: inbox::Inboxes::new(store.clone(), config.limits.max_expire, metrics.clone()),
        access,
        transfers: Transfers::new(store.clone(), config.limits.clone(), metrics.clone()),
        rendezvous: Rendezvous::shared(metrics.clone(), store, advert),
        streams: streams::Streams::new(config.streams.clone(), metrics.clone()),
        metrics,
        slots: slots::Slots::new(config.max_connections, config.max_connections_per_ip, config.window_budget),
        web_url,
    }))
}

/// Health, readiness and metrics over HTTP on `addr`; the bound address.
async fn serve_http(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<SocketAddr, StartError> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { what: "HTTP", addr, source })?;
    let bound = listener.local_addr().map_err(|e| setup("HTTP address", &e))?;
    let app = http::router(shared.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }));
    Ok(bound)
}

/// Delete expired transfers and inbox entries every `every`.
async fn sweep_forever(shared: Arc<Shared>, every: Duration) {
    loop {
        match shared.transfers.sweep().await {
            Ok(tids) => {
                for t in &tids {
                    shared.access.release(t);
                }
                if !tids.is_empty() {
                    tracing::info!(count = tids.len(), "deleted expired transfers");
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeper failed"),
        }
        match shared.inboxes.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "deleted expired inbox entries"),
            Err(e) => tracing::warn!(error = %e, "inbox sweeper failed"),
        }
        tokio::time::sleep(every).await;
    }
}
