//! `$VEIL_HOME/config.toml`: the default relay (with its pinned fingerprint), output
//! folder and expiry, and `veil config`, which prints the effective settings and where
//! each came from: a flag, the environment, the file, or the built-in default.
//!
//! ```toml
//! relay = "relay.example.org:4433#<sha256 fingerprint>"
//! out = "~/Downloads"
//! expire = "2d"
//! ```

use anyhow::Result;
use serde::Deserialize;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use veil_client::{ClientError, Home};

/// The file's name in the state folder.
pub(crate) const FILE: &str = "config.toml";

/// What `config.toml` may say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Default relay `host:port[#sha256]`.
    relay: Option<String>,
    /// Default output folder of `veil receive` (`~/` is the home folder).
    out: Option<PathBuf>,
    /// Default expiry of `veil send` (`2d`, `12h`).
    expire: Option<String>,
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A file in the state folder.
    File(PathBuf),
    /// Built in.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(n) => write!(f, "flag {n}"),
            Source::Env(n) => write!(f, "environment {n}"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

/// The settings file, read once per command.
#[derive(Debug)]
pub(crate) struct Settings {
    file: FileConfig,
    path: PathBuf,
    found: bool,
    /// The older `config.json` (only a relay), still honoured after config.toml.
    legacy_relay: Option<String>,
}

impl Settings {
    /// Read `config.toml` (missing is empty; a malformed one is a usage error).
    pub(crate) fn load(home: &Home) -> Result<Settings> {
        let path = home.path(FILE);
        let (file, found) = match std::fs::read_to_string(&path) {
            Ok(text) => (parse(&text).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (FileConfig::default(), false),
            Err(e) => return Err(ClientError::io("reading", &path, e).into()),
        };
        let legacy_relay = home.config()?.relay;
        Ok(Settings { file, path, found, legacy_relay })
    }

    /// The relay: `--relay`, else VEIL_RELAY, else config.toml, else config.json, else
    /// the built-in default.
    pub(crate) fn relay(&self, flag: Option<String>) -> Setting<String> {
        let nonempty = |s: &String| !s.trim().is_empty();
        if let Some(v) = flag.filter(nonempty) {
            return Setting { value: v, source: Source::Flag("--relay") };
        }
        if let Some(v) = std::env::var("VEIL_RELAY").ok().filter(nonempty) {
            return Setting { value: v, source: Source::Env("VEIL_RELAY") };
        }
        if let Some(v) = self.file.relay.clone().filter(nonempty) {
            return Setting { value: v, source: Source::File(self.path.clone()) };
        }
        if let Some(v) = self.legacy_relay.clone().filter(nonempty) {
            return Setting { value: v, source: Source::File(self.path.with_file_name("config.json")) };
        }
        Setting { value: veil_client::DEFAULT_RELAY.to_string(), source: Source::Default }
    }

    /// The output folder of `veil receive`: `--out`, else config.toml, else `.`.
    pub(crate) fn out(&self, flag: Option<PathBuf>) -> Setting<PathBuf> {
        match (flag, &self.file.out) {
            (Some(p), _) => Setting { value: p, source: Source::Flag("--out") },
            (None, Some(p)) => Setting { value: expand_home(p), source: Source::File(self.path.clone()) },
            (None, None) => Setting { value: PathBuf::from("."), source: Source::Default },
        }
    }

    /// The expiry of `veil send`: `--expire`, else config.toml, else 24 h.
    pub(crate) fn expire(&self, flag: Option<Duration>) -> Result<Setting<Duration>> {
        Ok(match (flag, &self.file.expire) {
            (Some(d), _) => Setting { value: d, source: Source::Flag("--expire") },
            (None, Some(s)) => Setting {
                value: humantime::parse_duration(s)
                    .map_err(|e| ClientError::Usage(format!("{}: expire = {s:?}: {e}", self.path.display())))?,
                source: Source::File(self.path.clone()),
            },
            (None, None) => Setting { value: DEFAULT_EXPIRE, source: Source::Default },
        })
    }
}

/// `veil send`'s expiry when neither a flag nor the file sets one.
pub(crate) const DEFAULT_EXPIRE: Duration = Duration::from_secs(24 * 3600);

fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

/// `~/x` to `$HOME/x`.
fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => p.to_path_buf(),
    }
}

/// What `veil config` is asked: the flags a command would be given, to show their effect.
#[derive(Debug)]
pub(crate) struct Shown {
    pub(crate) relay: Option<String>,
    pub(crate) out: Option<PathBuf>,
    pub(crate) expire: Option<Duration>,
    pub(crate) json: bool,
}

/// `veil config`: the effective settings and where each came from.
pub(crate) fn show(home: &Home, ask: Shown) -> Result<()> {
    let s = Settings::load(home)?;
    let relay = s.relay(ask.relay);
    let out = s.out(ask.out);
    let expire = s.expire(ask.expire)?;
    let expire_text = humantime::format_duration(expire.value).to_string();
    let rows = [
        ("relay", relay.value.clone(), relay.source),
        ("out", out.value.display().to_string(), out.source),
        ("expire", expire_text, expire.source),
    ];
    let mut so = std::io::stdout().lock();
    if ask.json {
        let mut settings = serde_json::Map::new();
        for (k, v, src) in &rows {
            settings.insert((*k).into(), serde_json::json!({"value": v, "source": src.to_string()}));
        }
        let v = serde_json::json!({
            "home": home.root().display().to_string(),
            "config_file": s.path.display().to_string(),
            "config_file_found": s.found,
            "settings": settings,
        });
        writeln!(so, "{v}")?;
        return Ok(());
    }
    writeln!(so, "state folder: {}", home.root().display())?;
    let found = if s.found { "" } else { " (not there: every setting below is a default, a flag or the environment)" };
    writeln!(so, "config file:  {}{found}", s.path.display())?;
    writeln!(so)?;
    for (k, v, src) in &rows {
        writeln!(so, "{k:<7} {v:<40} ({src})")?;
    }
    if !s.found {
        writeln!(so, "\nTo keep a default, write it into {}, e.g.:\n", s.path.display())?;
        writeln!(
            so,
            "    relay = \"relay.example.org:4433#<fingerprint>\"\n    out = \"~/Downloads\"\n    expire = \"2d\""
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_settings_and_refuses_unknown_keys() {
        let c = parse("relay = \"r:1#ab\"\nout = \"~/Downloads\"\nexpire = \"2d\"\n").unwrap_or_default();
        assert_eq!(c.relay.as_deref(), Some("r:1#ab"));
        assert_eq!(c.expire.as_deref(), Some("2d"));
        assert!(parse("relya = \"x\"").is_err());
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let s = Settings {
            file: FileConfig { relay: None, out: Some("dl".into()), expire: Some("2d".into()) },
            path: PathBuf::from("/h/config.toml"),
            found: true,
            legacy_relay: None,
        };
        assert_eq!(s.out(None).value, PathBuf::from("dl"));
        assert_eq!(s.out(Some("x".into())).source, Source::Flag("--out"));
        let e = s.expire(None).map(|e| e.value).unwrap_or_default();
        assert_eq!(e, Duration::from_secs(2 * 86400));
        let none = Settings { file: FileConfig::default(), ..s };
        assert_eq!(none.out(None).source, Source::Default);
        assert_eq!(none.expire(None).map(|e| e.value).unwrap_or_default(), DEFAULT_EXPIRE);
    }
}
