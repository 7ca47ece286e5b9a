//! Live streams: the relay fans each frame of a publisher out to its current viewers.
//! Every viewer has a bounded queue; a viewer whose queue is full is moved forward to the
//! next segment boundary (frames are dropped for it), so a slow viewer never slows the
//! publisher or the other viewers. Only when every viewer is full does the relay wait:
//! the publisher runs at the pace of its fastest viewer, and a lone viewer loses nothing.

use crate::metrics::Metrics;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use veil_wire::{CapabilityHash, ErrorCode, StreamFrame, TransferId, WireError, cap_hash, encode_frame};

/// Frames queued per viewer before it is skipped forward.
pub const VIEWER_QUEUE: usize = 64;

/// Limits on live streams.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Most live streams on this relay.
    pub max_streams: usize,
    /// Most viewers of all streams together.
    pub max_viewers: usize,
    /// Most viewers of one stream (the publisher may ask for fewer).
    pub max_viewers_per_stream: u32,
    /// Longest a publisher may stay silent before its stream is cut.
    pub idle: std::time::Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_streams: 256,
            max_viewers: 4096,
            max_viewers_per_stream: 64,
            idle: std::time::Duration::from_secs(600),
        }
    }
}

struct Viewer {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    resync: bool,
    skipped: u64,
}

/// One live stream.
pub struct LiveStream {
    download: CapabilityHash,
    max_viewers: u32,
    viewers: Mutex<Vec<Viewer>>,
    count: watch::Sender<u32>,
    next_id: AtomicU64,
    room: tokio::sync::Notify,
    /// Set once the final segment started: from then on every viewer gets every frame.
    ending: std::sync::atomic::AtomicBool,
    /// Set (under the viewers lock) once the stream is over: no viewer may attach.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream").field("max_viewers", &self.max_viewers).finish_non_exhaustive()
    }
}

/// All live streams of this relay.
#[derive(Debug)]
pub struct Streams {
    map: Mutex<HashMap<TransferId, Arc<LiveStream>>>,
    limits: StreamLimits,
    viewers: AtomicU64,
    record_budget: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
}

fn lock_err() -> WireError {
    WireError::new(ErrorCode::Internal, "lock poisoned")
}

/// Encode a frame for sending (frames we build ourselves always encode).
pub fn frame_bytes(f: &StreamFrame) -> Bytes {
    Bytes::from(encode_frame(f).unwrap_or_default())
}

impl Streams {
    /// No streams.
    pub fn new(limits: StreamLimits, metrics: Arc<Metrics>) -> Self {
        Streams {
            map: Mutex::new(HashMap::new()),
            limits,
            viewers: AtomicU64::new(0),
            record_budget: crate::record::budget(),
            metrics,
        }
    }

    /// Bytes of recorded segments waiting for the store, all streams together.
    pub fn record_budget(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.record_budget
    }

    /// The limits in force.
    pub fn limits(&self) -> &StreamLimits {
        &self.limits
    }

    fn viewers_gone(&self, n: usize) {
        if n > 0 {
            self.viewers.fetch_sub(n as u64, Ordering::Relaxed);
            self.metrics.viewers.dec_by(n as i64);
        }
    }

    /// Register a publisher.
    pub fn publish(
        &self,
        tid: TransferId,
        download: CapabilityHash,
        max_viewers: u32,
    ) -> Result<(Arc<LiveStream>, watch::Receiver<u32>), WireError> {
        let mut m = self.map.lock().map_err(|_| lock_err())?;
        if m.contains_key(&tid) {
            return Err(WireError::new(ErrorCode::Conflict, "stream id already in use"));
        }
        if m.len() >= self.limits.max_streams {
            self.metrics.reject("too_many_streams");
            return Err(WireError::new(
                ErrorCode::LimitExceeded,
                "the relay has too many live streams; try again later",
            ));
        }
        let (count, rx) = watch::channel(0);
        let s = Arc::new(LiveStream {
            download,
            max_viewers: max_viewers.clamp(1, self.limits.max_viewers_per_stream.max(1)),
            viewers: Mutex::new(Vec::new()),
            count,
            next_id: AtomicU64::new(1),
            room: tokio::sync::Notify::new(),
            ending: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        m.insert(tid, s.clone());
        self.metrics.streams_active.set(m.len() as i64);
        Ok((s, rx))
    }

    /// Remove a finished stream.
    pub fn end(&self, tid: &TransferId) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(tid);
            self.metrics.streams_active.set(m.len() as i64);
        }
    }

    /// Attach a viewer; it receives frames from the next segment on.
    pub fn watch(
        &self,
        tid: &TransferId,
        cap: &[u8; 32],
    ) -> Result<(Arc<LiveStream>, u64, mpsc::Receiver<Bytes>), WireError> {
        let s = self.map.lock().map_err(|_| lock_err())?.get(tid).cloned().ok_or_else(|| {
            WireError::new(ErrorCode::NotFound, "no such live stream (it ended, or the code was wrong)")
        })?;
        if cap_hash(cap) != s.download {
            return Err(WireError::new(ErrorCode::Forbidden, "wrong watch capability"));
        }
        let mut v = s.viewers.lock().map_err(|_| lock_err())?;
        if s.closed.load(Ordering::Relaxed) {
            return Err(WireError::new(ErrorCode::NotFound, "this live stream just ended"));
        }
        if v.len() as u32 >= s.max_viewers {
            self.metrics.reject("too_many_viewers");
            return Err(WireError::new(
                ErrorCode::LimitExceeded,
                format!("this stream already has its {} viewer(s)", s.max_viewers),
            ));
        }
        let all = self.viewers.fetch_add(1, Ordering::Relaxed);
        if all >= self.limits.max_viewers as u64 {
            self.viewers.fetch_sub(1, Ordering::Relaxed);
            self.metrics.reject("too_many_viewers_on_relay");
            return Err(WireError::new(ErrorCode::LimitExceeded, "the relay has too many viewers; try again later"));
        }
        let (tx, rx) = mpsc::channel(VIEWER_QUEUE);
        let id = s.next_id.fetch_add(1, Ordering::Relaxed);
        v.push(Viewer { id, tx, resync: true, skipped: 0 });
        let n = v.len() as u32;
        drop(v);
        s.count.send_replace(n);
        self.metrics.viewers.inc();
        Ok((s, id, rx))
    }

    /// Forward one raw frame from the publisher to every viewer. A viewer whose queue is
    /// full is skipped forward to the next segment boundary; only when *every* viewer is
    /// full does this wait (for the first one to make room), so the publisher is paced by
    /// its fastest viewer and a slow viewer never slows anyone else.
    pub async fn fan_out(&self, s: &LiveStream, frame: &StreamFrame, raw: Bytes) {
        if matches!(frame, StreamFrame::Segment { last: true, .. }) {
            s.ending.store(true, Ordering::Relaxed);
        }
        if s.ending.load(Ordering::Relaxed) {
            return self.deliver_to_all(s, frame, raw).await;
        }
        let mut pending: Option<Vec<u64>> = None;
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let room = s.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let (delivered, full) = self.try_fan_out(s, frame, &raw, pending.as_deref());
            if full.is_empty() {
                return;
            }
            if delivered || tokio::time::Instant::now() >= give_up {
                self.skip(s, &full);
                return;
            }
            pending = Some(full);
            let _ = tokio::time::timeout_at(give_up, room).await;
        }
    }

    /// The authenticated end of the stream (final segment, its message, End) is small and
    /// must reach every viewer, including one that was skipped forward: wait for room
    /// (bounded) instead of dropping. A viewer still waiting for a segment boundary gets
    /// the final segment from its start, never a message without its segment.
    async fn deliver_to_all(&self, s: &LiveStream, frame: &StreamFrame, raw: Bytes) {
        let is_message = matches!(frame, StreamFrame::Message(_));
        let is_segment = matches!(frame, StreamFrame::Segment { .. });
        let targets: Vec<(u64, mpsc::Sender<Bytes>, Option<Bytes>)> = match s.viewers.lock() {
            Ok(mut v) => v
                .iter_mut()
                .filter(|x| !(x.resync && is_message))
                .map(|x| {
                    let notice = (x.resync && x.skipped > 0).then(|| frame_bytes(&StreamFrame::Skipped(x.skipped)));
                    x.resync = false;
                    x.skipped = 0;
                    (x.id, x.tx.clone(), notice)
                })
                .collect(),
            Err(_) => return,
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut missed = Vec::new();
        for (id, tx, notice) in targets {
            if let Some(n) = notice {
                let _ = tokio::time::timeout_at(deadline, tx.send(n)).await;
            }
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, tx.send(raw.clone())).await {
                self.metrics.stream_bytes.inc_by(raw.len() as u64);
            } else if is_segment {
                missed.push(id);
            }
        }
        // A viewer that did not get the final segment's start must not get its messages.
        if !missed.is_empty()
            && let Ok(mut v) = s.viewers.lock()
        {
            for x in v.iter_mut().filter(|x| missed.contains(&x.id)) {
                x.resync = true;
            }
        }
    }

    /// One pass: returns whether any viewer took the frame, and the ids that were full.
    fn try_fan_out(&self, s: &LiveStream, frame: &StreamFrame, raw: &Bytes, only: Option<&[u64]>) -> (bool, Vec<u64>) {
        let is_segment = matches!(frame, StreamFrame::Segment { .. });
        let Ok(mut viewers) = s.viewers.lock() else { return (false, Vec::new()) };
        let before = viewers.len();
        let mut delivered = false;
        let mut full = Vec::new();
        viewers.retain_mut(|v| {
            if only.is_some_and(|ids| !ids.contains(&v.id)) {
                return true;
            }
            if v.resync {
                if !is_segment {
                    return true;
                }
                if v.skipped > 0 {
                    match v.tx.try_send(frame_bytes(&StreamFrame::Skipped(v.skipped))) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            full.push(v.id);
                            return true;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return false,
                    }
                }
                v.resync = false;
                v.skipped = 0;
            }
            match v.tx.try_send(raw.clone()) {
                Ok(()) => {
                    delivered = true;
                    self.metrics.stream_bytes.inc_by(raw.len() as u64);
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    full.push(v.id);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if viewers.len() != before {
            let n = viewers.len() as u32;
            self.viewers_gone(before - viewers.len());
            drop(viewers);
            s.count.send_replace(n);
        }
        (delivered, full)
    }

    /// Move these viewers forward: they skip to the next segment boundary.
    fn skip(&self, s: &LiveStream, ids: &[u64]) {
        if let Ok(mut viewers) = s.viewers.lock() {
            for v in viewers.iter_mut().filter(|v| ids.contains(&v.id)) {
                if !v.resync {
                    v.resync = true;
                }
                v.skipped += 1;
                self.metrics.viewers_skipped.inc();
            }
        }
    }

    /// A viewer's writer made room in its queue.
    pub fn made_room(&self, s: &LiveStream) {
        s.room.notify_waiters();
    }

    /// A viewer left.
    pub fn detach(&self, s: &LiveStream, id: u64) {
        if let Ok(mut v) = s.viewers.lock() {
            let before = v.len();
            v.retain(|x| x.id != id);
            self.viewers_gone(before - v.len());
            s.count.send_replace(v.len() as u32);
        }
    }

    /// The publisher is gone: tell every viewer (best effort) and drop their queues.
    pub fn close(&self, s: &LiveStream, frame: &StreamFrame) {
        let raw = frame_bytes(frame);
        if let Ok(mut v) = s.viewers.lock() {
            s.closed.store(true, Ordering::Relaxed);
            for x in v.iter() {
                let _ = x.tx.try_send(raw.clone());
            }
            self.viewers_gone(v.len());
            v.clear();
        }
    }
}
