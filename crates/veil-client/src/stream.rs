//! Live streams: `publish` seals standard input as it arrives (each read becomes one
//! secretstream message at once) into segments cut by size or time; `watch` opens them
//! and writes plaintext out. Segments are chunks of the format spec: each has its own key
//! `K_i`, and the end of the stream is an authenticated final segment, so a viewer can
//! tell a clean end from a cut.

use crate::conn::{Mailbox, Relay, read_frame, read_frame_body};
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink, Revealed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use veil_format::chunk::{ChunkOpener, ChunkSealer};
use veil_format::code::{Code, DEFAULT_CODE_WORDS};
use veil_format::{Capabilities, ContentKey, FormatError, TransferId};
/// Largest plaintext of one stream message (one read of the input at most).
pub use veil_wire::MAX_STREAM_MESSAGE;
use veil_wire::TransferStatus;
use veil_wire::{ErrorCode, MailboxMsg, Request, Response, Side, StreamFrame, StreamFrameRef, cap_hash, encode_frame};

/// Publisher options. Its `Debug` does not show a chosen code.
#[derive(Clone)]
pub struct PublishOptions {
    /// A chosen code, or None to have the relay allocate one.
    pub code: Option<String>,
    /// Viewers allowed (each with its own key exchange).
    pub viewers: u32,
    /// Cut a segment after this many bytes...
    pub segment_bytes: usize,
    /// ...or after this long, whichever comes first.
    pub segment_time: Duration,
    /// Keep the segments on the relay for this long, replayable with a ticket or
    /// `--from-start`. A recorded stream starts at once, without waiting for a viewer.
    pub record: Option<Duration>,
}

impl std::fmt::Debug for PublishOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishOptions")
            .field("code", &self.code.as_ref().map(|_| ".."))
            .field("viewers", &self.viewers)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            code: None,
            viewers: 1,
            segment_bytes: 1 << 20,
            segment_time: Duration::from_secs(1),
            record: None,
        }
    }
}

/// How long a viewer waits for the relay to hand over a recorded segment.
const SEGMENT_WAIT: Duration = Duration::from_secs(30);
/// How long a viewer following a recording waits for its next segment while the
/// recording stays open (a little longer than the relay's default idle cut of a silent
/// publisher, after which the recording is closed).
const RECORDING_SILENCE: Duration = Duration::from_secs(660);
/// How long a recording publisher waits, after its end, for the relay to confirm that
/// the whole recording is stored (the last viewers' deliveries and the store's queue of
/// segments come first).
const RECORD_CONFIRM_WAIT: Duration = Duration::from_secs(120);

async fn send_frame(send: &mut quinn::SendStream, f: &StreamFrame) -> Result<()> {
    let b = encode_frame(f)?;
    send.write_all(&b).await.map_err(|e| ClientError::Transport(e.to_string()))
}

/// Send one sealed message as a `Message` frame, handing it to QUIC without a copy.
async fn send_message(send: &mut quinn::SendStream, m: Vec<u8>) -> Result<()> {
    let header = veil_wire::stream_message_header(m.len())?;
    send.write_all_chunks(&mut [bytes::Bytes::from(header), bytes::Bytes::from(m)])
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// Publish `input` until EOF. Returns once the final segment is sent.
pub async fn publish<R: AsyncRead + Unpin>(
    relay: Arc<Relay>,
    opts: PublishOptions,
    mut input: R,
    events: EventSink,
) -> Result<u64> {
    let (mut segments, mut recv) = open_stream(&relay, &opts, &events).await?;
    let (mb, code) = open_mailbox(&relay, &opts, &events).await?;
    let viewers = opts.viewers.max(1);
    let mut pake = spawn_exchanges(mb, code, viewers, segments.tid, segments.key.clone(), events.clone());
    // The stream starts when the first viewer is attached (at once when recording).
    if opts.record.is_none() {
        wait_for_viewer(&mut pake, &mut recv, &events).await?;
    }
    let counter = spawn_counter(recv, events.clone());
    let watcher = spawn_watcher(pake);
    segments.pump(&mut input, &watcher).await?;
    watcher.abort();
    confirm(opts.record.is_some(), counter).await?;
    events(Event::Done { bytes: segments.total, files: Vec::new(), seconds: 0.0 });
    Ok(segments.total)
}

/// Announce the stream to the relay (recorded or not) under a fresh id, key and owner
/// secret; a recorded stream's ticket is shown at once.
async fn open_stream(
    relay: &Relay,
    opts: &PublishOptions,
    events: &EventSink,
) -> Result<(Segments, quinn::RecvStream)> {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let caps = Capabilities::derive(&key);
    // The publisher's own owner secret: viewers, who hold K, cannot act as the owner.
    let owner_secret = veil_format::OwnerSecret::random();
    let (owner, download, max_viewers) =
        (cap_hash(owner_secret.capability().expose()), cap_hash(caps.download.expose()), opts.viewers.max(1));
    let req = match opts.record {
        None => Request::StreamPublish { tid: tid.0, owner, download, max_viewers },
        Some(d) => Request::StreamPublishRecorded {
            tid: tid.0,
            owner,
            download,
            max_viewers,
            receipt: cap_hash(caps.receipt.expose()),
            expire_secs: d.as_secs().max(1),
        },
    };
    let (send, recv) = relay.open_request(&req).await?;
    if opts.record.is_some() {
        events(Event::Ticket {
            ticket: Revealed::new(veil_format::ticket::Ticket::encode_plain(&tid, &key)),
            url: None,
        });
    }
    Ok((Segments::new(send, key, tid, opts), recv))
}

/// Open the code's mailbox (so the code shows at once) and show the code.
async fn open_mailbox(relay: &Relay, opts: &PublishOptions, events: &EventSink) -> Result<(Mailbox, Code)> {
    let chosen = opts.code.as_deref().map(Code::parse).transpose()?;
    let mb = relay.mailbox(chosen.as_ref().map(Code::nameplate), Side::Sender).await?;
    let code = chosen.unwrap_or_else(|| Code::generate(mb.nameplate, DEFAULT_CODE_WORDS));
    if code.is_short() {
        events(Event::Warning { message: "this code is short: anyone who guesses it first can watch".into() });
    }
    events(Event::Code { code: Revealed::new(code.reveal()) });
    Ok((mb, code))
}

/// One key exchange per viewer, one after the other, on the same code.
fn spawn_exchanges(
    mut mb: Mailbox,
    code: Code,
    viewers: u32,
    tid: TransferId,
    key: ContentKey,
    ev: EventSink,
) -> JoinHandle<Result<()>> {
    tokio::spawn(async move {
        for _ in 0..viewers {
            ev(Event::Waiting { what: "viewer".into() });
            let v = crate::pake::sender(&mut mb, &code, &tid, &key, async { true }).await?;
            ev(Event::KeyExchanged { verifier: v });
            // Wait for that viewer to leave the mailbox before the next one may join.
            loop {
                match mb.recv().await? {
                    Some(MailboxMsg::PeerGone) => break,
                    Some(MailboxMsg::Burned) => return Err(ClientError::Format(FormatError::WrongCode)),
                    Some(_) => continue,
                    None => return Ok(()),
                }
            }
        }
        mb.close().await;
        Ok::<(), ClientError>(())
    })
}

/// Wait until the relay reports a first viewer attached (a failed exchange ends it).
async fn wait_for_viewer(
    pake: &mut JoinHandle<Result<()>>,
    recv: &mut quinn::RecvStream,
    events: &EventSink,
) -> Result<()> {
    loop {
        tokio::select! {
            r = &mut *pake => {
                r??;
                // All exchanges done; keep waiting for the attach below.
                *pake = tokio::spawn(std::future::pending());
            }
            f = read_frame::<StreamFrame>(recv) => match f? {
                Some(StreamFrame::Viewers(n)) if n >= 1 => {
                    events(Event::Viewers { count: n });
                    return Ok(());
                }
                Some(_) => continue,
                None => return Err(ClientError::Transport("the relay closed the stream".into())),
            },
        }
    }
}

/// Report viewers coming and going, and what the relay says of the recording; the task
/// ends with the relay's word that the recording is complete (End) or failed.
fn spawn_counter(mut recv: quinn::RecvStream, ev: EventSink) -> JoinHandle<std::result::Result<(), String>> {
    tokio::spawn(async move {
        let mut failure = None;
        while let Ok(Some(f)) = read_frame::<StreamFrame>(&mut recv).await {
            match f {
                StreamFrame::Viewers(n) => ev(Event::Viewers { count: n }),
                StreamFrame::Aborted(why) => {
                    let why = veil_format::escape_text(&why);
                    ev(Event::Warning { message: format!("relay: {why}") });
                    failure = Some(why);
                }
                StreamFrame::End => return failure.map_or(Ok(()), Err),
                _ => {}
            }
        }
        Err(failure.unwrap_or_else(|| "the relay did not confirm the recording".into()))
    })
}

/// Keep failing loudly if a later viewer gets the code wrong: this task ends only on a
/// failed confirmation.
fn spawn_watcher(pake: JoinHandle<Result<()>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Ok(Err(ClientError::Format(FormatError::WrongCode))) = pake.await {
            return;
        }
        std::future::pending::<()>().await
    })
}

/// After the end: a recording exits 0 only once the relay has all of it; a live stream
/// gives the relay a moment to forward the end before the connection closes.
async fn confirm(recorded: bool, counter: JoinHandle<std::result::Result<(), String>>) -> Result<()> {
    if recorded {
        let r = tokio::time::timeout(RECORD_CONFIRM_WAIT, counter)
            .await
            .map_err(|_| ClientError::Timeout("the relay did not confirm the recording".into()))?;
        r?.map_err(|why| ClientError::Protocol(format!("the recording is incomplete: {why}")))?;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), counter).await;
    }
    Ok(())
}

/// The publisher's side of the segment stream: cuts the input into segments by size or
/// time, each sealed with its own key, and ends with an authenticated final segment.
struct Segments {
    send: quinn::SendStream,
    key: ContentKey,
    tid: TransferId,
    /// Index of the current (or next) segment.
    index: u64,
    sealer: Option<ChunkSealer>,
    seg_bytes: usize,
    seg_deadline: tokio::time::Instant,
    segment_bytes: usize,
    segment_time: Duration,
    /// Plaintext bytes sent.
    total: u64,
}

impl Segments {
    fn new(send: quinn::SendStream, key: ContentKey, tid: TransferId, opts: &PublishOptions) -> Self {
        Segments {
            send,
            key,
            tid,
            index: 0,
            sealer: None,
            seg_bytes: 0,
            seg_deadline: tokio::time::Instant::now(),
            segment_bytes: opts.segment_bytes,
            segment_time: opts.segment_time,
            total: 0,
        }
    }

    /// Seal `input` until EOF (each read one message at once), then end the stream.
    async fn pump<R: AsyncRead + Unpin>(&mut self, input: &mut R, watcher: &JoinHandle<()>) -> Result<()> {
        let mut buf = vec![0u8; MAX_STREAM_MESSAGE];
        loop {
            if watcher.is_finished() {
                return Err(ClientError::Format(FormatError::WrongCode));
            }
            let read = if self.sealer.is_some() {
                tokio::select! {
                    r = input.read(&mut buf) => Some(r),
                    _ = tokio::time::sleep_until(self.seg_deadline) => None,
                }
            } else {
                Some(input.read(&mut buf).await)
            };
            match read {
                // Time cut.
                None => self.close_segment().await?,
                Some(r) => {
                    let n = r.map_err(|e| ClientError::io("reading", "the input", e))?;
                    if n == 0 {
                        break;
                    }
                    self.push(&buf[..n]).await?;
                }
            }
        }
        self.close_segment().await?;
        self.end().await
    }

    /// One message of input, opening a segment first if none is open and closing it
    /// when it reached its size.
    async fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.sealer.is_none() {
            let (s, prefix) = ChunkSealer::new(&self.key, &self.tid, self.index, false);
            let frame = StreamFrame::Segment { index: self.index, last: false, prefix: prefix.to_vec() };
            send_frame(&mut self.send, &frame).await?;
            self.sealer = Some(s);
            self.seg_bytes = 0;
            self.seg_deadline = tokio::time::Instant::now() + self.segment_time;
        }
        self.seg_bytes += data.len();
        self.total += data.len() as u64;
        let close = self.seg_bytes >= self.segment_bytes;
        let Some(s) = self.sealer.as_mut() else { return Ok(()) };
        let m = s.push(data, close)?;
        send_message(&mut self.send, m).await?;
        if close {
            self.sealer = None;
            self.index += 1;
        }
        Ok(())
    }

    /// Close the open segment, if any, with an empty final message.
    async fn close_segment(&mut self) -> Result<()> {
        if let Some(mut s) = self.sealer.take() {
            let m = s.push(&[], true)?;
            send_message(&mut self.send, m).await?;
            self.index += 1;
        }
        Ok(())
    }

    /// The authenticated end: a final segment with one empty final message.
    async fn end(&mut self) -> Result<()> {
        let (mut s, prefix) = ChunkSealer::new(&self.key, &self.tid, self.index, true);
        let frame = StreamFrame::Segment { index: self.index, last: true, prefix: prefix.to_vec() };
        send_frame(&mut self.send, &frame).await?;
        send_message(&mut self.send, s.push(&[], true)?).await?;
        send_frame(&mut self.send, &StreamFrame::End).await?;
        let _ = self.send.finish();
        Ok(())
    }
}

/// Viewer options.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Replay a recorded stream from its first segment, then follow it live.
    pub from_start: bool,
    /// How long to wait for the publisher's key exchange.
    pub wait: Duration,
}

/// Run the key exchange on `code` as one of the stream's viewers; returns the stream id
/// and its key.
///
/// Also returns the relay instance the publisher is on, when the code's mailbox was
/// redirected to another instance sharing the store.
pub async fn exchange(
    relay: &Relay,
    code: &str,
    events: &EventSink,
    wait: Duration,
) -> Result<(TransferId, ContentKey, Option<Arc<Relay>>)> {
    let code = Code::parse(code)?;
    // Several viewers share a code: wait our turn while another one is exchanging keys.
    let deadline = tokio::time::Instant::now() + wait;
    let mut mb = loop {
        match relay.mailbox(Some(code.nameplate()), Side::Receiver).await {
            Ok(mb) => break mb,
            Err(ClientError::Relay(e))
                if e.code == ErrorCode::NameplateInUse && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    };
    events(Event::Waiting { what: "publisher".into() });
    let (tid, key, verifier) = tokio::time::timeout(wait, crate::pake::receiver(&mut mb, &code))
        .await
        .map_err(|_| ClientError::Timeout("the publisher did not show up".into()))??;
    let instance = mb.instance();
    mb.close().await;
    events(Event::KeyExchanged { verifier });
    Ok((tid, key, instance))
}

/// Watch the stream behind `code`, writing plaintext to `out`. Ok only at an
/// authenticated end of stream.
pub async fn watch<W: AsyncWrite + Unpin>(
    relay: Arc<Relay>,
    code: &str,
    opts: WatchOptions,
    out: W,
    events: EventSink,
) -> Result<u64> {
    let (tid, key, instance) = exchange(&relay, code, &events, opts.wait).await?;
    // The live stream is on the publisher's instance (the one holding the mailbox).
    watch_key(instance.unwrap_or(relay), tid, key, opts.from_start, out, events).await
}

/// Size of a stream's final segment: a chunk with one empty final message.
const FINAL_SEGMENT_LEN: usize = veil_format::chunk::CHUNK_PREFIX_LEN + veil_format::chunk::MESSAGE_OVERHEAD;

/// Writes the plaintext of segments, in order, whether they come live or from the
/// relay's recording.
struct Player<W> {
    key: ContentKey,
    tid: TransferId,
    out: W,
    opener: Option<ChunkOpener>,
    /// Index of the segment being read (meaningful once `started`).
    current: u64,
    started: bool,
    last_seen: bool,
    /// The next segment index expected (None: any from `min_next` on, at a live join or
    /// after a skip).
    next: Option<u64>,
    /// Lowest index acceptable when `next` is None: a skip never goes backwards.
    min_next: u64,
    /// Plaintext of segment `next` already written (it is skipped when that segment is
    /// read again, from the recording or live).
    written_in_next: u64,
    /// Plaintext of the current segment still to skip.
    skip_remaining: u64,
    /// Plaintext of the current segment so far (written or skipped).
    seg_plain: u64,
    plain: Vec<u8>,
    total: u64,
}

fn index_overflow() -> ClientError {
    ClientError::Protocol("segment index out of range".into())
}

impl<W: AsyncWrite + Unpin> Player<W> {
    fn new(key: ContentKey, tid: TransferId, out: W, next: Option<u64>) -> Self {
        Player {
            key,
            tid,
            out,
            opener: None,
            current: 0,
            started: false,
            last_seen: false,
            next,
            min_next: 0,
            written_in_next: 0,
            skip_remaining: 0,
            seg_plain: 0,
            plain: Vec::with_capacity(MAX_STREAM_MESSAGE),
            total: 0,
        }
    }

    fn in_segment(&self) -> bool {
        self.opener.as_ref().is_some_and(|o| !o.is_finished())
    }

    fn finished_cleanly(&self) -> bool {
        self.last_seen && self.opener.as_ref().is_some_and(ChunkOpener::is_finished)
    }

    /// Segment `index` begins with `data` (its prefix, maybe more of it).
    async fn begin(&mut self, index: u64, last: bool, data: &[u8]) -> Result<()> {
        if self.in_segment() {
            return Err(ClientError::Format(FormatError::ChunkTruncated { index: self.current }));
        }
        match self.next {
            Some(e) if e != index => {
                return Err(ClientError::Protocol(format!("segment {index} arrived where {e} was expected")));
            }
            None if index < self.min_next => {
                return Err(ClientError::Protocol(format!("segment {index} arrived again")));
            }
            _ => {}
        }
        self.opener = Some(ChunkOpener::new(&self.key, &self.tid, index, last));
        self.current = index;
        self.started = true;
        self.last_seen = last;
        self.next = Some(index.checked_add(1).ok_or_else(index_overflow)?);
        self.seg_plain = 0;
        self.skip_remaining = std::mem::take(&mut self.written_in_next);
        self.feed(data).await
    }

    /// More of the current segment.
    async fn feed(&mut self, data: &[u8]) -> Result<()> {
        let o = self.opener.as_mut().ok_or_else(|| ClientError::Protocol("message outside a segment".into()))?;
        self.plain.clear();
        o.feed(data, &mut self.plain)?;
        self.seg_plain += self.plain.len() as u64;
        let skip = usize::try_from(self.skip_remaining).unwrap_or(usize::MAX).min(self.plain.len());
        self.skip_remaining -= skip as u64;
        if skip < self.plain.len() {
            let w = &self.plain[skip..];
            self.total += w.len() as u64;
            self.out.write_all(w).await.map_err(|e| ClientError::io("writing", "standard output", e))?;
            self.out.flush().await.map_err(|e| ClientError::io("writing", "standard output", e))?;
        }
        Ok(())
    }

    /// A whole segment from the recording. Its `last` flag is not stored: a final
    /// segment has a known size, and the guess is checked by authentication.
    async fn stored(&mut self, index: u64, body: &[u8]) -> Result<()> {
        self.begin(index, body.len() == FINAL_SEGMENT_LEN, body).await?;
        if self.in_segment() {
            return Err(ClientError::PeerGone(format!(
                "the recording stops inside segment {index}: the stream was cut"
            )));
        }
        Ok(())
    }

    /// The live stream broke off (we fell behind, or it failed): forget the partial
    /// segment. A recorded replay reads it again and skips what was already written; a
    /// live viewer goes on from a later segment.
    fn skipped(&mut self, recorded: bool) {
        if self.finished_cleanly() {
            // The authenticated end is here already: nothing to go back for.
            return;
        }
        if self.in_segment() {
            // Written of this segment: what we read, and what an earlier read wrote that
            // this one had not reached yet.
            let already = self.seg_plain.saturating_add(self.skip_remaining);
            if recorded {
                self.next = Some(self.current);
                self.written_in_next = already;
            } else {
                self.min_next = self.current.saturating_add(1);
                self.next = None;
            }
        } else if !recorded {
            self.min_next = self.next.unwrap_or(self.min_next);
            self.next = None;
        }
        self.opener = None;
    }

    /// Fetch recorded segments up to (not including) `upto`.
    async fn fill(&mut self, relay: &Relay, download: &[u8; 32], upto: u64) -> Result<()> {
        while let Some(i) = self.next.filter(|&i| i < upto) {
            let body = fetch_segment(relay, &self.tid, download, i).await?;
            self.stored(i, &body).await?;
        }
        Ok(())
    }

    /// Read the rest from the recording, one segment after the other, to its end.
    async fn finish_from_store(&mut self, relay: &Relay, download: &[u8; 32]) -> Result<()> {
        while !self.finished_cleanly() {
            let next = self.next.ok_or_else(|| ClientError::Protocol("no segment to continue from".into()))?;
            self.fill(relay, download, next.checked_add(1).ok_or_else(index_overflow)?).await?;
        }
        Ok(())
    }
}

/// Fetch recorded segment `index`, waiting while the recording is still open (the relay
/// stores a segment when the next one begins, so a pause of the publisher is a wait here),
/// up to [`RECORDING_SILENCE`] without progress.
async fn fetch_segment(relay: &Relay, tid: &TransferId, download: &[u8; 32], index: u64) -> Result<bytes::Bytes> {
    let req = Request::GetChunk { tid: tid.0, download: *download, index, wait_secs: SEGMENT_WAIT.as_secs() as u32 };
    let give_up = tokio::time::Instant::now() + RECORDING_SILENCE;
    loop {
        // One wait of the relay's per request; the loop decides whether to wait again.
        match crate::receive::fetch(relay, &req, Duration::ZERO, veil_wire::MAX_CHUNK_BODY).await {
            Ok(b) => return Ok(b),
            Err(ClientError::Relay(e)) if e.code == ErrorCode::NotFound => {
                return Err(ClientError::PeerGone(format!(
                    "the recording has no segment {index}: the stream was cut (or the recording expired)"
                )));
            }
            Err(ClientError::Relay(e)) if e.code == ErrorCode::Timeout => {
                let open = recording(relay, tid, download).await?.is_some_and(|st| st.complete.is_none());
                if !open || tokio::time::Instant::now() >= give_up {
                    return Err(ClientError::PeerGone(format!(
                        "segment {index} never reached the relay: the stream was cut"
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The recording's status, or None if the stream is not recorded.
async fn recording(relay: &Relay, tid: &TransferId, download: &[u8; 32]) -> Result<Option<TransferStatus>> {
    match relay.request(&Request::Status { tid: tid.0, cap: *download }, None).await? {
        (Response::Status(s), _) => Ok(Some(s)),
        (Response::Error(e), _) if e.code == ErrorCode::NotFound => Ok(None),
        (Response::Error(e), _) => Err(ClientError::Relay(e)),
        _ => Err(ClientError::UnexpectedAnswer { request: "a status request" }),
    }
}

/// Watch stream `tid` with key `key` (from a code's key exchange or a ticket). Live, it
/// starts at the next segment boundary; `from_start` replays the relay's recording first
/// and then follows live, filling any gap (a late join, falling behind, a live stream
/// that breaks off) from the recording. Ok only at an authenticated end of stream.
pub async fn watch_key<W: AsyncWrite + Unpin>(
    relay: Arc<Relay>,
    tid: TransferId,
    key: ContentKey,
    from_start: bool,
    out: W,
    events: EventSink,
) -> Result<u64> {
    let mut p = Player::new(key, tid, out, None);
    let r = follow(relay, &mut p, from_start, &events).await;
    // Everything written reaches the output before we report, also after a cut.
    let closed = p.out.shutdown().await.map_err(|e| ClientError::io("writing", "standard output", e));
    let n = r?;
    closed?;
    events(Event::Done { bytes: n, files: Vec::new(), seconds: 0.0 });
    Ok(n)
}

async fn follow<W: AsyncWrite + Unpin>(
    relay: Arc<Relay>,
    p: &mut Player<W>,
    from_start: bool,
    events: &EventSink,
) -> Result<u64> {
    let tid = p.tid;
    let caps = Capabilities::derive(&p.key);
    let download = *caps.download.expose();
    let mut recorded = false;
    if from_start {
        let mut status = recording(&relay, &tid, &download).await?;
        if status.is_none() {
            events(Event::Warning {
                message: "this stream is not recorded: watching it live from the next segment".into(),
            });
        }
        // Replay what is stored until we catch up with the live edge (or, once the
        // recording is complete, to its end).
        while let Some(st) = status {
            recorded = true;
            let next = *p.next.get_or_insert(0);
            let stored = st.chunks.iter().find(|(a, b)| *a <= next && next < *b).map_or(next, |r| r.1);
            // Complete: every segment below the count is there, or the store lost one.
            let end = st.complete.unwrap_or(stored);
            p.fill(&relay, &download, end).await?;
            if p.finished_cleanly() {
                return Ok(p.total);
            }
            if st.complete.is_some() {
                return Err(ClientError::PeerGone(
                    "the recording ends without the stream's authenticated end: the stream was cut".into(),
                ));
            }
            if end == next {
                break;
            }
            status = Some(
                recording(&relay, &tid, &download)
                    .await?
                    .ok_or_else(|| ClientError::PeerGone("the recording expired while replaying it".into()))?,
            );
        }
    }
    let live = match relay.open_request(&Request::StreamWatch { tid: tid.0, download }).await {
        Ok((_send, recv)) => play_live(&relay, p, recv, recorded, &download, events).await,
        Err(ClientError::Relay(e)) if e.code == ErrorCode::NotFound && !from_start => {
            return Err(ClientError::Relay(veil_wire::WireError::new(
                e.code,
                format!("{} (a recorded stream can be replayed with --from-start)", e.message),
            )));
        }
        Err(e) => Err(e),
    };
    match live {
        Ok(()) => Ok(p.total),
        // The output failed: nothing to fall back to.
        Err(e @ ClientError::Io { .. }) => Err(e),
        // The authenticated final segment is in: whatever went wrong after it (a lost
        // `End`, the connection) does not matter.
        Err(_) if p.finished_cleanly() => Ok(p.total),
        // A recorded stream that is not (or no longer) live, or whose live side broke
        // off or misbehaved: the recording is authenticated the same way; finish from it.
        Err(e) if recorded => {
            tracing::debug!(error = %e, "finishing from the recording");
            p.skipped(true);
            p.finish_from_store(&relay, &download).await?;
            Ok(p.total)
        }
        Err(e) => Err(e),
    }
}

/// Follow the live stream on `recv` to its authenticated end. A recorded viewer fills
/// every gap before a live segment from the recording.
async fn play_live<W: AsyncWrite + Unpin>(
    relay: &Relay,
    p: &mut Player<W>,
    mut recv: quinn::RecvStream,
    recorded: bool,
    download: &[u8; 32],
    events: &EventSink,
) -> Result<()> {
    // A live segment we already have (a recorded replay that caught up may attach before
    // a boundary it already read) is ignored until the next one.
    let mut ignoring = false;
    loop {
        // Decoded as a borrowed view: the message is opened straight from the frame.
        let body = match read_frame_body(&mut recv).await {
            Ok(Some(b)) => b,
            Ok(None) | Err(_) => {
                return Err(ClientError::PeerGone(
                    "the stream was cut: the connection to the relay ended before the stream did".into(),
                ));
            }
        };
        let f = veil_wire::decode_body::<StreamFrameRef<'_>>(&body)?;
        match f {
            StreamFrameRef::Segment { index, last, prefix } => {
                if recorded && !p.in_segment() {
                    match p.next {
                        Some(n) if index < n => {
                            ignoring = true;
                            continue;
                        }
                        Some(_) => p.fill(relay, download, index).await?,
                        None => {}
                    }
                }
                ignoring = false;
                p.begin(index, last, prefix).await?;
            }
            StreamFrameRef::Message(m) => {
                if !ignoring {
                    p.feed(m).await?;
                }
            }
            StreamFrameRef::Skipped(n) => {
                if !recorded {
                    events(Event::Warning { message: format!("fell behind: skipped {n} segment(s)") });
                }
                p.skipped(recorded);
                ignoring = false;
            }
            StreamFrameRef::End => {
                if p.finished_cleanly() {
                    return Ok(());
                }
                return Err(ClientError::Format(FormatError::Malformed {
                    what: "stream",
                    reason: "ended without its authenticated final segment",
                }));
            }
            StreamFrameRef::Aborted(why) => {
                return Err(ClientError::PeerGone(format!("the stream was cut: {}", veil_format::escape_text(why))));
            }
            StreamFrameRef::Viewers(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Segment `index` sealed as messages of the given plaintexts.
    fn segment(key: &ContentKey, tid: &TransferId, index: u64, parts: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (mut s, prefix) = ChunkSealer::new(key, tid, index, false);
        let n = parts.len();
        let msgs = parts.iter().enumerate().map(|(i, p)| s.push(p, i + 1 == n).unwrap()).collect();
        (prefix.to_vec(), msgs)
    }

    #[tokio::test]
    async fn a_recorded_viewer_never_writes_a_segment_twice_after_a_skip() {
        let (key, tid) = (ContentKey::random(), TransferId::random());
        let (prefix, msgs) = segment(&key, &tid, 0, &[b"aaaa", b"bbbb", b"cccc"]);
        let mut p = Player::new(key, tid, Vec::new(), Some(0));
        p.begin(0, false, &prefix).await.unwrap();
        p.feed(&msgs[0]).await.unwrap();
        // Skipped mid-segment; the relay then sends the whole segment again (live or
        // from the recording, in any split): what was written is not written again.
        p.skipped(true);
        assert_eq!(p.next, Some(0));
        p.begin(0, false, &prefix).await.unwrap();
        p.feed(&msgs[0]).await.unwrap();
        p.feed(&[msgs[1].clone(), msgs[2].clone()].concat()).await.unwrap();
        assert_eq!(p.out, b"aaaabbbbcccc");
        assert_eq!(p.total, 12);
    }

    #[tokio::test]
    async fn a_re_read_that_breaks_off_early_still_skips_what_was_written() {
        let (key, tid) = (ContentKey::random(), TransferId::random());
        let (prefix, msgs) = segment(&key, &tid, 0, &[b"aaaa", b"bbbb", b"cccc"]);
        let mut p = Player::new(key, tid, Vec::new(), Some(0));
        p.begin(0, false, &prefix).await.unwrap();
        p.feed(&msgs[0]).await.unwrap();
        p.feed(&msgs[1]).await.unwrap();
        p.skipped(true);
        // Re-read breaks off after one message (still inside what was written)...
        p.begin(0, false, &prefix).await.unwrap();
        p.feed(&msgs[0]).await.unwrap();
        p.skipped(true);
        assert_eq!(p.written_in_next, 8);
        // ...and the next re-read writes only the rest.
        p.begin(0, false, &prefix).await.unwrap();
        for m in &msgs {
            p.feed(m).await.unwrap();
        }
        assert_eq!(p.out, b"aaaabbbbcccc");
    }

    #[tokio::test]
    async fn a_live_viewer_never_goes_back_after_a_skip() {
        let (key, tid) = (ContentKey::random(), TransferId::random());
        let (p0, m0) = segment(&key, &tid, 0, &[b"zero", b"more"]);
        let (p1, m1) = segment(&key, &tid, 1, &[b"one"]);
        let mut p = Player::new(key, tid, Vec::new(), None);
        p.begin(0, false, &p0).await.unwrap();
        p.feed(&m0[0]).await.unwrap();
        p.skipped(false);
        // Segment 0 again (a replay by the relay) is refused; segment 1 is fine.
        assert!(p.begin(0, false, &p0).await.is_err());
        p.begin(1, false, &p1).await.unwrap();
        p.feed(&m1[0]).await.unwrap();
        assert_eq!(p.out, b"zeroone");
        assert!(!p.finished_cleanly());
    }

    #[tokio::test]
    async fn segment_indices_from_the_relay_cannot_overflow() {
        let (key, tid) = (ContentKey::random(), TransferId::random());
        let mut p = Player::new(key, tid, Vec::new(), None);
        assert!(p.begin(u64::MAX, false, &[1u8; 25]).await.is_err());
    }
}
