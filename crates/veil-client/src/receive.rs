//! Receiving: key exchange (code) or ticket, manifest verification, the user's consent,
//! parallel download and decryption into temporary files, hash check, then the rename.

use crate::conn::Relay;
use crate::contacts::{Contacts, SenderStatus};
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink};
use crate::files::OutputPlan;
use crate::home::Home;
use crate::send::chunk_len;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use veil_format::code::Code;
use veil_format::identity::fingerprint_of;
use veil_format::manifest::{ContentKind, EntryKind, Manifest, VerifiedManifest};
use veil_format::ticket::Ticket;
use veil_format::{Capabilities, ContentKey, TransferId, chunk, escape_text};
use veil_wire::{ErrorCode, Request, Response};

/// Code, ticket or a sealed key from our inbox. Its `Debug` shows the kind only.
#[derive(Clone)]
pub enum ReceiveFrom {
    /// A one-time code.
    Code(String),
    /// A link-mode ticket, with its password if it has one.
    Ticket(String, Option<String>),
    /// Identity mode: the transfer and key from an opened sealed key
    /// ([`crate::inbox::Pending`]); the manifest must be bound to `recipient`.
    Inbox {
        /// The transfer.
        tid: TransferId,
        /// Its content key.
        key: ContentKey,
        /// Our X25519 public key (the manifest's recipient binding).
        recipient: [u8; 32],
        /// The sender key the sealed key was signed by: the manifest must be signed by it too.
        sender: [u8; 32],
    },
}

impl std::fmt::Debug for ReceiveFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveFrom::Code(_) => f.write_str("Code(..)"),
            ReceiveFrom::Ticket(..) => f.write_str("Ticket(..)"),
            ReceiveFrom::Inbox { tid, .. } => f.debug_struct("Inbox").field("tid", tid).finish_non_exhaustive(),
        }
    }
}

/// What the user is asked to accept.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Sender fingerprint.
    pub sender: String,
    /// Sender Ed25519 key.
    pub sender_key: [u8; 32],
    /// The name the sender claims (signed; only a claim).
    pub sender_name: Option<String>,
    /// How the sender relates to our contacts.
    pub status: SenderStatus,
    /// The verified manifest.
    pub manifest: Manifest,
}

/// Decides whether to accept an offer (the CLI prompts; `--yes` accepts).
pub type Consent = Arc<dyn Fn(&Offer) -> bool + Send + Sync>;

/// Everything `receive` needs.
#[derive(Clone)]
pub struct ReceiveOptions {
    /// State folder.
    pub home: Home,
    /// Code or ticket.
    pub from: ReceiveFrom,
    /// Output folder.
    pub out_dir: PathBuf,
    /// Replace existing files.
    pub overwrite: bool,
    /// Chunks in flight.
    pub parallel: usize,
    /// Longest wait for the sender without progress.
    pub wait: Duration,
    /// Asked before anything is written.
    pub consent: Consent,
}

impl std::fmt::Debug for ReceiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveOptions").field("out_dir", &self.out_dir).finish_non_exhaustive()
    }
}

/// What was received.
#[derive(Debug)]
pub struct ReceiveOutcome {
    /// The manifest.
    pub manifest: Manifest,
    /// Files written (empty for text and stdin).
    pub written: Vec<PathBuf>,
    /// For text transfers: the text.
    pub text: Option<String>,
}

/// Resume state of a code receive (`receives/<hash>.json`, 0600): the code is used up
/// by the key exchange, so `K` is kept while the download can resume, and deleted at
/// every final outcome. Tickets and inbox entries keep no state: the ticket (still
/// password-wrapped when it has a password) or the inbox entry is given again.
#[derive(Serialize, Deserialize)]
struct RecvState {
    tid: String,
    key: String,
}

fn state_name(from: &ReceiveFrom) -> String {
    let id = match from {
        ReceiveFrom::Code(c) => c.trim().to_lowercase(),
        ReceiveFrom::Ticket(t, _) => t.trim().to_lowercase(),
        ReceiveFrom::Inbox { tid, .. } => format!("inbox:{}", tid.to_hex()),
    };
    format!("receives/{}.json", &blake3::hash(id.as_bytes()).to_hex()[..32])
}

/// Receive. Writes nothing until the manifest verified and `consent` said yes; leaves no
/// final file unless every chunk authenticated and every hash matched. After a final
/// error (anything but [`ClientError::is_resumable`]) no resume state and no partial
/// download is left behind.
pub async fn receive(relay: Arc<Relay>, opts: ReceiveOptions, events: EventSink) -> Result<ReceiveOutcome> {
    let mut part_dir = None;
    let result = run(relay, &opts, events, &mut part_dir).await;
    if let Err(e) = &result
        && !e.is_resumable()
    {
        opts.home.remove(&state_name(&opts.from));
        if let Some(p) = part_dir {
            // Does not follow a symlink at `p` (std removes the link itself).
            let _ = std::fs::remove_dir_all(p);
        }
    }
    result
}

async fn run(
    relay: Arc<Relay>,
    opts: &ReceiveOptions,
    events: EventSink,
    part_dir_out: &mut Option<PathBuf>,
) -> Result<ReceiveOutcome> {
    let started = Instant::now();
    let sname = state_name(&opts.from);
    let prior: Option<RecvState> = match &opts.from {
        ReceiveFrom::Code(_) => opts.home.read_json(&sname)?,
        _ => None,
    };
    let (recipient, sealed_by) = match &opts.from {
        ReceiveFrom::Inbox { recipient, sender, .. } => (Some(*recipient), Some(*sender)),
        _ => (None, None),
    };
    let (tid, key) = match (prior, &opts.from) {
        (_, ReceiveFrom::Inbox { tid, key, .. }) => (*tid, key.clone()),
        (Some(s), _) => {
            let tid =
                TransferId::from_hex(&s.tid).ok_or_else(|| ClientError::Protocol("corrupt receive state".into()))?;
            let kb: [u8; 32] = hex::decode(&s.key)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| ClientError::Protocol("corrupt receive state".into()))?;
            (tid, ContentKey::from_bytes(kb))
        }
        (None, ReceiveFrom::Ticket(t, pw)) => {
            let ticket = Ticket::decode(t)?;
            if ticket.needs_password() && pw.is_none() {
                return Err(ClientError::Usage("this ticket needs a password (--password or VEIL_PASSWORD)".into()));
            }
            (ticket.transfer_id(), ticket.key(pw.as_deref())?)
        }
        (None, ReceiveFrom::Code(c)) => {
            let code = Code::parse(c)?;
            let mut mb = relay.mailbox(Some(code.nameplate()), veil_wire::Side::Receiver).await?;
            events(Event::Waiting { what: "sender".into() });
            let (tid, key, verifier) = tokio::time::timeout(opts.wait, crate::pake::receiver(&mut mb, &code))
                .await
                .map_err(|_| ClientError::Timeout("the sender did not show up".into()))??;
            mb.close().await;
            events(Event::KeyExchanged { verifier });
            (tid, key)
        }
    };
    if matches!(opts.from, ReceiveFrom::Code(_)) {
        opts.home.write_json(&sname, &RecvState { tid: tid.to_hex(), key: hex::encode(key.expose()) })?;
    }
    let caps = Capabilities::derive(&key);
    let download = *caps.download.expose();

    // The manifest (waiting for it while the sender prepares).
    let req = Request::GetManifest { tid: tid.0, download, wait_secs: 30 };
    let sealed = fetch(&relay, &req, opts.wait, veil_wire::MAX_MANIFEST_BODY).await?;
    let VerifiedManifest { manifest, signer, sender_name } = Manifest::open(&sealed, &key, &tid, recipient)?;
    if sealed_by.is_some_and(|s| s != signer) {
        opts.home.remove(&sname);
        return Err(ClientError::Format(veil_format::FormatError::BadSignature));
    }
    let status = Contacts::load(&opts.home)?.classify(&signer, sender_name.as_deref());
    let offer = Offer {
        sender: fingerprint_of(&signer),
        sender_key: signer,
        sender_name,
        status: status.clone(),
        manifest: manifest.clone(),
    };
    events(Event::Offer {
        sender: offer.sender.clone(),
        status,
        files: manifest.entries.iter().filter(|e| e.kind == EntryKind::File).count(),
        folders: manifest.entries.iter().filter(|e| e.kind == EntryKind::Dir).count(),
        bytes: manifest.total_size,
        names: manifest.entries.iter().map(|e| escape_text(&e.path)).collect(),
    });
    let consent = opts.consent.clone();
    let o2 = offer.clone();
    if !tokio::task::spawn_blocking(move || consent(&o2)).await.map_err(|e| ClientError::Protocol(e.to_string()))? {
        opts.home.remove(&sname);
        return Err(ClientError::Declined);
    }

    let to_files = manifest.content == ContentKind::Files;
    let part_dir = if to_files {
        opts.out_dir.join(format!(".veil-{}.part", tid.to_hex()))
    } else {
        opts.home.path(&format!("tmp/recv-{}.part", tid.to_hex()))
    };
    if to_files {
        crate::home::create_private_dir(&opts.out_dir)?;
    }
    let plan = Arc::new(OutputPlan::new(&manifest, &opts.out_dir, part_dir.clone(), opts.overwrite, to_files)?);
    // Ours now (made or checked by the plan): removed after a final error.
    *part_dir_out = Some(part_dir.clone());
    let progress_path = part_dir.join("done");
    let have = plan.done_chunks()?;
    let mut progress = plan.open_progress()?;

    let cs = u64::from(manifest.chunk_size);
    let total = manifest.total_size;
    let count = manifest.chunk_count;
    let already: u64 = have.iter().filter(|i| **i < count).map(|i| chunk_len(*i, cs, total)).sum();
    if already > 0 {
        events(Event::Resumed { done: already, total });
    }
    let done = Arc::new(AtomicU64::new(already));
    let sem = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let mut set: JoinSet<Result<u64>> = JoinSet::new();
    let record = |i: u64, progress: &mut std::fs::File| -> Result<()> {
        writeln!(progress, "{i}").map_err(|e| ClientError::io("writing", &progress_path, e))?;
        let d = done.fetch_add(chunk_len(i, cs, total), Ordering::Relaxed) + chunk_len(i, cs, total);
        events(Event::Progress { done: d, total });
        Ok(())
    };
    for i in (0..count).filter(|i| !have.contains(i)) {
        let permit = sem.clone().acquire_owned().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        while let Some(r) = set.try_join_next() {
            let i = r.map_err(|e| ClientError::Protocol(e.to_string()))??;
            record(i, &mut progress)?;
        }
        let (relay, plan, key, wait) = (relay.clone(), plan.clone(), key.clone(), opts.wait);
        set.spawn(async move {
            let _permit = permit;
            // A chunk's sealed size follows from its plaintext size: ask for no more.
            let cap = chunk::sealed_len(chunk_len(i, cs, total) as usize, chunk::FILE_MESSAGE_SIZE);
            let cap = u32::try_from(cap).unwrap_or(u32::MAX).min(veil_wire::MAX_CHUNK_BODY);
            let req = Request::GetChunk { tid: tid.0, download, index: i, wait_secs: 30 };
            let sealed = fetch(&relay, &req, wait, cap).await?;
            tokio::task::spawn_blocking(move || -> Result<()> {
                let plain = chunk::open_chunk(&key, &tid, i, i + 1 == count, &sealed)?;
                if plain.len() as u64 != chunk_len(i, cs, total) {
                    return Err(ClientError::Format(veil_format::FormatError::Malformed {
                        what: "chunk",
                        reason: "wrong length",
                    }));
                }
                plan.write(i * cs, &plain)
            })
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))??;
            Ok(i)
        });
    }
    while let Some(r) = set.join_next().await {
        let i = r.map_err(|e| ClientError::Protocol(e.to_string()))??;
        record(i, &mut progress)?;
    }
    drop(progress);

    let plan = Arc::try_unwrap(plan).map_err(|_| ClientError::Protocol("download tasks still running".into()))?;
    let m2 = manifest.clone();
    let (plan, result) = tokio::task::spawn_blocking(move || {
        let r = plan.sync().and_then(|()| plan.verify(&m2));
        (plan, r)
    })
    .await
    .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Err(e) = result {
        // Authenticated chunks but a hash mismatch: the sender's manifest lies. Start over next time.
        plan.discard();
        opts.home.remove(&sname);
        return Err(e);
    }
    let mut text = None;
    let written = match manifest.content {
        ContentKind::Files => {
            let m2 = manifest.clone();
            tokio::task::spawn_blocking(move || plan.finish(&m2))
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))??
        }
        ContentKind::Text => {
            let p = plan
                .single_temp()
                .map(PathBuf::from)
                .ok_or_else(|| ClientError::Protocol("empty text transfer".into()))?;
            let t = std::fs::read(&p).map_err(|e| ClientError::io("reading", &p, e))?;
            text = Some(String::from_utf8_lossy(&t).into_owned());
            plan.discard();
            Vec::new()
        }
        ContentKind::Stdin => {
            let p = plan
                .single_temp()
                .map(PathBuf::from)
                .ok_or_else(|| ClientError::Protocol("empty stdin transfer".into()))?;
            let r = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut f = std::fs::File::open(&p)?;
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut f, &mut out)?;
                out.flush()
            })
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
            plan.discard();
            r.map_err(|e| ClientError::io("writing", "standard output", e))?;
            Vec::new()
        }
    };
    // Count the download only now that everything authenticated.
    let _ = relay.call(&Request::Receipt { tid: tid.0, receipt: *caps.receipt.expose() }, None).await;
    opts.home.remove(&sname);
    events(Event::Done {
        bytes: total,
        files: written.iter().map(|p| escape_text(&p.display().to_string())).collect(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(ReceiveOutcome { manifest, written, text })
}

/// Fetch data, retrying while the relay says the sender has not uploaded it yet (on
/// `Timeout`, until `wait` has passed).
pub(crate) async fn fetch(relay: &Relay, req: &Request, wait: Duration, cap: u32) -> Result<bytes::Bytes> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match relay.request_capped(req, None, cap).await? {
            (Response::Data { .. }, Some(b)) => return Ok(b),
            (Response::Error(e), _) if e.code == ErrorCode::Timeout && tokio::time::Instant::now() < deadline => {
                continue;
            }
            (Response::Error(e), _) => return Err(ClientError::Relay(e)),
            _ => return Err(ClientError::Protocol("unexpected answer".into())),
        }
    }
}
