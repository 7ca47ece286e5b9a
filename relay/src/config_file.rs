//! The relay's TOML config file: the same settings as the flags (see
//! deploy/relay.example.toml). Pure: text in, settings out.
//!
//! `fuzz/` compiles this file on its own (its `relay_config` target includes it by path,
//! so fuzzing does not build QUIC and the S3 SDK): keep it free of `crate::` paths and of
//! dependencies beyond `serde` and `toml`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The config file: the same settings as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub web: Option<SocketAddr>,
    pub web_url: Option<String>,
    pub data: Option<PathBuf>,
    pub store_dir: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub public_addr: Option<String>,
    pub max_transfer_bytes: Option<u64>,
    pub max_active_uploads: Option<usize>,
    pub max_expire: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub idle_timeout: Option<String>,
    pub sweep_interval: Option<String>,
    pub allow: Option<PathBuf>,
    pub quota_bytes: Option<u64>,
    pub quota_transfers_per_hour: Option<u32>,
    pub anon_transfers_per_hour: Option<u32>,
    pub max_streams: Option<usize>,
    pub max_viewers: Option<usize>,
    pub max_viewers_per_stream: Option<u32>,
    pub stream_idle_timeout: Option<String>,
    pub s3: Option<S3Section>,
}

/// The `[s3]` table.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub prefix: Option<String>,
}

/// Parse the text of a config file. Durations stay strings here: the caller parses them
/// with `humantime::parse_duration` (and names the setting in the error).
pub fn parse_config(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}
