//! Sending: collect, hash, create the transfer, upload chunks in parallel (each sealed
//! on a blocking thread, so all cores encrypt), and hand the key over by code or ticket.

use crate::conn::Relay;
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink, Revealed};
use crate::files::{ContentReader, SourceEntry, collect, hash_entries};
use crate::home::Home;
use crate::pipeline::{self, Geometry};
use crate::state::ResumeState;
use bytes::Bytes;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use veil_format::code::{Code, DEFAULT_CODE_WORDS};
use veil_format::identity::{Identity, KdfParams, PublicIdentity};
use veil_format::manifest::{ContentKind, Entry, EntryKind, Manifest};
use veil_format::pq::KeyBundle;
use veil_format::ticket::Ticket;
use veil_format::{Capabilities, ContentKey, OwnerSecret, TransferId, chunk};
use veil_wire::{Request, Response, TransferStatus, cap_hash, in_ranges};

/// What to send. Its `Debug` does not show the text.
pub enum SendInput {
    /// Files and folders.
    Paths(Vec<PathBuf>),
    /// A text snippet.
    Text(String),
    /// The bytes of a reader, such as standard input (spooled to a private temporary
    /// file first, then sent as a `stdin` transfer).
    Reader(Box<dyn Read + Send>),
}

impl std::fmt::Debug for SendInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendInput::Paths(p) => f.debug_tuple("Paths").field(p).finish(),
            SendInput::Text(_) => f.write_str("Text(..)"),
            SendInput::Reader(_) => f.write_str("Reader(..)"),
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
    /// Most chunks in flight (the memory budget, one chunk each; fewer on short paths,
    /// see [`crate::conn::DEFAULT_MAX_IN_FLIGHT`]).
    pub parallel: usize,
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions").field("input", &self.input).field("expire", &self.expire).finish_non_exhaustive()
    }
}

/// Plaintext length of chunk `i`.
pub use crate::pipeline::chunk_len;

/// Result of a send.
#[derive(Debug)]
pub struct SendOutcome {
    /// The transfer id.
    pub tid: TransferId,
    /// Plaintext bytes.
    pub bytes: u64,
}

/// A text or reader input, spooled to a private temporary file.
struct Spooled {
    path: PathBuf,
    kind: ContentKind,
    name: &'static str,
}

fn spool(home: &Home, input: &mut SendInput) -> Result<Option<Spooled>> {
    let dir = home.path("tmp");
    crate::home::create_private_dir(&dir)?;
    let mut rnd = [0u8; 8];
    veil_format::random_bytes(&mut rnd);
    let path = dir.join(format!("spool-{}", hex::encode(rnd)));
    let (kind, name) = match input {
        SendInput::Paths(_) => return Ok(None),
        SendInput::Text(t) => {
            std::fs::write(&path, t.as_bytes()).map_err(|e| ClientError::io("writing", &path, e))?;
            (ContentKind::Text, "text.txt")
        }
        SendInput::Reader(r) => {
            let mut f = std::fs::File::create(&path).map_err(|e| ClientError::io("writing", &path, e))?;
            std::io::copy(r, &mut f).map_err(|e| ClientError::io("reading", "the input", e))?;
            (ContentKind::Stdin, "stdin")
        }
    };
    Ok(Some(Spooled { path, kind, name }))
}

struct SpoolGuard(Option<PathBuf>);
impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Send. Emits `Code`/`Ticket` first, then progress; returns when the upload is
/// complete and (code mode) the receiver holds the key. The resume state survives only
/// an error after which the same command can continue ([`ClientError::is_resumable`]).
pub async fn send(relay: Arc<Relay>, mut opts: SendOptions, events: EventSink) -> Result<SendOutcome> {
    let spooled = spool(&opts.home, &mut opts.input)?;
    let _cleanup = SpoolGuard(spooled.as_ref().map(|s| s.path.clone()));
    let mut state_name = None;
    let result = run(relay, &opts, spooled.as_ref(), events, &mut state_name).await;
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
    spooled: Option<&Spooled>,
    events: EventSink,
    state_out: &mut Option<String>,
) -> Result<SendOutcome> {
    let started = Instant::now();
    let entries = source_entries(opts, spooled, &events)?;
    // Resume: the same inputs, mode and relay continue the same transfer.
    let state_name = spooled.is_none().then(|| format!("sends/{}.json", state_key(&relay, opts, &entries)));
    state_out.clone_from(&state_name);
    let t = SendTransfer::resume_or_new(&opts.home, state_name)?;
    t.save(t.delivered)?;
    // Identity mode: find and check the recipient's post-quantum key before uploading
    // anything, so a missing or substituted bundle fails at once.
    let bundle = match &opts.mode {
        SendMode::To { recipient } if !t.delivered => {
            Some(crate::bundle::for_recipient(&relay, &opts.home, recipient).await?)
        }
        _ => None,
    };
    // The transfer is registered while the mailbox opens and the key exchange runs (not
    // one after the other); the exchange delivers the key only once the relay knows the
    // transfer, so no receiver can hold the key of a transfer that does not exist yet.
    let (registered, is_registered) = tokio::sync::oneshot::channel();
    let register = async {
        let r = create(&relay, opts, &t, &entries).await;
        let _ = registered.send(r.is_ok());
        r
    };
    let (created, exchange) = tokio::join!(register, announce(&relay, opts, &t, &events, is_registered));
    created?;
    let exchange = exchange?;
    let content = spooled.map_or(ContentKind::Files, |s| s.kind);
    let up = Upload { relay: &relay, opts, content, t: &t, events: &events };
    let entries = match exchange {
        Some(task) => upload_during_exchange(&up, entries, task).await?,
        None => {
            let entries = up.run(entries).await?;
            deliver(&relay, opts, &t, bundle.as_ref(), &events).await?;
            entries
        }
    };
    t.forget();
    let total: u64 = entries.iter().map(|e| e.entry.size).sum();
    events(Event::Done {
        bytes: total,
        files: entries.iter().map(|e| e.entry.path.clone()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(SendOutcome { tid: t.tid, bytes: total })
}

/// The entries to send: the collected paths, or the one spooled file.
fn source_entries(opts: &SendOptions, spooled: Option<&Spooled>, events: &EventSink) -> Result<Vec<SourceEntry>> {
    let entries = match (&opts.input, spooled) {
        (SendInput::Paths(paths), _) => {
            let (entries, skipped) = collect(paths)?;
            for s in skipped {
                events(Event::Warning { message: format!("skipping {} (not a regular file or folder)", s.display()) });
            }
            entries
        }
        (_, Some(s)) => {
            let meta = std::fs::metadata(&s.path).map_err(|e| ClientError::io("reading", &s.path, e))?;
            let entry =
                Entry { path: s.name.into(), kind: EntryKind::File, size: meta.len(), mode: 0o644, hash: [0; 32] };
            vec![SourceEntry { entry, local: Some(s.path.clone()), mtime: 0 }]
        }
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return Err(ClientError::Usage("nothing to send".into()));
    }
    Ok(entries)
}

/// The transfer being sent: its id and keys, and where its resume state lives (none for
/// spooled input, which cannot be given again).
struct SendTransfer<'a> {
    home: &'a Home,
    state: Option<String>,
    tid: TransferId,
    key: ContentKey,
    owner: OwnerSecret,
    delivered: bool,
    /// Continued from a resume state (the relay may hold some of it already).
    resumed: bool,
}

impl<'a> SendTransfer<'a> {
    /// The transfer of the state file, or a new one (also when the state predates the
    /// owner secret or cannot be read).
    fn resume_or_new(home: &'a Home, state: Option<String>) -> Result<Self> {
        let prior = match &state {
            Some(n) => ResumeState::load(home, n)?.flatten(),
            None => None,
        };
        Ok(match prior {
            Some(ResumeState { tid, key, owner: Some(owner), delivered }) => {
                SendTransfer { home, state, tid, key, owner, delivered: delivered.unwrap_or(false), resumed: true }
            }
            _ => SendTransfer {
                home,
                state,
                tid: TransferId::random(),
                key: ContentKey::random(),
                owner: OwnerSecret::random(),
                delivered: false,
                resumed: false,
            },
        })
    }

    fn save(&self, delivered: bool) -> Result<()> {
        let Some(n) = &self.state else { return Ok(()) };
        let state = ResumeState {
            tid: self.tid,
            key: self.key.clone(),
            owner: Some(self.owner.clone()),
            delivered: Some(delivered),
        };
        state.save(self.home, n)
    }

    fn forget(&self) {
        if let Some(n) = &self.state {
            self.home.remove(n);
        }
    }

    fn owner_cap(&self) -> [u8; 32] {
        *self.owner.capability().expose()
    }
}

/// Register the transfer before anyone can hold its key, so a receiver never looks for
/// a transfer that does not exist yet.
async fn create(relay: &Relay, opts: &SendOptions, t: &SendTransfer<'_>, entries: &[SourceEntry]) -> Result<()> {
    let caps = Capabilities::derive(&t.key);
    let plain_total: u64 = entries.iter().map(|e| e.entry.size).sum();
    let sealed_total = plain_total + chunk::chunk_count(plain_total, opts.chunk_size) * 1024;
    let req = Request::Create {
        tid: t.tid.0,
        owner: cap_hash(&t.owner_cap()),
        download: cap_hash(caps.download.expose()),
        receipt: cap_hash(caps.receipt.expose()),
        expire_secs: opts.expire.as_secs().max(1),
        max_downloads: opts.max_downloads,
        size_hint: Some(sealed_total),
    };
    relay.call(&req, None).await?;
    Ok(())
}

/// The key exchange running beside the upload; it yields the verifier.
type Exchange = JoinHandle<Result<String>>;
/// Whether the relay registered the transfer (the key exchange waits for it before it
/// delivers the key).
type Registered = tokio::sync::oneshot::Receiver<bool>;

/// Show the receiver's way in: the ticket (link mode) or the code (code mode, whose
/// mailbox opens first so the code shows at once; the exchange runs in the background).
async fn announce(
    relay: &Relay,
    opts: &SendOptions,
    t: &SendTransfer<'_>,
    events: &EventSink,
    registered: Registered,
) -> Result<Option<Exchange>> {
    match &opts.mode {
        SendMode::Code(chosen) if !t.delivered => {
            start_exchange(relay, chosen.as_deref(), t, events, registered).await.map(Some)
        }
        SendMode::Link { password } => {
            let ticket = match password {
                Some(p) => Ticket::encode_with_password(&t.tid, &t.key, p, KdfParams::V1)?,
                None => Ticket::encode_plain(&t.tid, &t.key),
            };
            let url = web_url(relay).await.map(|base| Revealed::new(format!("{base}#{ticket}")));
            events(Event::Ticket { ticket: Revealed::new(ticket), url });
            Ok(None)
        }
        SendMode::Code(_) | SendMode::To { .. } => Ok(None),
    }
}

/// The base URL of the relay's web page, if it serves one. A relay from before
/// `WebUrl` answers an error: no page, and the ticket alone is shown.
async fn web_url(relay: &Relay) -> Option<String> {
    match relay.request(&veil_wire::Request::WebUrl, None).await {
        Ok((veil_wire::Response::Web { url }, _)) => url.filter(|u| u.starts_with("https://") && !u.contains('#')),
        _ => None,
    }
}

async fn start_exchange(
    relay: &Relay,
    chosen: Option<&str>,
    t: &SendTransfer<'_>,
    events: &EventSink,
    registered: Registered,
) -> Result<Exchange> {
    let chosen = chosen.map(Code::parse).transpose()?;
    // A chosen code's mailbox opens without waiting for the answer (the first PAKE
    // message goes with the request); an allocated one needs the answer for its code.
    let mut mb = match &chosen {
        Some(c) => relay.mailbox_pipelined(c.nameplate(), veil_wire::Side::Sender).await?,
        None => relay.mailbox(None, veil_wire::Side::Sender).await?,
    };
    let code = chosen.unwrap_or_else(|| Code::generate(mb.nameplate, DEFAULT_CODE_WORDS));
    if code.is_short() {
        events(Event::Warning { message: "this code is short: anyone who guesses it first gets the file".into() });
    }
    events(Event::Code { code: Revealed::new(code.reveal()) });
    let (tid, key, ev) = (t.tid, t.key.clone(), events.clone());
    Ok(tokio::spawn(async move {
        ev(Event::Waiting { what: "receiver".into() });
        let ready = async { registered.await.unwrap_or(false) };
        let r = crate::pake::sender(&mut mb, &code, &tid, &key, ready).await;
        if r.is_ok() {
            mb.close().await;
        }
        r
    }))
}

/// Code mode: upload while the receiver exchanges keys. If the exchange fails nobody got
/// the key: the ciphertext is taken off the relay and the state forgotten.
async fn upload_during_exchange(
    up: &Upload<'_>,
    entries: Vec<SourceEntry>,
    exchange: Exchange,
) -> Result<Vec<SourceEntry>> {
    let mut exchange = exchange;
    let mut upload = Box::pin(up.run(entries));
    let mut uploaded = None;
    // A failed exchange stops the upload at once (nobody will ever hold the key).
    let exchanged = loop {
        tokio::select! {
            r = &mut exchange => break r.unwrap_or_else(|e| Err(e.into())),
            r = &mut upload, if uploaded.is_none() => uploaded = Some(r),
        }
    };
    match exchanged {
        Ok(verifier) => {
            let uploaded = match uploaded {
                Some(r) => r,
                None => upload.await,
            };
            up.t.save(true)?;
            (up.events)(Event::KeyExchanged { verifier });
            uploaded
        }
        Err(e) => {
            drop(upload);
            let _ = up.relay.call(&Request::Delete { tid: up.t.tid.0, owner: up.t.owner_cap() }, None).await;
            up.t.forget();
            Err(e)
        }
    }
}

/// Identity mode: leave `K` sealed to the recipient in their inbox (once), with X-Wing
/// to its checked key bundle.
async fn deliver(
    relay: &Relay,
    opts: &SendOptions,
    t: &SendTransfer<'_>,
    bundle: Option<&KeyBundle>,
    events: &EventSink,
) -> Result<()> {
    let SendMode::To { recipient } = &opts.mode else { return Ok(()) };
    if !t.delivered {
        let bundle = bundle.ok_or(ClientError::Format(veil_format::FormatError::KeyBundleMismatch {
            identity: recipient.fingerprint(),
        }))?;
        let sealed = veil_format::sealed::seal_to(recipient, bundle, opts.signer.signing_key(), &t.tid, &t.key)?;
        let len = sealed.len() as u32;
        let inbox = veil_wire::inbox_id(&recipient.ed25519);
        let req = Request::InboxPut { inbox, expire_secs: opts.expire.as_secs().max(1), len };
        relay.call(&req, Some(Bytes::from(sealed))).await?;
        t.save(true)?;
    }
    events(Event::Delivered { recipient: recipient.fingerprint() });
    Ok(())
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

/// The upload of one transfer: hash, manifest, the missing chunks, complete.
struct Upload<'a> {
    relay: &'a Arc<Relay>,
    opts: &'a SendOptions,
    content: ContentKind,
    t: &'a SendTransfer<'a>,
    events: &'a EventSink,
}

impl Upload<'_> {
    /// Upload what the relay does not have yet; returns the hashed entries.
    async fn run(&self, entries: Vec<SourceEntry>) -> Result<Vec<SourceEntry>> {
        let entries = hash(entries).await?;
        let (manifest, sealed_manifest) = self.manifest(&entries)?;
        // A new transfer holds nothing yet: no need to ask.
        let status = match self.t.resumed {
            true => Some(self.status().await?),
            false => None,
        };
        let (stored, has_manifest) = status.as_ref().map_or((&[][..], false), |s| (&s.chunks[..], s.manifest));
        if status.as_ref().is_some_and(|s| s.complete == Some(manifest.chunk_count)) {
            (self.events)(Event::Progress { done: manifest.total_size, total: manifest.total_size });
            return Ok(entries);
        }
        let (tid, owner) = (self.t.tid.0, self.t.owner_cap());
        // Write-once on the relay: a resumed send keeps the manifest it stored first. It
        // travels beside the chunks, not before them.
        let put_manifest = async {
            if !has_manifest {
                let req = Request::PutManifest { tid, owner, len: sealed_manifest.len() as u32 };
                self.relay.call(&req, Some(Bytes::from(sealed_manifest))).await?;
            }
            Ok(())
        };
        let g = Geometry {
            chunk_size: u64::from(manifest.chunk_size),
            total: manifest.total_size,
            count: manifest.chunk_count,
        };
        tokio::try_join!(put_manifest, self.put_chunks(g, stored, &entries))?;
        self.relay.call(&Request::Complete { tid, owner, chunk_count: g.count }, None).await?;
        Ok(entries)
    }

    /// The manifest and its sealed bytes.
    fn manifest(&self, entries: &[SourceEntry]) -> Result<(Manifest, Vec<u8>)> {
        let opts = self.opts;
        let list = entries.iter().map(|e| e.entry.clone()).collect();
        let manifest = Manifest::new(self.t.tid, self.content, opts.chunk_size, list)?;
        let recipient = match &opts.mode {
            SendMode::To { recipient } => Some(recipient.x25519),
            _ => None,
        };
        let sealed =
            manifest.seal_named(&self.t.key, opts.signer.signing_key(), recipient, opts.sender_name.as_deref())?;
        Ok((manifest, sealed))
    }

    async fn status(&self) -> Result<TransferStatus> {
        match self.relay.call(&Request::Status { tid: self.t.tid.0, cap: self.t.owner_cap() }, None).await? {
            (Response::Status(s), _) => Ok(s),
            _ => Err(ClientError::UnexpectedAnswer { request: "status" }),
        }
    }

    /// Seal and store every chunk not in `stored`, `parallel` at a time.
    async fn put_chunks(&self, g: Geometry, stored: &[(u64, u64)], entries: &[SourceEntry]) -> Result<()> {
        let already = g.bytes_of((0..g.count).filter(|i| in_ranges(stored, *i)));
        if already > 0 {
            (self.events)(Event::Resumed { done: already, total: g.total });
        }
        let job = PutChunk {
            relay: self.relay.clone(),
            reader: Arc::new(ContentReader::new(entries)),
            key: self.t.key.clone(),
            tid: self.t.tid,
            owner: self.t.owner_cap(),
            g,
        };
        let mut done = already;
        let todo = (0..g.count).filter(|i| !in_ranges(stored, *i));
        pipeline::run(
            todo,
            &self.relay.window(self.opts.parallel),
            |i| job.clone().run(i),
            |len| {
                done += len;
                (self.events)(Event::Progress { done, total: g.total });
                Ok(())
            },
        )
        .await
    }
}

/// Hash the files on a blocking thread.
async fn hash(mut entries: Vec<SourceEntry>) -> Result<Vec<SourceEntry>> {
    tokio::task::spawn_blocking(move || hash_entries(&mut entries).map(|()| entries)).await?
}

/// One chunk's upload: read and seal it on a blocking thread, then store it.
#[derive(Clone)]
struct PutChunk {
    relay: Arc<Relay>,
    reader: Arc<ContentReader>,
    key: ContentKey,
    tid: TransferId,
    owner: [u8; 32],
    g: Geometry,
}

impl PutChunk {
    /// Upload chunk `i`; returns its plaintext length.
    async fn run(self, i: u64) -> Result<u64> {
        let PutChunk { relay, reader, key, tid, owner, g } = self;
        let len = g.len(i);
        let sealed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let plain = reader.read(g.offset(i), len as usize)?;
            Ok(chunk::seal_chunk(&key, &tid, i, g.is_last(i), &plain))
        })
        .await??;
        let req = Request::PutChunk { tid: tid.0, owner, index: i, len: sealed.len() as u32 };
        relay.call(&req, Some(Bytes::from(sealed))).await?;
        Ok(len)
    }
}
