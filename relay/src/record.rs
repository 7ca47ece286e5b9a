//! Recording a live stream: each segment the publisher sends (its prefix, then its
//! messages) is exactly a chunk of the format, so the relay keeps it as chunk `index` of
//! a transfer with the stream's id. A segment is written once the next one begins (or
//! the stream ends), by a writer task behind a short queue, so a slow store does not
//! stall the live fan-out until that queue is full.
//!
//! Memory is bounded twice: a recorded segment may be at most [`MAX_RECORDED_SEGMENT`]
//! bytes, and segments waiting for the store hold permits of one relay-wide byte budget
//! ([`RECORD_BUDGET`]); a publisher whose segments cannot get permits waits.
//!
//! The relay cannot see where a segment ends (the tag is encrypted); it only sees where
//! the next one starts. Whether the recording ends cleanly is for the viewer to tell from
//! the authenticated final segment, so a cut stream is closed the same way, with what
//! arrived.

use crate::Shared;
use crate::access::ConnCtx;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use veil_wire::{TransferId, WireError};

/// Segments waiting for the store before the publisher is held back.
pub const RECORD_QUEUE: usize = 8;
/// Largest segment a recording takes (the veil publisher cuts at 1 MiB).
pub const MAX_RECORDED_SEGMENT: usize = 4 << 20;
/// Bytes of recorded segments all streams together may have waiting for the store.
pub const RECORD_BUDGET: usize = 256 << 20;
/// Budget permits are counted in KiB.
const PERMIT_BYTES: usize = 1024;

/// The relay-wide budget of bytes waiting to be recorded.
pub fn budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(RECORD_BUDGET / PERMIT_BYTES))
}

type Queued = (u64, Bytes, OwnedSemaphorePermit);

/// The recording of one stream.
pub struct Recorder {
    tid: TransferId,
    expire_secs: u64,
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    current: Option<BytesMut>,
    next_index: u64,
    tx: Option<mpsc::Sender<Queued>>,
    /// The writer: the number of segments stored, and why it stopped early.
    writer: Option<JoinHandle<(u64, Option<WireError>)>>,
    failed: Option<String>,
    reported: bool,
    /// Segments stored, once the writer has ended.
    stored: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("next_index", &self.next_index).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start recording `tid` (the transfer was created with
    /// [`crate::state::Transfers::create_recording`]), kept `expire_secs` after the end.
    pub fn new(tid: TransferId, expire_secs: u64, shared: Arc<Shared>, ctx: Arc<ConnCtx>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Queued>(RECORD_QUEUE);
        let s = shared.clone();
        let writer = tokio::spawn(async move {
            let mut stored = 0u64;
            // A stream longer than its expiry must not expire while it is recorded, even
            // when its publisher pauses: move the expiry forward every quarter of it.
            let every = Duration::from_millis(expire_secs.saturating_mul(250).max(1000));
            let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    item = rx.recv() => {
                        let Some((index, body, permit)) = item else { break };
                        if let Err(e) = s.transfers.put_segment(&tid, index, body).await {
                            return (stored, Some(e));
                        }
                        drop(permit);
                        stored += 1;
                        s.metrics.segments_recorded.inc();
                    }
                    _ = extend.tick() => {
                        if let Err(e) = s.transfers.extend_recording(&tid, expire_secs).await {
                            tracing::warn!(error = %e, "could not extend a recording's expiry");
                        }
                    }
                }
            }
            (stored, None)
        });
        Recorder {
            tid,
            expire_secs,
            shared,
            ctx,
            current: None,
            next_index: 0,
            tx: Some(tx),
            writer: Some(writer),
            failed: None,
            reported: false,
            stored: 0,
        }
    }

    /// Why recording stopped, once (the caller tells the publisher).
    pub fn take_failure(&mut self) -> Option<String> {
        if self.reported {
            return None;
        }
        let why = self.failed.clone()?;
        self.reported = true;
        Some(why)
    }

    fn fail(&mut self, why: String) {
        tracing::warn!(reason = %why, "stream recording stopped");
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        self.current = None;
        self.tx = None;
    }

    async fn flush(&mut self) {
        let Some(buf) = self.current.take() else { return };
        let index = self.next_index;
        let len = buf.len();
        if let Err(e) = self.shared.access.charge(&self.ctx, &self.tid, len as u64) {
            return self.fail(e.message);
        }
        let units = u32::try_from(len.div_ceil(PERMIT_BYTES)).unwrap_or(u32::MAX);
        let Ok(permit) = self.shared.streams.record_budget().clone().acquire_many_owned(units).await else {
            return self.fail("the relay is shutting down".into());
        };
        let Some(tx) = self.tx.as_ref() else { return };
        if tx.send((index, buf.freeze(), permit)).await.is_err() {
            // The writer only stops early on an error, which joining it makes ours.
            self.join_writer().await;
            return self.fail("the recording's writer stopped".into());
        }
        self.next_index += 1;
    }

    /// Wait for the writer to end (once): the number of segments it stored. Its error,
    /// if any, becomes the recording's.
    async fn join_writer(&mut self) -> u64 {
        if let Some(w) = self.writer.take() {
            let (n, why) = match w.await {
                Ok((n, e)) => (n, e.map(|e| e.message)),
                Err(_) => (0, Some("the recording's writer stopped".to_string())),
            };
            self.stored = n;
            if let Some(why) = why {
                self.fail(why);
            }
        }
        self.stored
    }

    /// A `Segment` frame: the previous segment is complete.
    pub async fn segment(&mut self, index: u64, prefix: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        self.flush().await;
        if self.tx.is_none() {
            return;
        }
        if index != self.next_index {
            return self.fail(format!("segment {index} arrived where {} was expected", self.next_index));
        }
        let mut b = BytesMut::with_capacity((1 << 20) + 4096);
        b.extend_from_slice(prefix);
        self.current = Some(b);
    }

    /// A `Message` frame's payload (length prefix and ciphertext).
    pub fn message(&mut self, m: &[u8]) {
        let Some(buf) = self.current.as_mut() else { return };
        if buf.len() + m.len() > MAX_RECORDED_SEGMENT {
            return self.fail(format!("a segment is larger than the {MAX_RECORDED_SEGMENT} bytes a recording takes"));
        }
        buf.extend_from_slice(m);
    }

    /// The stream ended (cleanly or not): store what arrived and close the recording with
    /// the segments actually stored (also after a failure, so a replay ends instead of
    /// waiting). Ok once everything is durable and nothing failed.
    pub async fn finish(mut self) -> Result<u64, String> {
        self.flush().await;
        self.tx = None;
        let stored = self.join_writer().await;
        let closed =
            self.shared.transfers.finish_recording(&self.tid, stored, self.expire_secs).await.map_err(|e| e.message);
        match (self.failed.take(), closed) {
            (Some(why), _) | (None, Err(why)) => Err(why),
            (None, Ok(())) => Ok(stored),
        }
    }
}
