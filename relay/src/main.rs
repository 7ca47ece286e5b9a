//! `veil-relay`: the blind relay. A thin shell over `veil_relay::Server`.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use veil_relay::{Config, Server};

/// veil-relay: stores and forwards ciphertext it cannot read.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// QUIC listen address.
    #[arg(long, default_value = "127.0.0.1:4433", env = "VEIL_RELAY_LISTEN")]
    listen: SocketAddr,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080", env = "VEIL_RELAY_HTTP")]
    http: SocketAddr,
    /// Data folder: TLS identity and the filesystem store.
    #[arg(long, default_value = "veil-data", env = "VEIL_RELAY_DATA")]
    data: PathBuf,
    /// A real certificate chain (PEM) instead of the self-signed one.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Largest transfer accepted, in bytes.
    #[arg(long, default_value_t = 64 << 30)]
    max_transfer_bytes: u64,
    /// Most uploads in progress at once.
    #[arg(long, default_value_t = 1024)]
    max_active_uploads: usize,
    /// Longest expiry a sender may ask for (e.g. 7d).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    max_expire: Duration,
    /// Most QUIC connections at once.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Most QUIC connections from one IP address.
    #[arg(long, default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Close idle connections after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// How often expired transfers are deleted.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    sweep_interval: Duration,
    /// Only identities listed in this file (one `veilid1...` per line, `#` comments) may
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
}

fn main() {
    if let Err(e) = run() {
        eprintln!("veil-relay: error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let store: Arc<dyn veil_store::Store> = {
        let s = veil_store::FsStore::open(args.data.join("store")).context("opening the filesystem store")?;
        let n = s.remove_stale_temp_files().await.unwrap_or(0);
        if n > 0 {
            tracing::info!(count = n, "removed half-written temporary files");
        }
        Arc::new(s)
    };
    let config = Config {
        listen: args.listen,
        http: Some(args.http),
        data_dir: args.data.clone(),
        cert: args.cert.zip(args.key),
        limits: veil_relay::state::TransferLimits {
            max_transfer_bytes: args.max_transfer_bytes,
            max_active_uploads: args.max_active_uploads,
            max_expire: args.max_expire,
        },
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        idle_timeout: args.idle_timeout,
        sweep_interval: args.sweep_interval,
        access: veil_relay::access::AccessConfig {
            allow_file: args.allow,
            quota_bytes: args.quota_bytes,
            quota_transfers_per_hour: args.quota_transfers_per_hour,
            anon_transfers_per_hour: args.anon_transfers_per_hour,
        },
    };
    let server = Server::spawn(config, store).await?;
    println!(
        "veil-relay listening on {} (QUIC), http on {}",
        server.quic_addr,
        server.http_addr.map(|a| a.to_string()).unwrap_or_default()
    );
    println!("certificate fingerprint: {}", server.fingerprint);
    println!("clients: VEIL_RELAY={}#{}", server.quic_addr, server.fingerprint);
    tokio::signal::ctrl_c().await.ok();
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
