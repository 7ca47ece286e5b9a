//! The state folder (`VEIL_HOME`, default `~/.config/veil`): config, pinned relay
//! certificates, identity, resume state. Secret files are written 0600.

use crate::error::{ClientError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state folder.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// `config.json` in the state folder.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Config {
    /// Default relay address.
    pub relay: Option<String>,
}

impl Home {
    /// `VEIL_HOME`, else `$XDG_CONFIG_HOME/veil`, else `~/.config/veil`.
    pub fn from_env() -> Home {
        if let Some(h) = std::env::var_os("VEIL_HOME") {
            return Home { root: PathBuf::from(h) };
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        Home { root: base.join("veil") }
    }

    /// A state folder at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the folder (created on demand by writers).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Read `config.json` (missing is empty).
    pub fn config(&self) -> Result<Config> {
        Ok(self.read_json("config.json")?.unwrap_or_default())
    }

    /// Read a JSON file; None if missing.
    pub fn read_json<T: for<'de> Deserialize<'de>>(&self, rel: &str) -> Result<Option<T>> {
        let p = self.path(rel);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ClientError::Usage(format!("{} is corrupt: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::io("reading", p, e)),
        }
    }

    /// Write a JSON file atomically with mode 0600.
    pub fn write_json<T: Serialize>(&self, rel: &str, v: &T) -> Result<()> {
        let body = serde_json::to_vec_pretty(v).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.write_private(rel, &body)
    }

    /// Write a file atomically with mode 0600 (folders 0700).
    pub fn write_private(&self, rel: &str, body: &[u8]) -> Result<()> {
        use std::io::Write;
        let p = self.path(rel);
        let dir = p.parent().unwrap_or(&self.root).to_path_buf();
        create_private_dir(&dir)?;
        let tmp = dir.join(format!(".{}.tmp", p.file_name().and_then(|n| n.to_str()).unwrap_or("state")));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(|e| ClientError::io("writing", &tmp, e))?;
        f.write_all(body).and_then(|()| f.sync_all()).map_err(|e| ClientError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| ClientError::io("renaming", &p, e))
    }

    /// Remove a file; missing is fine.
    pub fn remove(&self, rel: &str) {
        let _ = std::fs::remove_file(self.path(rel));
    }

    /// Pinned relay certificates (`known_relays.json`: address -> SHA-256).
    pub fn known_relays(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.read_json("known_relays.json")?.unwrap_or_default())
    }

    /// Remember a relay's certificate fingerprint.
    pub fn pin_relay(&self, addr: &str, fp: &str) -> Result<()> {
        let mut k = self.known_relays()?;
        k.insert(addr.to_string(), fp.to_string());
        self.write_json("known_relays.json", &k)
    }
}

/// Create a folder (and parents) with mode 0700 on unix.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| ClientError::io("creating", dir, e))
}
