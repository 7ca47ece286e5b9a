//! Recording a live stream: each segment the publisher sends (its prefix, then its
//! messages) is exactly a chunk of the format, so the relay keeps it as chunk `index` of
//! a transfer with the stream's id. A segment is written once the next one begins (or
//! the stream ends), by a writer task behind a short queue, so a slow store does not
//! stall the live fan-out until that queue is full.
//!
//! The relay cannot see where a segment ends (the tag is encrypted); it only sees where
//! the next one starts. Whether the recording ends cleanly is for the viewer to tell from
//! the authenticated final segment, so a cut stream is closed the same way, with what
//! arrived.

use crate::Shared;
use crate::access::ConnCtx;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use veil_wire::{MAX_CHUNK_BODY, TransferId, WireError};

/// Segments waiting for the store before the publisher is held back.
pub const RECORD_QUEUE: usize = 8;

/// The recording of one stream.
pub struct Recorder {
    tid: TransferId,
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    current: Option<BytesMut>,
    next_index: u64,
    tx: Option<mpsc::Sender<(u64, Bytes)>>,
    writer: Option<JoinHandle<Result<(), WireError>>>,
    failed: Option<String>,
    reported: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("next_index", &self.next_index).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start recording `tid` (the transfer was created with
    /// [`crate::state::Transfers::create_recording`]).
    pub fn new(tid: TransferId, shared: Arc<Shared>, ctx: Arc<ConnCtx>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(u64, Bytes)>(RECORD_QUEUE);
        let s = shared.clone();
        let writer = tokio::spawn(async move {
            while let Some((index, body)) = rx.recv().await {
                s.transfers.put_segment(&tid, index, body).await?;
                s.metrics.segments_recorded.inc();
            }
            Ok(())
        });
        Recorder {
            tid,
            shared,
            ctx,
            current: None,
            next_index: 0,
            tx: Some(tx),
            writer: Some(writer),
            failed: None,
            reported: false,
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
        let len = buf.len() as u64;
        if let Err(e) = self.shared.access.charge(&self.ctx, &self.tid, len) {
            return self.fail(e.message);
        }
        let Some(tx) = self.tx.as_ref() else { return };
        if tx.send((index, buf.freeze())).await.is_err() {
            let why = self.writer_error().await;
            return self.fail(why);
        }
        self.next_index += 1;
    }

    async fn writer_error(&mut self) -> String {
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(Err(e)) => e.message,
                _ => "the recording's writer stopped".into(),
            },
            None => "the recording's writer stopped".into(),
        }
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
        if buf.len() + m.len() > MAX_CHUNK_BODY as usize {
            return self.fail(format!("a segment is larger than {MAX_CHUNK_BODY} bytes"));
        }
        buf.extend_from_slice(m);
    }

    /// The stream ended (cleanly or not): store what arrived and close the recording
    /// (also after a failure, so a replay ends instead of waiting). Ok once everything
    /// is durable and nothing failed.
    pub async fn finish(mut self) -> Result<u64, String> {
        self.flush().await;
        self.tx = None;
        let mut failed = self.failed.take();
        if let Some(w) = self.writer.take() {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = failed.or(Some(e.message)),
                Err(_) => failed = failed.or(Some("the recording's writer stopped".into())),
            }
        }
        let closed = self.shared.transfers.finish_recording(&self.tid, self.next_index).await.map_err(|e| e.message);
        match (failed, closed) {
            (Some(why), _) | (None, Err(why)) => Err(why),
            (None, Ok(())) => Ok(self.next_index),
        }
    }
}
