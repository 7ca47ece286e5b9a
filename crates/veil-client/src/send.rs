//! Sending: collect, hash, create the transfer, upload chunks in parallel (each sealed
//! on a blocking thread, so all cores encrypt), and hand the key over by code or ticket.

use crate::conn::Relay;
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink, Revealed};
use crate::files::{ContentReader, SourceEntry, collect, hash_entries};
use crate::home::Home;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use veil_format::code::{Code, DEFAULT_CODE_WORDS};
use veil_format::identity::{Identity, KdfParams, PublicIdentity};
use veil_format::manifest::{ContentKind, Entry, EntryKind, Manifest};
use veil_format::ticket::Ticket;
use veil_format::{Capabilities, ContentKey, OwnerSecret, TransferId, chunk};
use veil_wire::{Request, Response, cap_hash, in_ranges};

/// What to send. Its `Debug` does not show the text.
#[derive(Clone)]
pub enum SendInput {
    /// Files and folders.
    Paths(Vec<PathBuf>),
    /// A text snippet.
    Text(String),
    /// Standard input (spooled to a private temporary file first).
    Stdin,
}

impl std::fmt::Debug for SendInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendInput::Paths(p) => f.debug_tuple("Paths").field(p).finish(),
            SendInput::Text(_) => f.write_str("Text(..)"),
            SendInput::Stdin => f.write_str("Stdin"),
        }
    }
}

/// How the receiver gets the key. Its `Debug` shows neither code nor password.
#[derive(Clone)]
pub enum SendMode {
    /// One-time code (chosen, or allocated by the relay).
    Code(Option<String>),
    /// A ticket, optionally password-wrapped.
    Link {
        /// Password for the ticket.
        password: Option<String>,
    },
    /// Identity mode: upload as for a link, then leave `K` sealed to the recipient in
    /// their inbox on the relay (the manifest is bound to the recipient's key).
    To {
        /// The recipient.
        recipient: PublicIdentity,
    },
}

impl std::fmt::Debug for SendMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendMode::Code(c) => write!(f, "Code({})", if c.is_some() { "chosen" } else { "allocated" }),
            SendMode::Link { password } => write!(f, "Link {{ password: {} }}", password.is_some()),
            SendMode::To { recipient } => f.debug_struct("To").field("recipient", &recipient.fingerprint()).finish(),
        }
    }
}

/// Everything `send` needs.
#[derive(Clone)]
pub struct SendOptions {
    /// State folder.
    pub home: Home,
    /// What to send.
    pub input: SendInput,
    /// Code or link.
    pub mode: SendMode,
    /// Expiry on the relay.
    pub expire: Duration,
    /// Download limit.
    pub max_downloads: Option<u32>,
    /// Signing identity (ephemeral if the user has none).
    pub signer: Identity,
    /// Our handle, carried (signed) in the manifest so contacts recognise us.
    pub sender_name: Option<String>,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Chunks in flight.
    pub parallel: usize,
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions").field("input", &self.input).field("expire", &self.expire).finish_non_exhaustive()
    }
}

/// Resume state of a send (`sends/<hash>.json`, 0600): kept while the send can resume,
/// deleted at every final outcome.
#[derive(Serialize, Deserialize)]
struct SendState {
    tid: String,
    key: String,
    /// The owner secret (hex); a state without one predates it and is not resumed.
    #[serde(default)]
    owner: Option<String>,
    delivered: bool,
}

fn parse_state(s: &SendState) -> Option<(TransferId, ContentKey, OwnerSecret)> {
    let hex32 = |h: &str| -> Option<[u8; 32]> { hex::decode(h).ok()?.try_into().ok() };
    Some((
        TransferId::from_hex(&s.tid)?,
        ContentKey::from_bytes(hex32(&s.key)?),
        OwnerSecret::from_bytes(hex32(s.owner.as_deref()?)?),
    ))
}

/// Result of a send.
#[derive(Debug)]
pub struct SendOutcome {
    /// The transfer id.
    pub tid: TransferId,
    /// Plaintext bytes.
    pub bytes: u64,
}

fn spool(home: &Home, input: &SendInput) -> Result<Option<(PathBuf, ContentKind, String)>> {
    let dir = home.path("tmp");
    crate::home::create_private_dir(&dir)?;
    let mut rnd = [0u8; 8];
    veil_format::random_bytes(&mut rnd);
    let p = dir.join(format!("spool-{}", hex::encode(rnd)));
    match input {
        SendInput::Paths(_) => Ok(None),
        SendInput::Text(t) => {
            std::fs::write(&p, t.as_bytes()).map_err(|e| ClientError::io("writing", &p, e))?;
            Ok(Some((p, ContentKind::Text, "text.txt".into())))
        }
        SendInput::Stdin => {
            let mut f = std::fs::File::create(&p).map_err(|e| ClientError::io("writing", &p, e))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut f)
                .map_err(|e| ClientError::io("reading", "standard input", e))?;
            Ok(Some((p, ContentKind::Stdin, "stdin".into())))
        }
    }
}

/// Send. Emits `Code`/`Ticket` first, then progress; returns when the upload is
/// complete and (code mode) the receiver holds the key. The resume state survives only
/// an error after which the same command can continue ([`ClientError::is_resumable`]).
pub async fn send(relay: Arc<Relay>, opts: SendOptions, events: EventSink) -> Result<SendOutcome> {
    let mut state_name = None;
    let result = run(relay, &opts, events, &mut state_name).await;
    if let (Err(e), Some(n)) = (&result, &state_name)
        && !e.is_resumable()
    {
        opts.home.remove(n);
    }
    result
}

async fn run(
    relay: Arc<Relay>,
    opts: &SendOptions,
    events: EventSink,
    state_out: &mut Option<String>,
) -> Result<SendOutcome> {
    let started = Instant::now();
    let spooled = spool(&opts.home, &opts.input)?;
    let _cleanup = SpoolGuard(spooled.as_ref().map(|s| s.0.clone()));
    let (mut entries, content) = match (&opts.input, &spooled) {
        (SendInput::Paths(paths), _) => {
            let (entries, skipped) = collect(paths)?;
            for s in skipped {
                events(Event::Warning { message: format!("skipping {} (not a regular file or folder)", s.display()) });
            }
            (entries, ContentKind::Files)
        }
        (_, Some((p, kind, name))) => {
            let meta = std::fs::metadata(p).map_err(|e| ClientError::io("reading", p, e))?;
            let e = SourceEntry {
                entry: Entry {
                    path: name.clone(),
                    kind: EntryKind::File,
                    size: meta.len(),
                    mode: 0o644,
                    hash: [0; 32],
                },
                local: Some(p.clone()),
                mtime: 0,
            };
            (vec![e], *kind)
        }
        _ => return Err(ClientError::Usage("nothing to send".into())),
    };
    if entries.is_empty() {
        return Err(ClientError::Usage("nothing to send".into()));
    }

    // Resume: the same inputs, mode and relay continue the same transfer.
    let state_name =
        if spooled.is_none() { Some(format!("sends/{}.json", state_key(&relay, opts, &entries))) } else { None };
    state_out.clone_from(&state_name);
    let prior: Option<SendState> = match &state_name {
        Some(n) => opts.home.read_json(n)?,
        None => None,
    };
    let (tid, key, owner, delivered) = match prior.as_ref().and_then(|s| Some((parse_state(s)?, s.delivered))) {
        Some(((tid, key, owner), delivered)) => (tid, key, owner, delivered),
        None => (TransferId::random(), ContentKey::random(), OwnerSecret::random(), false),
    };
    let save = |delivered: bool| -> Result<()> {
        if let Some(n) = &state_name {
            let state = SendState {
                tid: tid.to_hex(),
                key: hex::encode(key.expose()),
                owner: Some(hex::encode(owner.expose())),
                delivered,
            };
            opts.home.write_json(n, &state)?;
        }
        Ok(())
    };
    save(delivered)?;
    let caps = Capabilities::derive(&key);
    let owner_cap = owner.capability();

    // Register the transfer before anyone can hold its key, so a receiver never looks
    // for a transfer that does not exist yet.
    let plain_total: u64 = entries.iter().map(|e| e.entry.size).sum();
    let sealed_total = plain_total + chunk::chunk_count(plain_total, opts.chunk_size) * 1024;
    relay
        .call(
            &Request::Create {
                tid: tid.0,
                owner: cap_hash(owner_cap.expose()),
                download: cap_hash(caps.download.expose()),
                receipt: cap_hash(caps.receipt.expose()),
                expire_secs: opts.expire.as_secs().max(1),
                max_downloads: opts.max_downloads,
                size_hint: Some(sealed_total),
            },
            None,
        )
        .await?;

    // Code mode: open the mailbox first so the code shows at once.
    let mut pake_task = None;
    match &opts.mode {
        SendMode::Code(chosen) if !delivered => {
            let chosen = chosen.as_deref().map(Code::parse).transpose()?;
            let mut mb = relay.mailbox(chosen.as_ref().map(Code::nameplate), veil_wire::Side::Sender).await?;
            let code = chosen.unwrap_or_else(|| Code::generate(mb.nameplate, DEFAULT_CODE_WORDS));
            if code.is_short() {
                events(Event::Warning {
                    message: "this code is short: anyone who guesses it first gets the file".into(),
                });
            }
            events(Event::Code { code: Revealed::new(code.reveal()) });
            let (tid2, key2, ev) = (tid, key.clone(), events.clone());
            pake_task = Some(tokio::spawn(async move {
                ev(Event::Waiting { what: "receiver".into() });
                let r = crate::pake::sender(&mut mb, &code, &tid2, &key2).await;
                if r.is_ok() {
                    mb.close().await;
                }
                r
            }));
        }
        SendMode::Link { password } => {
            let ticket = match password {
                Some(p) => Ticket::encode_with_password(&tid, &key, p, KdfParams::V1)?,
                None => Ticket::encode_plain(&tid, &key),
            };
            events(Event::Ticket { ticket: Revealed::new(ticket) });
        }
        SendMode::Code(_) | SendMode::To { .. } => {}
    }

    let upload = upload(&relay, opts, &mut entries, content, &tid, &key, owner_cap.expose(), &events);
    match pake_task {
        Some(task) => {
            let (up, pk) =
                tokio::join!(upload, async { task.await.map_err(|e| ClientError::Protocol(e.to_string()))? });
            match pk {
                Ok(v) => {
                    save(true)?;
                    events(Event::KeyExchanged { verifier: v });
                    up?;
                }
                Err(e) => {
                    // Nobody got the key: take the ciphertext off the relay.
                    let _ = relay.call(&Request::Delete { tid: tid.0, owner: *owner_cap.expose() }, None).await;
                    if let Some(n) = &state_name {
                        opts.home.remove(n);
                    }
                    return Err(e);
                }
            }
        }
        None => {
            upload.await?;
            if let SendMode::To { recipient } = &opts.mode {
                if !delivered {
                    let sealed = veil_format::sealed::seal_to(recipient, opts.signer.signing_key(), &tid, &key)?;
                    let len = sealed.len() as u32;
                    let inbox = veil_wire::inbox_id(&recipient.ed25519);
                    relay
                        .call(
                            &Request::InboxPut { inbox, expire_secs: opts.expire.as_secs().max(1), len },
                            Some(Bytes::from(sealed)),
                        )
                        .await?;
                    save(true)?;
                }
                events(Event::Delivered { recipient: recipient.fingerprint() });
            }
        }
    }
    if let Some(n) = &state_name {
        opts.home.remove(n);
    }
    let total: u64 = entries.iter().map(|e| e.entry.size).sum();
    events(Event::Done {
        bytes: total,
        files: entries.iter().map(|e| e.entry.path.clone()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(SendOutcome { tid, bytes: total })
}

struct SpoolGuard(Option<PathBuf>);
impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn state_key(relay: &Relay, opts: &SendOptions, entries: &[SourceEntry]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(relay.addr().hostport.as_bytes());
    match &opts.mode {
        SendMode::Code(Some(c)) => h.update(b"code:").update(c.trim().to_lowercase().as_bytes()),
        SendMode::Code(None) => h.update(b"code"),
        SendMode::Link { .. } => h.update(b"link"),
        SendMode::To { recipient } => h.update(b"to:").update(recipient.encode().as_bytes()),
    };
    for e in entries {
        let abs = e.local.as_ref().and_then(|p| std::fs::canonicalize(p).ok()).unwrap_or_default();
        h.update(e.entry.path.as_bytes()).update(&e.entry.size.to_le_bytes()).update(&e.mtime.to_le_bytes());
        h.update(abs.to_string_lossy().as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}

#[allow(clippy::too_many_arguments)]
async fn upload(
    relay: &Arc<Relay>,
    opts: &SendOptions,
    entries: &mut Vec<SourceEntry>,
    content: ContentKind,
    tid: &TransferId,
    key: &ContentKey,
    owner: &[u8; 32],
    events: &EventSink,
) -> Result<()> {
    let owner = *owner;
    let mut hashed = std::mem::take(entries);
    hashed = tokio::task::spawn_blocking(move || hash_entries(&mut hashed).map(|()| hashed))
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))??;
    *entries = hashed;
    let manifest = Manifest::new(*tid, content, opts.chunk_size, entries.iter().map(|e| e.entry.clone()).collect())?;
    let recipient = match &opts.mode {
        SendMode::To { recipient } => Some(recipient.x25519),
        _ => None,
    };
    let sealed_manifest =
        manifest.seal_named(key, opts.signer.signing_key(), recipient, opts.sender_name.as_deref())?;
    let status = match relay.call(&Request::Status { tid: tid.0, cap: owner }, None).await? {
        (Response::Status(s), _) => s,
        _ => return Err(ClientError::Protocol("unexpected answer to status".into())),
    };
    if status.complete == Some(manifest.chunk_count) {
        events(Event::Progress { done: manifest.total_size, total: manifest.total_size });
        return Ok(());
    }
    // Write-once on the relay: a resumed send keeps the manifest it stored first.
    if !status.manifest {
        let len = sealed_manifest.len() as u32;
        relay.call(&Request::PutManifest { tid: tid.0, owner, len }, Some(Bytes::from(sealed_manifest))).await?;
    }
    let cs = u64::from(manifest.chunk_size);
    let total = manifest.total_size;
    let count = manifest.chunk_count;
    let todo: Vec<u64> = (0..count).filter(|i| !in_ranges(&status.chunks, *i)).collect();
    let done = Arc::new(AtomicU64::new(0));
    let already: u64 = (0..count).filter(|i| in_ranges(&status.chunks, *i)).map(|i| chunk_len(i, cs, total)).sum();
    if already > 0 {
        events(Event::Resumed { done: already, total });
    }
    done.store(already, Ordering::Relaxed);
    let reader = Arc::new(ContentReader::new(entries));
    let sem = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let mut set = JoinSet::new();
    for i in todo {
        let permit = sem.clone().acquire_owned().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        while let Some(r) = set.try_join_next() {
            r.map_err(|e| ClientError::Protocol(e.to_string()))??;
        }
        let (relay, reader, key, tid, done, events) =
            (relay.clone(), reader.clone(), key.clone(), *tid, done.clone(), events.clone());
        set.spawn(async move {
            let _permit = permit;
            let len = chunk_len(i, cs, total);
            let sealed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let plain = reader.read(i * cs, len as usize)?;
                Ok(chunk::seal_chunk(&key, &tid, i, i + 1 == count, &plain))
            })
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))??;
            let blen = sealed.len() as u32;
            relay
                .call(&Request::PutChunk { tid: tid.0, owner, index: i, len: blen }, Some(Bytes::from(sealed)))
                .await?;
            let d = done.fetch_add(len, Ordering::Relaxed) + len;
            events(Event::Progress { done: d, total });
            Ok::<(), ClientError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| ClientError::Protocol(e.to_string()))??;
    }
    relay.call(&Request::Complete { tid: tid.0, owner, chunk_count: count }, None).await?;
    Ok(())
}

/// Plaintext length of chunk `i`.
pub fn chunk_len(i: u64, cs: u64, total: u64) -> u64 {
    total.saturating_sub(i * cs).min(cs)
}
