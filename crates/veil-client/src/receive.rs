//! Receiving: key exchange (code) or ticket, manifest verification, the user's consent,
//! parallel download and decryption into temporary files, hash check, then the rename.

use crate::conn::Relay;
use crate::contacts::{Contacts, SenderStatus};
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink};
use crate::files::OutputPlan;
use crate::home::Home;
use crate::pipeline::{self, Geometry};
use crate::state::ResumeState;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// Where the bytes of a `stdin` transfer go (the CLI gives its standard output).
pub type Output = Arc<Mutex<dyn Write + Send>>;

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
    /// Most chunks in flight (the memory budget, one chunk each; fewer on short paths,
    /// see [`crate::conn::DEFAULT_MAX_IN_FLIGHT`]).
    pub parallel: usize,
    /// Longest wait for the sender without progress.
    pub wait: Duration,
    /// Asked before anything is written.
    pub consent: Consent,
    /// Where a `stdin` transfer (one sent from a reader) is written, once every chunk
    /// authenticated and every hash matched.
    pub stream_out: Output,
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
    let state = state_name(&opts.from);
    let (tid, key) = transfer_key(&relay, opts, &state, &events).await?;
    if matches!(opts.from, ReceiveFrom::Code(_)) {
        let resume = ResumeState { tid, key: key.clone(), owner: None, delivered: None };
        resume.save(&opts.home, &state)?;
    }
    let caps = Capabilities::derive(&key);
    let rx = Receiver { relay, opts, events, tid, key, download: *caps.download.expose(), state };
    // Chunk 0 is asked for beside the manifest (one round trip saved on small
    // transfers); it is only opened once the manifest verified and consent was given.
    let first = rx.prefetch_first();
    let manifest = rx.ask_consent(rx.open_manifest().await?).await?;
    let plan = rx.download(&manifest, part_dir_out, first).await?;
    let plan = rx.verify(plan, &manifest).await?;
    let (written, text) = rx.finish(plan, &manifest).await?;
    // Count the download only now that everything authenticated.
    let _ = rx.relay.call(&Request::Receipt { tid: tid.0, receipt: *caps.receipt.expose() }, None).await;
    opts.home.remove(&rx.state);
    (rx.events)(Event::Done {
        bytes: manifest.total_size,
        files: written.iter().map(|p| escape_text(&p.display().to_string())).collect(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(ReceiveOutcome { manifest, written, text })
}

/// The transfer and its key: from the resume state of a code receive, the inbox entry,
/// the ticket, or the key exchange on the code.
async fn transfer_key(
    relay: &Relay,
    opts: &ReceiveOptions,
    state: &str,
    events: &EventSink,
) -> Result<(TransferId, ContentKey)> {
    let prior = match &opts.from {
        ReceiveFrom::Code(_) => ResumeState::load(&opts.home, state)?,
        _ => None,
    };
    match (prior, &opts.from) {
        (_, ReceiveFrom::Inbox { tid, key, .. }) => Ok((*tid, key.clone())),
        (Some(s), _) => s.map(|s| (s.tid, s.key)).ok_or_else(|| ClientError::Protocol("corrupt receive state".into())),
        (None, ReceiveFrom::Ticket(t, pw)) => {
            let ticket = Ticket::decode(t)?;
            if ticket.needs_password() && pw.is_none() {
                return Err(ClientError::PasswordNeeded);
            }
            Ok((ticket.transfer_id(), ticket.key(pw.as_deref())?))
        }
        (None, ReceiveFrom::Code(c)) => {
            let code = Code::parse(c)?;
            let mut mb = relay.mailbox_pipelined(code.nameplate(), veil_wire::Side::Receiver).await?;
            events(Event::Waiting { what: "sender".into() });
            let (tid, key, verifier) = tokio::time::timeout(opts.wait, crate::pake::receiver(&mut mb, &code))
                .await
                .map_err(|_| ClientError::Timeout("the sender did not show up".into()))??;
            // Closed in the background: the download need not wait for the relay's end
            // of the mailbox stream.
            tokio::spawn(mb.close());
            events(Event::KeyExchanged { verifier });
            Ok((tid, key))
        }
    }
}

/// One receive once the key is known.
struct Receiver<'a> {
    relay: Arc<Relay>,
    opts: &'a ReceiveOptions,
    events: EventSink,
    tid: TransferId,
    key: ContentKey,
    download: [u8; 32],
    /// The resume state's name (deleted at final outcomes).
    state: String,
}

impl Receiver<'_> {
    /// The manifest (waiting for it while the sender prepares), opened and checked.
    async fn open_manifest(&self) -> Result<VerifiedManifest> {
        let (recipient, sealed_by) = match &self.opts.from {
            ReceiveFrom::Inbox { recipient, sender, .. } => (Some(*recipient), Some(*sender)),
            _ => (None, None),
        };
        let req = Request::GetManifest { tid: self.tid.0, download: self.download, wait_secs: 30 };
        let sealed = fetch(&self.relay, &req, self.opts.wait, veil_wire::MAX_MANIFEST_BODY).await?;
        let verified = Manifest::open(&sealed, &self.key, &self.tid, recipient)?;
        if sealed_by.is_some_and(|s| s != verified.signer) {
            self.opts.home.remove(&self.state);
            return Err(ClientError::Format(veil_format::FormatError::BadSignature));
        }
        Ok(verified)
    }

    /// Fetch chunk 0 in the background (a resumed download that has it already drops
    /// the fetch, [`Prefetch`] aborts on drop).
    fn prefetch_first(&self) -> Option<Prefetch> {
        let relay = self.relay.clone();
        let req = Request::GetChunk { tid: self.tid.0, download: self.download, index: 0, wait_secs: 30 };
        let wait = self.opts.wait;
        Some(Prefetch(tokio::spawn(async move { fetch(&relay, &req, wait, veil_wire::MAX_CHUNK_BODY).await })))
    }

    /// Show the offer and ask; a refusal forgets the transfer.
    async fn ask_consent(&self, verified: VerifiedManifest) -> Result<Manifest> {
        let VerifiedManifest { manifest, signer, sender_name } = verified;
        let status = Contacts::load(&self.opts.home)?.classify(&signer, sender_name.as_deref());
        let offer = Offer { sender: fingerprint_of(&signer), sender_key: signer, sender_name, status, manifest };
        (self.events)(Event::Offer {
            sender: offer.sender.clone(),
            status: offer.status.clone(),
            files: offer.manifest.entries.iter().filter(|e| e.kind == EntryKind::File).count(),
            folders: offer.manifest.entries.iter().filter(|e| e.kind == EntryKind::Dir).count(),
            bytes: offer.manifest.total_size,
            names: offer.manifest.entries.iter().map(|e| escape_text(&e.path)).collect(),
        });
        let consent = self.opts.consent.clone();
        let (accepted, offer) = tokio::task::spawn_blocking(move || (consent(&offer), offer)).await?;
        if !accepted {
            self.opts.home.remove(&self.state);
            return Err(ClientError::Declined);
        }
        Ok(offer.manifest)
    }

    /// Download, authenticate and write every chunk not yet done into the plan's
    /// temporary files, `parallel` at a time, recording each in the progress file.
    async fn download(
        &self,
        manifest: &Manifest,
        part_dir_out: &mut Option<PathBuf>,
        first: Option<Prefetch>,
    ) -> Result<OutputPlan> {
        let (plan, part_dir) = self.plan(manifest)?;
        // Ours now (made or checked by the plan): removed after a final error.
        let progress_path = part_dir.join("done");
        *part_dir_out = Some(part_dir);
        let plan = Arc::new(plan);
        let have = plan.done_chunks()?;
        let mut progress = plan.open_progress()?;
        let g = Geometry {
            chunk_size: u64::from(manifest.chunk_size),
            total: manifest.total_size,
            count: manifest.chunk_count,
        };
        let already = g.bytes_of(have.iter().copied());
        if already > 0 {
            (self.events)(Event::Resumed { done: already, total: g.total });
        }
        let job = GetChunk {
            relay: self.relay.clone(),
            plan: plan.clone(),
            key: self.key.clone(),
            tid: self.tid,
            download: self.download,
            wait: self.opts.wait,
            g,
            first: Arc::new(std::sync::Mutex::new(first.filter(|_| g.count > 0 && !have.contains(&0)))),
        };
        let mut done = already;
        let todo = (0..g.count).filter(|i| !have.contains(i));
        pipeline::run(
            todo,
            &self.relay.window(self.opts.parallel),
            |i| job.clone().run(i),
            |i| {
                writeln!(progress, "{i}").map_err(|e| ClientError::io("writing", &progress_path, e))?;
                done += g.len(i);
                (self.events)(Event::Progress { done, total: g.total });
                Ok(())
            },
        )
        .await?;
        drop((progress, job));
        Arc::try_unwrap(plan).map_err(|_| ClientError::Protocol("download tasks still running".into()))
    }

    /// The output plan and its part folder.
    fn plan(&self, manifest: &Manifest) -> Result<(OutputPlan, PathBuf)> {
        let opts = self.opts;
        let to_files = manifest.content == ContentKind::Files;
        let part_dir = if to_files {
            opts.out_dir.join(format!(".veil-{}.part", self.tid.to_hex()))
        } else {
            opts.home.path(&format!("tmp/recv-{}.part", self.tid.to_hex()))
        };
        if to_files {
            crate::home::create_private_dir(&opts.out_dir)?;
        }
        let plan = OutputPlan::new(manifest, &opts.out_dir, part_dir.clone(), opts.overwrite, to_files)?;
        Ok((plan, part_dir))
    }

    /// Sync and check every hash. Authenticated chunks but a hash mismatch: the sender's
    /// manifest lies, so start over next time.
    async fn verify(&self, plan: OutputPlan, manifest: &Manifest) -> Result<OutputPlan> {
        let m = manifest.clone();
        let (plan, result) = tokio::task::spawn_blocking(move || {
            let r = plan.sync().and_then(|()| plan.verify(&m));
            (plan, r)
        })
        .await?;
        if let Err(e) = result {
            plan.discard();
            self.opts.home.remove(&self.state);
            return Err(e);
        }
        Ok(plan)
    }

    /// Put the verified content where it belongs: files renamed into place, text
    /// returned, a `stdin` transfer copied to the output writer.
    async fn finish(&self, plan: OutputPlan, manifest: &Manifest) -> Result<(Vec<PathBuf>, Option<String>)> {
        match manifest.content {
            ContentKind::Files => {
                let m = manifest.clone();
                Ok((tokio::task::spawn_blocking(move || plan.finish(&m)).await??, None))
            }
            ContentKind::Text => {
                let p = single_temp(&plan, "empty text transfer")?;
                let t = std::fs::read(&p).map_err(|e| ClientError::io("reading", &p, e))?;
                plan.discard();
                Ok((Vec::new(), Some(String::from_utf8_lossy(&t).into_owned())))
            }
            ContentKind::Stdin => {
                let p = single_temp(&plan, "empty stdin transfer")?;
                let out = self.opts.stream_out.clone();
                let r = tokio::task::spawn_blocking(move || copy_out(&p, &out)).await?;
                plan.discard();
                r.map_err(|e| ClientError::io("writing", "the output", e))?;
                Ok((Vec::new(), None))
            }
        }
    }
}

fn single_temp(plan: &OutputPlan, what: &'static str) -> Result<PathBuf> {
    plan.single_temp().map(PathBuf::from).ok_or_else(|| ClientError::Protocol(what.into()))
}

fn copy_out(p: &std::path::Path, out: &Output) -> std::io::Result<()> {
    let mut f = std::fs::File::open(p)?;
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    std::io::copy(&mut f, &mut *out)?;
    out.flush()
}

/// One chunk's download: fetch it (capped at its exact sealed size), then open and
/// write it on a blocking thread.
#[derive(Clone)]
struct GetChunk {
    relay: Arc<Relay>,
    plan: Arc<OutputPlan>,
    key: ContentKey,
    tid: TransferId,
    download: [u8; 32],
    wait: Duration,
    g: Geometry,
    /// Chunk 0, asked for beside the manifest.
    first: Arc<std::sync::Mutex<Option<Prefetch>>>,
}

/// A chunk fetch started early; aborted if nobody takes it.
struct Prefetch(tokio::task::JoinHandle<Result<bytes::Bytes>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl GetChunk {
    /// Download chunk `i`; returns `i`.
    async fn run(self, i: u64) -> Result<u64> {
        let GetChunk { relay, plan, key, tid, download, wait, g, first } = self;
        // A chunk's sealed size follows from its plaintext size: ask for no more.
        let cap = chunk::sealed_len(g.len(i) as usize, chunk::FILE_MESSAGE_SIZE);
        let cap = u32::try_from(cap).unwrap_or(u32::MAX).min(veil_wire::MAX_CHUNK_BODY);
        let early = if i == 0 { first.lock().ok().and_then(|mut f| f.take()) } else { None };
        let early = match early {
            Some(mut p) => (&mut p.0).await.ok().and_then(Result::ok).filter(|b| b.len() <= cap as usize),
            None => None,
        };
        let sealed = match early {
            Some(b) => b,
            None => {
                let req = Request::GetChunk { tid: tid.0, download, index: i, wait_secs: 30 };
                fetch(&relay, &req, wait, cap).await?
            }
        };
        tokio::task::spawn_blocking(move || -> Result<()> {
            let plain = chunk::open_chunk(&key, &tid, i, g.is_last(i), &sealed)?;
            if plain.len() as u64 != g.len(i) {
                return Err(ClientError::Format(veil_format::FormatError::Malformed {
                    what: "chunk",
                    reason: "wrong length",
                }));
            }
            plan.write(g.offset(i), &plain)
        })
        .await??;
        Ok(i)
    }
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
            _ => return Err(ClientError::UnexpectedAnswer { request: "a download" }),
        }
    }
}
