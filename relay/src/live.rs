//! Live streams on the relay: a publisher's frames fanned out to its viewers (and, when
//! recording, kept as the chunks of a transfer), and viewers attached from the next
//! segment on. The relay looks into stream frames only for segment boundaries; messages
//! are forwarded as they came.

use crate::Shared;
use crate::access::ConnCtx;
use crate::quic::write_frame;
use crate::record::Recorder;
use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use std::time::Duration;
use veil_wire::{Response, StreamFrame, StreamFrameRef, WireError, frame_len};

/// Read one frame as raw bytes (length prefix included).
async fn read_raw_frame(recv: &mut RecvStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.ok()?;
    let n = frame_len(len).ok()?;
    let mut buf = BytesMut::zeroed(4 + n);
    buf[..4].copy_from_slice(&len);
    recv.read_exact(&mut buf[4..]).await.ok()?;
    Some(buf.freeze())
}

/// What a `StreamPublish` asked for.
pub(crate) struct Publish {
    pub(crate) tid: veil_wire::TransferId,
    pub(crate) owner: veil_wire::CapabilityHash,
    pub(crate) download: veil_wire::CapabilityHash,
    pub(crate) max_viewers: u32,
    /// Record: receipt hash and expiry.
    pub(crate) record: Option<(veil_wire::CapabilityHash, u64)>,
}

/// Answer a refused request and end its stream.
async fn refuse(send: &mut SendStream, e: WireError) {
    let _ = write_frame(send, &Response::Error(e)).await;
    let _ = send.finish();
}

/// Serve one publisher: admit it, tell it about viewers, forward its frames, close.
pub(crate) async fn publish(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    mut send: SendStream,
    recv: RecvStream,
    p: Publish,
) {
    let tid = p.tid;
    let (stream, count, recorder) = match admit(&shared, &ctx, &p).await {
        Ok(x) => x,
        Err(e) => return refuse(&mut send, e).await,
    };
    if !write_frame(&mut send, &Response::Ok).await {
        shared.streams.end(&tid);
        if let Some(r) = recorder {
            // Close the (empty) recording rather than leave an upload open until it expires.
            let _ = r.finish().await;
        }
        return;
    }
    let (notice_tx, counter) = tell_publisher(send, count);
    let mut recorder = recorder;
    let clean = forward(&shared, &stream, recv, recorder.as_mut(), &notice_tx).await;
    let last = if clean { StreamFrame::End } else { StreamFrame::Aborted("the publisher went away".into()) };
    shared.streams.close(&stream, &last);
    shared.streams.end(&tid);
    match recorder {
        Some(r) => {
            // Keep what arrived either way; tell a publisher that is still there.
            match r.finish().await {
                Ok(n) => {
                    tracing::debug!(segments = n, clean, "stream recording closed");
                    if clean {
                        let _ = notice_tx.send(StreamFrame::End).await;
                    }
                }
                Err(why) => {
                    let _ = notice_tx.send(StreamFrame::Aborted(format!("recording failed: {why}"))).await;
                }
            }
            drop(notice_tx);
            let _ = tokio::time::timeout(Duration::from_secs(5), counter).await;
        }
        None => counter.abort(),
    }
}

type Admitted = (Arc<crate::streams::LiveStream>, tokio::sync::watch::Receiver<u32>, Option<Recorder>);

/// Access checks, the stream's slot, and its recording if asked for.
async fn admit(shared: &Arc<Shared>, ctx: &Arc<ConnCtx>, p: &Publish) -> Result<Admitted, WireError> {
    shared.access.check_upload(ctx)?;
    shared.access.check_new(ctx, None)?;
    let (stream, count) = shared.streams.publish(p.tid, p.download, p.max_viewers)?;
    let recorder = match p.record {
        Some((receipt, expire_secs)) => {
            if let Err(e) = shared.transfers.create_recording(p.tid, p.owner, p.download, receipt, expire_secs).await {
                shared.streams.end(&p.tid);
                return Err(e);
            }
            shared.access.record_new(ctx, Some(p.tid));
            Some(Recorder::new(p.tid, expire_secs, shared.clone(), ctx.clone()))
        }
        None => {
            shared.access.record_new(ctx, None);
            None
        }
    };
    Ok((stream, count, recorder))
}

/// Relay -> publisher: viewer counts, and notices about the recording, on their own task.
fn tell_publisher(
    mut send: SendStream,
    mut count: tokio::sync::watch::Receiver<u32>,
) -> (tokio::sync::mpsc::Sender<StreamFrame>, tokio::task::JoinHandle<()>) {
    let (notice_tx, mut notices) = tokio::sync::mpsc::channel::<StreamFrame>(4);
    let counter = tokio::spawn(async move {
        loop {
            let f = tokio::select! {
                r = count.changed() => match r {
                    Ok(()) => StreamFrame::Viewers(*count.borrow_and_update()),
                    Err(_) => match notices.recv().await {
                        Some(f) => f,
                        None => break,
                    },
                },
                n = notices.recv() => match n {
                    Some(f) => f,
                    None => break,
                },
            };
            if !write_frame(&mut send, &f).await {
                break;
            }
        }
        let _ = send.finish();
    });
    (notice_tx, counter)
}

/// Forward the publisher's frames to the viewers (and the recorder) until its clean end
/// (true) or until it breaks off, sends garbage or stays silent too long (false).
async fn forward(
    shared: &Shared,
    stream: &Arc<crate::streams::LiveStream>,
    mut recv: RecvStream,
    mut recorder: Option<&mut Recorder>,
    notices: &tokio::sync::mpsc::Sender<StreamFrame>,
) -> bool {
    let mut faults = Faults::from_env();
    while let Ok(Some(raw)) = tokio::time::timeout(shared.streams.limits().idle, read_raw_frame(&mut recv)).await {
        // Frames are forwarded as they are; the relay only looks into them (a borrowed
        // view, no copy) for the segment boundaries and, when recording, the messages.
        let frame = match veil_wire::decode_body::<StreamFrameRef<'_>>(&raw[4..]) {
            Ok(StreamFrameRef::Message(m)) => {
                if let Some(r) = recorder.as_deref_mut() {
                    r.message(m);
                }
                StreamFrame::Message(Vec::new())
            }
            Ok(StreamFrameRef::Segment { index, last, prefix }) => {
                if let Some(r) = recorder.as_deref_mut() {
                    r.segment(index, prefix).await;
                }
                StreamFrame::Segment { index, last, prefix: prefix.to_vec() }
            }
            Ok(StreamFrameRef::End) => {
                shared.streams.fan_out(stream, &StreamFrame::End, raw).await;
                return true;
            }
            Ok(_) => continue,
            Err(_) => {
                shared.metrics.reject("bad_stream_frame");
                return false;
            }
        };
        let raw = if matches!(frame, StreamFrame::Message(_)) { faults.message(raw) } else { raw };
        shared.streams.fan_out(stream, &frame, raw).await;
        if let Some(why) = recorder.as_deref_mut().and_then(|r| r.take_failure()) {
            let _ = notices.try_send(StreamFrame::Aborted(format!("recording stopped: {why}")));
        }
    }
    false
}

/// Fault injection for tests of tamper detection, compiled in only with the
/// `fault-injection` feature (the test command builds the relay with it): with
/// `VEIL_RELAY_FAULT_FLIP_STREAM_MESSAGE=N`, the N-th message of a stream is forwarded
/// with one bit flipped. A relay built without the feature never reads the variable.
struct Faults {
    flip_at: Option<u64>,
    messages: u64,
}

impl Faults {
    #[cfg(feature = "fault-injection")]
    fn from_env() -> Faults {
        let flip_at = std::env::var("VEIL_RELAY_FAULT_FLIP_STREAM_MESSAGE").ok().and_then(|v| v.parse().ok());
        Faults { flip_at, messages: 0 }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn from_env() -> Faults {
        Faults { flip_at: None, messages: 0 }
    }

    fn message(&mut self, raw: Bytes) -> Bytes {
        self.messages += 1;
        if self.flip_at != Some(self.messages) {
            return raw;
        }
        let mut b = BytesMut::from(&raw[..]);
        if let Some(x) = b.last_mut() {
            *x ^= 1;
        }
        b.freeze()
    }
}

pub(crate) async fn watch(
    shared: Arc<Shared>,
    mut send: SendStream,
    tid: veil_wire::TransferId,
    download: veil_wire::Capability,
) {
    let (stream, id, mut rx) = match shared.streams.watch(&tid, &download) {
        Ok(x) => x,
        Err(e) => {
            let _ = write_frame(&mut send, &Response::Error(e)).await;
            let _ = send.finish();
            return;
        }
    };
    let mut ended = false;
    if write_frame(&mut send, &Response::Ok).await {
        while let Some(b) = rx.recv().await {
            shared.streams.made_room(&stream);
            let terminal = StreamFrame::is_terminal_encoded(&b);
            if send.write_chunk(b).await.is_err() {
                break;
            }
            if terminal {
                ended = true;
                break;
            }
        }
        if !ended {
            let _ = write_frame(&mut send, &StreamFrame::Aborted("the stream was cut".into())).await;
        }
    }
    shared.streams.detach(&stream, id);
    let _ = send.finish();
}
