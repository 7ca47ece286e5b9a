//! `veil-relay`: the blind relay. A thin shell over `veil_relay::Server`: flags, an
//! optional config file (flags win), the store, then serve until Ctrl-C.
#![forbid(unsafe_code)]

mod config_file;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use veil_relay::{Config, Server};

/// veil-relay: stores and forwards ciphertext it cannot read.
///
/// Every setting can also be given in a TOML file (`--config`); a flag on the command
/// line wins over the file. See deploy/relay.example.toml.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    /// Helpers that do not run the relay.
    #[command(subcommand)]
    cmd: Option<Tool>,
    /// TOML config file (see deploy/relay.example.toml).
    #[arg(long, env = "VEIL_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// QUIC listen address [default: 127.0.0.1:4433].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// HTTP address for /healthz, /readyz and /metrics [default: 127.0.0.1:8080].
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Serve the page that opens links in a browser, and the ciphertext for it, over
    /// HTTPS on this address (with the relay's certificate). Off unless given.
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Public base URL of that page (behind a proxy or a DNS name) [default: https://WEB/].
    #[arg(long)]
    web_url: Option<String>,
    /// Data folder: TLS identity, and the filesystem store unless S3 is used [default: veil-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder of the filesystem store [default: DATA/store]. Several instances may share it.
    #[arg(long)]
    store_dir: Option<PathBuf>,
    /// A real certificate chain (PEM) instead of the self-signed one.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Address clients use to reach this instance, when several instances share a store.
    #[arg(long)]
    public_addr: Option<String>,
    /// Store in this S3 bucket instead of the filesystem.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// S3 endpoint URL (Garage, MinIO, R2, Ceph); omit for AWS S3.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// S3 region to sign for [default: us-east-1].
    #[arg(long)]
    s3_region: Option<String>,
    /// Path-style S3 addressing (most self-hosted servers need it).
    #[arg(long)]
    s3_path_style: bool,
    /// Prefix of every object name in the bucket.
    #[arg(long)]
    s3_prefix: Option<String>,
    /// Largest transfer accepted, in bytes [default: 64 GiB].
    #[arg(long)]
    max_transfer_bytes: Option<u64>,
    /// Most uploads in progress at once [default: 1024].
    #[arg(long)]
    max_active_uploads: Option<usize>,
    /// Longest expiry a sender may ask for [default: 7d].
    #[arg(long, value_parser = humantime::parse_duration)]
    max_expire: Option<Duration>,
    /// Most QUIC connections at once [default: 4096].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most QUIC connections from one IP address [default: 64].
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Close idle connections after this long [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// How often expired transfers are deleted [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    sweep_interval: Option<Duration>,
    /// Only identities listed in this file (one `veilid2...` or `veilid1...` per line, `#` comments) may
    /// upload; re-read when it changes. Without it the relay is open.
    #[arg(long, env = "VEIL_RELAY_ALLOW")]
    allow: Option<PathBuf>,
    /// Ciphertext bytes one identity may keep stored (counted in memory).
    #[arg(long)]
    quota_bytes: Option<u64>,
    /// New transfers per identity per hour.
    #[arg(long)]
    quota_transfers_per_hour: Option<u32>,
    /// New transfers per hour from one IP address without an identity.
    #[arg(long)]
    anon_transfers_per_hour: Option<u32>,
    /// Most live streams at once [default: 256].
    #[arg(long)]
    max_streams: Option<usize>,
    /// Most viewers of all live streams together [default: 4096].
    #[arg(long)]
    max_viewers: Option<usize>,
    /// Most viewers of one live stream (publishers may ask for fewer) [default: 64].
    #[arg(long)]
    max_viewers_per_stream: Option<u32>,
    /// Cut a live stream whose publisher sent nothing for this long [default: 10m].
    #[arg(long, value_parser = humantime::parse_duration)]
    stream_idle_timeout: Option<Duration>,
}

/// `veil-relay completions SHELL`, `veil-relay man [DIR]`.
#[derive(clap::Subcommand, Debug)]
enum Tool {
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish), e.g.
    /// `veil-relay completions bash > ~/.local/share/bash-completion/completions/veil-relay`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write it into DIR (`veil-relay man /usr/local/share/man/man1`).
    Man {
        /// Folder for veil-relay.1 (without it: standard output).
        dir: Option<PathBuf>,
    },
}

/// Completions and man pages, from the clap definitions.
fn tool(t: Tool) -> Result<()> {
    use clap::CommandFactory;
    use std::io::Write;
    let cmd = Args::command().name("veil-relay");
    let mut so = std::io::stdout().lock();
    match t {
        Tool::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), "veil-relay", &mut out);
            so.write_all(&out)?;
        }
        Tool::Man { dir: None } => clap_mangen::Man::new(cmd).render(&mut so)?,
        Tool::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir).with_context(|| format!("writing into {}", dir.display()))?;
        }
    }
    Ok(so.flush()?)
}

fn main() {
    let args = Args::parse();
    if let Some(t) = args.cmd {
        if let Err(e) = tool(t) {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return;
            }
            eprintln!("veil-relay: error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run(args) {
        eprintln!("veil-relay: error: {e:#}");
        std::process::exit(1);
    }
}

fn duration(flag: Option<Duration>, file: Option<&str>, what: &str, default: Duration) -> Result<Duration> {
    match (flag, file) {
        (Some(d), _) => Ok(d),
        (None, Some(s)) => humantime::parse_duration(s).with_context(|| format!("config: {what} = {s:?}")),
        (None, None) => Ok(default),
    }
}

#[tokio::main]
async fn run(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut file: config_file::FileConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            config_file::parse_config(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => config_file::FileConfig::default(),
    };
    let data = args.data.clone().or(file.data.take()).unwrap_or_else(|| PathBuf::from("veil-data"));
    let store = open_store(&args, &mut file, &data).await?;
    let config = config(args, file, data)?;
    let server = Server::spawn(config, store).await?;
    println!(
        "veil-relay listening on {} (QUIC), http on {}",
        server.quic_addr,
        server.http_addr.map(|a| a.to_string()).unwrap_or_default()
    );
    if let (Some(addr), Some(url)) = (server.web_addr, &server.web_url) {
        println!("web page on {addr} (HTTPS): links open at {url}#<ticket>");
        if addr.ip().is_unspecified() && url.contains(&addr.to_string()) {
            eprintln!("veil-relay: warning: links name {addr}, which no browser can open: set --web-url");
        }
    }
    println!("certificate fingerprint: {}", server.fingerprint);
    println!("clients: VEIL_RELAY={}#{}", server.quic_addr, server.fingerprint);
    tokio::signal::ctrl_c().await.ok();
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The S3 store when a bucket is named (flag or file), else the filesystem store.
async fn open_store(
    args: &Args,
    file: &mut config_file::FileConfig,
    data: &std::path::Path,
) -> Result<Arc<dyn veil_store::Store>> {
    let s3 = file.s3.take().unwrap_or_default();
    if let Some(bucket) = args.s3_bucket.clone().or(s3.bucket) {
        let mut cfg = veil_store_s3::S3Config::new(bucket);
        cfg.endpoint = args.s3_endpoint.clone().or(s3.endpoint);
        cfg.region = args.s3_region.clone().or(s3.region).unwrap_or_else(|| "us-east-1".into());
        cfg.path_style = args.s3_path_style || s3.path_style.unwrap_or(false);
        cfg.prefix = args.s3_prefix.clone().or(s3.prefix).unwrap_or_default();
        return Ok(Arc::new(veil_store_s3::S3Store::connect(cfg).await.context("S3 store")?));
    }
    let dir = args.store_dir.clone().or(file.store_dir.take()).unwrap_or_else(|| data.join("store"));
    let s = veil_store::FsStore::open(&dir)
        .with_context(|| format!("opening the filesystem store in {}", dir.display()))?;
    let n = s.remove_stale_temp_files().await.unwrap_or(0);
    if n > 0 {
        tracing::info!(count = n, "removed half-written temporary files");
    }
    Ok(Arc::new(s))
}

/// The relay's settings: each from its flag, else the config file, else the default.
fn config(args: Args, file: config_file::FileConfig, data: PathBuf) -> Result<Config> {
    let cert = args.cert.or(file.cert);
    let key = args.key.or(file.key);
    if cert.is_some() != key.is_some() {
        bail!("--cert and --key go together");
    }
    let d = |flag, text: Option<String>, name, default| duration(flag, text.as_deref(), name, default);
    Ok(Config {
        listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4433))),
        http: Some(args.http.or(file.http).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))),
        data_dir: data,
        cert: cert.zip(key),
        limits: veil_relay::state::TransferLimits {
            max_transfer_bytes: args.max_transfer_bytes.or(file.max_transfer_bytes).unwrap_or(64 << 30),
            max_active_uploads: args.max_active_uploads.or(file.max_active_uploads).unwrap_or(1024),
            max_expire: d(args.max_expire, file.max_expire, "max_expire", Duration::from_secs(7 * 86400))?,
        },
        max_connections: args.max_connections.or(file.max_connections).unwrap_or(4096),
        max_connections_per_ip: args.max_connections_per_ip.or(file.max_connections_per_ip).unwrap_or(64),
        window_budget: Config::default().window_budget,
        idle_timeout: d(args.idle_timeout, file.idle_timeout, "idle_timeout", Duration::from_secs(60))?,
        sweep_interval: d(args.sweep_interval, file.sweep_interval, "sweep_interval", Duration::from_secs(60))?,
        public_addr: args.public_addr.or(file.public_addr),
        access: veil_relay::access::AccessConfig {
            allow_file: args.allow.or(file.allow),
            quota_bytes: args.quota_bytes.or(file.quota_bytes),
            quota_transfers_per_hour: args.quota_transfers_per_hour.or(file.quota_transfers_per_hour),
            anon_transfers_per_hour: args.anon_transfers_per_hour.or(file.anon_transfers_per_hour),
        },
        web: args.web.or(file.web),
        web_url: args.web_url.or(file.web_url),
        streams: veil_relay::streams::StreamLimits {
            max_streams: args.max_streams.or(file.max_streams).unwrap_or(256),
            max_viewers: args.max_viewers.or(file.max_viewers).unwrap_or(4096),
            max_viewers_per_stream: args.max_viewers_per_stream.or(file.max_viewers_per_stream).unwrap_or(64),
            idle: d(
                args.stream_idle_timeout,
                file.stream_idle_timeout,
                "stream_idle_timeout",
                Duration::from_secs(600),
            )?,
        },
    })
}
