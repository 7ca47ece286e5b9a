//! Asking the user before anything is written: what is offered, from whom, and the
//! loud warning when a sender claims a contact's name with another key.

use crate::ui;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use veil_client::{ClientError, SenderStatus};
use veil_format::escape_text;

/// The consent callback. A sender claiming a contact's name with another key is refused
/// unless `--accept-changed-key`, or on a terminal the user types "yes" (even with --yes).
pub(crate) fn consent(
    yes: bool,
    interactive: bool,
    accept_changed_key: bool,
    refused: Arc<AtomicBool>,
) -> veil_client::receive::Consent {
    Arc::new(move |o: &veil_client::Offer| {
        // --quiet --yes: nothing to ask, nothing to show, unless the key changed.
        if !(ui::quiet() && yes) || matches!(o.status, SenderStatus::ChangedKey { .. }) {
            describe(o);
        }
        if matches!(o.status, SenderStatus::ChangedKey { .. }) && !accept_changed_key {
            if interactive && ask_exact("Type \"yes\" to accept this transfer from the changed key anyway: ", "yes") {
                return true;
            }
            refused.store(true, Ordering::Relaxed);
            return false;
        }
        yes || ask("Accept? [y/N] ")
    })
}

pub(crate) fn changed_key_error(e: ClientError, refused: &AtomicBool) -> anyhow::Error {
    if matches!(e, ClientError::Declined) && refused.load(Ordering::Relaxed) {
        return crate::error::Refused(
            "refused: the sender claims a contact's name but its key changed (see the warning above); pass --accept-changed-key to receive anyway".into(),
        )
        .into();
    }
    e.into()
}

/// "alice (verified contact)", or the fingerprint with what the sender claims.
pub(crate) fn sender_label(status: &SenderStatus, fingerprint: &str) -> String {
    match status {
        SenderStatus::Contact { name } => format!("{} (verified contact)", escape_text(name)),
        SenderStatus::ChangedKey { name, .. } => {
            format!("{fingerprint} (CLAIMS TO BE YOUR CONTACT {} BUT THE KEY CHANGED)", escape_text(name))
        }
        SenderStatus::Unknown { claimed: Some(c) } => {
            format!("{fingerprint} (calls itself \"{}\"; not one of your contacts)", escape_text(c))
        }
        _ => format!("{fingerprint} (unverified: not one of your contacts)"),
    }
}

fn describe(o: &veil_client::Offer) {
    use veil_format::manifest::EntryKind;
    let m = &o.manifest;
    let files = m.entries.iter().filter(|e| e.kind == EntryKind::File).count();
    if let SenderStatus::ChangedKey { name, known, presented } = &o.status {
        let name = escape_text(name);
        eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
        eprintln!("@    WARNING: THE IDENTITY OF YOUR CONTACT {name} HAS CHANGED!");
        eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
        eprintln!("The sender calls itself \"{name}\", one of your contacts, but signed with another key.");
        eprintln!("Someone may be impersonating {name}, or {name} made a new identity.");
        eprintln!("  key you know:  {known}");
        eprintln!("  key presented: {presented}");
        eprintln!("Compare fingerprints with {name} another way. If the new key is right:");
        eprintln!("  veil contacts remove {name} && veil contacts add {name} IDENTITY");
    }
    eprintln!("From: {}", sender_label(&o.status, &o.sender));
    eprintln!("Offering {} file(s), {}:", files, ui::human_bytes(m.total_size));
    for e in m.entries.iter().take(10) {
        eprintln!("  {}{}", escape_text(&e.path), if e.kind == EntryKind::Dir { "/" } else { "" });
    }
    if m.entries.len() > 10 {
        eprintln!("  ... and {} more", m.entries.len() - 10);
    }
}

fn ask_exact(prompt: &str, word: &str) -> bool {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && line.trim() == word
}

fn ask(prompt: &str) -> bool {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}
