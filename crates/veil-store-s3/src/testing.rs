//! Test support: a throwaway single-node Garage server on 127.0.0.1.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() {
//! use veil_store_s3::{S3Store, testing::Garage};
//!
//! let garage = Garage::start().await;
//! let store = S3Store::connect(garage.s3_config("test/")).await.unwrap();
//! # drop(store);
//! # }
//! ```
//!
//! Each [`Garage`] gets a fresh temporary directory, free loopback ports, a random RPC
//! secret, access key and bucket. The binary is `$VEIL_GARAGE_BIN`, else
//! `~/.cache/veil-ci/garage-2.5.0/bin/garage` (where `.ci/install-garage` puts it), else
//! `garage` on `PATH`. The server's log is `garage.log` in its directory
//! ([`Garage::log_path`]) and is quoted when the server fails to start.
//!
//! Test support panics on failure, with a message saying what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{S3Config, S3Credentials};

/// The Garage version the harness is written and tested against.
pub const GARAGE_VERSION: &str = "2.5.0";

/// The region in the generated `garage.toml`; clients must sign with it.
pub const GARAGE_REGION: &str = "garage";

/// How long a start may take before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped) single-node Garage. Killed on drop; its data goes with it.
#[derive(Debug)]
pub struct Garage {
    binary: PathBuf,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    s3_port: u16,
    admin_port: u16,
    access_key: String,
    secret_key: String,
    bucket: String,
}

impl Garage {
    /// Starts a fresh server with a new key and bucket, and waits until the admin
    /// `/health` endpoint answers 200 and a signed `ListObjectsV2` on the bucket succeeds.
    ///
    /// # Panics
    ///
    /// If no Garage binary is found (run `.ci/install-garage`), or the server does not come
    /// up within 30 s.
    pub async fn start() -> Garage {
        let binary = find_binary();
        let dir = tempfile::Builder::new().prefix("veil-garage-").tempdir().expect("temporary directory for Garage");
        let [rpc_port, s3_port, admin_port] = free_ports();
        let config = dir.path().join("garage.toml");
        std::fs::write(&config, config_text(dir.path(), rpc_port, s3_port, admin_port)).expect("write garage.toml");
        let mut garage = Garage {
            binary,
            dir,
            config,
            child: None,
            s3_port,
            admin_port,
            access_key: format!("GK{}", random_hex(12)),
            secret_key: random_hex(32),
            bucket: format!("veil-test-{}", random_hex(6)),
        };
        garage.spawn();
        garage.wait_ready().await;
        garage
    }

    /// `http://127.0.0.1:PORT`, the S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// `http://127.0.0.1:PORT`, the admin API (`/health`, `/metrics`).
    pub fn admin_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The bucket created for this server.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id (`GK` + 24 hex digits) allowed to read and write the bucket.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key (64 hex digits).
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The region requests must be signed for.
    pub fn region(&self) -> &str {
        GARAGE_REGION
    }

    /// The server's directory (config, data, metadata, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("garage.log")
    }

    /// A store configuration for this server's bucket with key prefix `prefix`: endpoint,
    /// region, path-style and explicit credentials, and short retries (3 attempts, 2 s
    /// connect timeout) so that tests of an unavailable server stay quick.
    pub fn s3_config(&self, prefix: &str) -> S3Config {
        let mut cfg = S3Config::new(&self.bucket);
        cfg.endpoint = Some(self.endpoint());
        cfg.region = GARAGE_REGION.to_owned();
        cfg.path_style = true;
        cfg.prefix = prefix.to_owned();
        cfg.credentials =
            Some(S3Credentials { access_key_id: self.access_key.clone(), secret_access_key: self.secret_key.clone() });
        cfg.connect_timeout = Duration::from_secs(2);
        cfg.max_attempts = 3;
        cfg
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the server (SIGKILL) and waits for it to exit; the data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same directory, ports, key and bucket, and waits
    /// until it is ready.
    ///
    /// # Panics
    ///
    /// If the server does not come back within 30 s.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready().await;
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open garage.log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &self.bucket)
            .env("RUST_LOG", "garage=info,garage_api_s3=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut stage = "admin /health";
        let client = crate::build_client(&self.s3_config("")).await.expect("S3 client for the readiness check");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("Garage exited during start ({status}); log:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                self.stop();
                panic!("Garage not ready after {START_TIMEOUT:?} (waiting for {stage}); log:\n{}", self.log_tail());
            }
            if health_ok(self.admin_port).await {
                stage = "a signed ListObjectsV2";
                if client.list_objects_v2().bucket(&self.bucket).max_keys(1).send().await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$VEIL_GARAGE_BIN`, the CI cache, or `garage` on `PATH`.
///
/// # Panics
///
/// If none exists, saying how to install it.
pub fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VEIL_GARAGE_BIN") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "VEIL_GARAGE_BIN={} is not a file", path.display());
        return path;
    }
    let cache = std::env::var_os("VEIL_CI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/veil-ci")));
    if let Some(cache) = cache {
        let path = cache.join(format!("garage-{GARAGE_VERSION}/bin/garage"));
        if path.is_file() {
            return path;
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("garage");
            if path.is_file() {
                return path;
            }
        }
    }
    panic!(
        "no Garage binary found (tried $VEIL_GARAGE_BIN, ${{VEIL_CI_CACHE:-~/.cache/veil-ci}}/garage-{GARAGE_VERSION}/bin/garage and \
         PATH): run .ci/install-garage"
    );
}

fn config_text(dir: &Path, rpc_port: u16, s3_port: u16, admin_port: u16) -> String {
    let dir = dir.display();
    let rpc_secret = random_hex(32);
    format!(
        r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{GARAGE_REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#
    )
}

/// Three distinct free loopback ports (bound at once, then released).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port")).collect();
    let port = |i: usize| listeners[i].local_addr().expect("local address").port();
    [port(0), port(1), port(2)]
}

/// A hand-written `GET /health` on the admin port; true on `200`.
async fn health_ok(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), exchange).await, Ok(Ok(true)))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("system random number generator");
    hex::encode(bytes)
}
