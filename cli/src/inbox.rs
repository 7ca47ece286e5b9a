//! `veil inbox` and `veil receive` without a code: identity-mode transfers waiting for us.

use crate::common::{parallel, print_text, relay_addr, stdout_writer, wait};
use crate::consent::sender_label;
use crate::error::hint;
use crate::{identity, ui};
use anyhow::{Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use veil_client::inbox::{InboxItem, Pending};
use veil_client::receive::Consent;
use veil_client::{ClientError, Contacts, Home, ReceiveFrom, ReceiveOptions, Relay};
use veil_format::escape_text;
use veil_format::identity::{Identity, fingerprint_of};

async fn connect(home: &Home, relay: Option<String>) -> Result<(Identity, Arc<Relay>)> {
    let Some(id) = identity::load(home)? else {
        return Err(ClientError::Usage("the inbox needs your identity: run `veil identity new` first".into()).into());
    };
    let addr = relay_addr(home, relay)?;
    let relay = crate::common::connect(addr, home, Some(id.clone())).await?;
    Ok((id, relay))
}

fn age(created: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let s = now.saturating_sub(created);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

fn summary(p: &Pending, contacts: &Contacts) -> (String, usize, u64, Vec<String>) {
    let status = contacts.classify(&p.sender, p.sender_name.as_deref());
    let from = sender_label(&status, &fingerprint_of(&p.sender));
    (from, p.files, p.bytes, p.names.iter().map(|n| escape_text(n)).collect())
}

/// `veil inbox`.
pub async fn list(home: &Home, relay: Option<String>, json: bool) -> Result<()> {
    let (_, relay) = connect(home, relay).await?;
    let items = veil_client::inbox::list(&relay).await;
    relay.close().await;
    let items = items?;
    let contacts = Contacts::load(home)?;
    let mut so = std::io::stdout().lock();
    if items.is_empty() && !json {
        eprintln!("Your inbox is empty.");
    }
    for it in &items {
        match &it.pending {
            Ok(p) => {
                let (from, files, bytes, names) = summary(p, &contacts);
                if json {
                    let v = serde_json::json!({
                        "entry": hex::encode(it.entry), "created": it.created, "from": from,
                        "sender": fingerprint_of(&p.sender), "files": files, "bytes": bytes, "names": names,
                    });
                    writeln!(so, "{v}")?;
                } else {
                    writeln!(so, "{}  from {from}: {files} file(s), {}", age(it.created), ui::human_bytes(bytes))?;
                    for n in &names {
                        writeln!(so, "    {n}")?;
                    }
                    if p.more_names > 0 {
                        writeln!(so, "    ... and {} more", p.more_names)?;
                    }
                }
            }
            Err(e) => {
                if json {
                    writeln!(
                        so,
                        "{}",
                        serde_json::json!({"entry": hex::encode(it.entry), "created": it.created, "error": e.to_string()})
                    )?;
                } else {
                    writeln!(so, "{}  rejected: {e}", age(it.created))?;
                }
            }
        }
    }
    Ok(())
}

/// How `veil receive` without a code receives what is in the inbox.
pub(crate) struct Receiving {
    /// Output folder.
    pub(crate) out: PathBuf,
    /// Replace existing files.
    pub(crate) overwrite: bool,
    /// JSON events.
    pub(crate) json: bool,
    /// Asked before each transfer.
    pub(crate) consent: Consent,
    /// Set by `consent` when it refused a changed contact key.
    pub(crate) refused_key: Arc<AtomicBool>,
}

/// `veil receive` without a code: everything in the inbox, one transfer at a time; an
/// entry is deleted from the inbox only after its transfer arrived complete.
pub(crate) async fn receive_all(home: &Home, relay: Option<String>, how: Receiving) -> Result<()> {
    let (id, relay) = connect(home, relay).await?;
    let r = receive_items(home, &id, &relay, how).await;
    relay.close().await;
    r
}

async fn receive_items(home: &Home, id: &Identity, relay: &Arc<Relay>, how: Receiving) -> Result<()> {
    let Receiving { out, overwrite, json, consent, refused_key } = how;
    let items: Vec<InboxItem> = veil_client::inbox::list(relay).await?;
    if items.is_empty() {
        eprintln!("Your inbox is empty.");
        return Ok(());
    }
    let (mut failed, mut received) = (0usize, 0usize);
    for it in items {
        let p = match it.pending {
            Ok(p) => p,
            Err(e) => {
                eprintln!("veil: rejected an inbox entry left {}: {e}", age(it.created));
                failed += 1;
                continue;
            }
        };
        refused_key.store(false, Ordering::Relaxed);
        let from = ReceiveFrom::Inbox { tid: p.tid, key: p.key, recipient: id.public().x25519, sender: p.sender };
        let events = ui::sink(if json { ui::Mode::Json } else { ui::Mode::Human }, "receive");
        let opts = ReceiveOptions {
            home: home.clone(),
            from,
            out_dir: out.clone(),
            overwrite,
            parallel: parallel(),
            wait: wait(),
            consent: consent.clone(),
            stream_out: stdout_writer(),
        };
        match veil_client::receive(relay.clone(), opts, events).await {
            Ok(r) => {
                print_text(r.text, json)?;
                veil_client::inbox::delete(relay, it.entry).await?;
                received += 1;
            }
            Err(ClientError::Declined) if refused_key.load(Ordering::Relaxed) => {
                eprintln!(
                    "veil: refused a transfer: the sender claims a contact's name but its key changed (see above); pass --accept-changed-key to receive it anyway"
                );
                failed += 1;
            }
            Err(ClientError::Declined) => eprintln!("Skipped (left in your inbox)."),
            Err(e) => {
                eprintln!("veil: error: {}{}", escape_text(&e.to_string()), hint(&e));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} transfer(s) from your inbox could not be received ({received} received)");
    }
    Ok(())
}
