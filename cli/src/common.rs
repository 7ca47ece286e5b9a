//! Helpers every command uses: the relay address, tuning from the environment, and how
//! a received text is printed.

use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;
use veil_client::{ConnectOptions, Home, Relay, RelayAddr};
use veil_format::escape_text;
use veil_format::identity::Identity;

pub(crate) fn relay_addr(home: &Home, flag: Option<String>) -> Result<RelayAddr> {
    let s = crate::config::Settings::load(home)?.relay(flag).value;
    Ok(RelayAddr::parse(&s)?)
}

/// Connect to the relay; VEIL_RETRY_SECS sets how long a broken connection is retried.
pub(crate) async fn connect(addr: RelayAddr, home: &Home, identity: Option<Identity>) -> Result<Arc<Relay>> {
    let retry_budget = std::env::var("VEIL_RETRY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(veil_client::conn::DEFAULT_RETRY_BUDGET, Duration::from_secs);
    Ok(Relay::connect_with(addr, home.clone(), ConnectOptions { identity, retry_budget }).await?)
}

/// Where a received `stdin` transfer goes.
pub(crate) fn stdout_writer() -> veil_client::receive::Output {
    Arc::new(std::sync::Mutex::new(std::io::stdout()))
}

pub(crate) fn parallel() -> usize {
    std::env::var("VEIL_PARALLEL").ok().and_then(|s| s.parse().ok()).unwrap_or(veil_client::conn::DEFAULT_MAX_IN_FLIGHT)
}

pub(crate) fn wait() -> Duration {
    Duration::from_secs(std::env::var("VEIL_WAIT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600))
}

/// Text of a received text transfer: JSON, escaped on a terminal, raw into a pipe.
pub(crate) fn print_text(text: Option<String>, json: bool) -> Result<()> {
    if let Some(t) = text {
        let mut so = std::io::stdout().lock();
        if json {
            writeln!(so, "{}", serde_json::json!({"event": "text", "text": t}))?;
        } else if std::io::stdout().is_terminal() {
            let safe: String = t.split('\n').map(escape_text).collect::<Vec<_>>().join("\n");
            writeln!(so, "{safe}")?;
        } else {
            so.write_all(t.as_bytes())?;
        }
    }
    Ok(())
}
