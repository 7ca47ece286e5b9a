//! Live streams: `publish` seals standard input as it arrives (each read becomes one
//! secretstream message at once) into segments cut by size or time; `watch` opens them
//! and writes plaintext out. Segments are chunks of the format spec: each has its own key
//! `K_i`, and the end of the stream is an authenticated final segment, so a viewer can
//! tell a clean end from a cut.

use crate::conn::{Relay, read_frame};
use crate::error::{ClientError, Result};
use crate::events::{Event, EventSink};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use veil_format::chunk::{ChunkOpener, ChunkSealer};
use veil_format::code::{Code, DEFAULT_CODE_WORDS};
use veil_format::{Capabilities, ContentKey, FormatError, TransferId};
use veil_wire::{ErrorCode, MAX_STREAM_MESSAGE, MailboxMsg, Request, Side, StreamFrame, cap_hash, encode_frame};

/// Publisher options.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// A chosen code, or None to have the relay allocate one.
    pub code: Option<String>,
    /// Viewers allowed (each with its own key exchange).
    pub viewers: u32,
    /// Cut a segment after this many bytes...
    pub segment_bytes: usize,
    /// ...or after this long, whichever comes first.
    pub segment_time: Duration,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions { code: None, viewers: 1, segment_bytes: 1 << 20, segment_time: Duration::from_secs(1) }
    }
}

async fn send_frame(send: &mut quinn::SendStream, f: &StreamFrame) -> Result<()> {
    let b = encode_frame(f).map_err(|e| ClientError::Protocol(e.to_string()))?;
    send.write_all(&b).await.map_err(|e| ClientError::Transport(e.to_string()))
}

/// Publish `input` until EOF. Returns once the final segment is sent.
pub async fn publish<R: AsyncRead + Unpin>(
    relay: Arc<Relay>,
    opts: PublishOptions,
    mut input: R,
    events: EventSink,
) -> Result<u64> {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let caps = Capabilities::derive(&key);
    let (mut send, mut recv) = relay
        .open_request(&Request::StreamPublish {
            tid: tid.0,
            owner: cap_hash(caps.owner.expose()),
            download: cap_hash(caps.download.expose()),
            max_viewers: opts.viewers.max(1),
        })
        .await?;
    let chosen = opts.code.as_deref().map(Code::parse).transpose()?;
    let mut mb = relay.mailbox(chosen.as_ref().map(Code::nameplate), Side::Sender).await?;
    let code = chosen.unwrap_or_else(|| Code::generate(mb.nameplate, DEFAULT_CODE_WORDS));
    if code.is_short() {
        events(Event::Warning { message: "this code is short: anyone who guesses it first can watch".into() });
    }
    events(Event::Code { code: code.reveal() });

    // One key exchange per viewer, one after the other, on the same code.
    let (ev, viewers, k2) = (events.clone(), opts.viewers.max(1), key.clone());
    let mut pake = tokio::spawn(async move {
        for _ in 0..viewers {
            ev(Event::Waiting { what: "viewer".into() });
            let v = crate::pake::sender(&mut mb, &code, &tid, &k2).await?;
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
    });

    // The stream starts when the first viewer is attached.
    loop {
        tokio::select! {
            r = &mut pake => {
                r.map_err(|e| ClientError::Protocol(e.to_string()))??;
                // All exchanges done; keep waiting for the attach below.
                pake = tokio::spawn(std::future::pending());
            }
            f = read_frame::<StreamFrame>(&mut recv) => match f? {
                Some(StreamFrame::Viewers(n)) if n >= 1 => break,
                Some(_) => continue,
                None => return Err(ClientError::Transport("the relay closed the stream".into())),
            },
        }
    }
    // Keep failing loudly if a later viewer gets the code wrong.
    // (This task ends only on a failed confirmation.)
    let watcher = tokio::spawn(async move {
        if let Ok(Err(ClientError::Format(FormatError::WrongCode))) = pake.await {
            return;
        }
        std::future::pending::<()>().await
    });

    let mut index = 0u64;
    let mut sealer: Option<ChunkSealer> = None;
    let mut seg_bytes = 0usize;
    let mut seg_deadline = tokio::time::Instant::now();
    let mut buf = vec![0u8; MAX_STREAM_MESSAGE];
    let mut total = 0u64;
    loop {
        if watcher.is_finished() {
            return Err(ClientError::Format(FormatError::WrongCode));
        }
        let read = if sealer.is_some() {
            tokio::select! {
                r = input.read(&mut buf) => Some(r),
                _ = tokio::time::sleep_until(seg_deadline) => None,
            }
        } else {
            Some(input.read(&mut buf).await)
        };
        match read {
            None => {
                // Time cut.
                if let Some(mut s) = sealer.take() {
                    let m = s.push(&[], true)?;
                    send_frame(&mut send, &StreamFrame::Message(m)).await?;
                    index += 1;
                }
            }
            Some(r) => {
                let n = r.map_err(|e| ClientError::io("reading", "standard input", e))?;
                if n == 0 {
                    break;
                }
                if sealer.is_none() {
                    let (s, prefix) = ChunkSealer::new(&key, &tid, index, false);
                    send_frame(&mut send, &StreamFrame::Segment { index, last: false, prefix: prefix.to_vec() })
                        .await?;
                    sealer = Some(s);
                    seg_bytes = 0;
                    seg_deadline = tokio::time::Instant::now() + opts.segment_time;
                }
                if let Some(s) = sealer.as_mut() {
                    seg_bytes += n;
                    total += n as u64;
                    let close = seg_bytes >= opts.segment_bytes;
                    let m = s.push(&buf[..n], close)?;
                    send_frame(&mut send, &StreamFrame::Message(m)).await?;
                    if close {
                        sealer = None;
                        index += 1;
                    }
                }
            }
        }
    }
    if let Some(mut s) = sealer.take() {
        let m = s.push(&[], true)?;
        send_frame(&mut send, &StreamFrame::Message(m)).await?;
        index += 1;
    }
    // The authenticated end: a final segment with one empty final message.
    let (mut s, prefix) = ChunkSealer::new(&key, &tid, index, true);
    send_frame(&mut send, &StreamFrame::Segment { index, last: true, prefix: prefix.to_vec() }).await?;
    send_frame(&mut send, &StreamFrame::Message(s.push(&[], true)?)).await?;
    send_frame(&mut send, &StreamFrame::End).await?;
    let _ = send.finish();
    watcher.abort();
    // Let the relay forward the end before the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = read_frame::<StreamFrame>(&mut recv).await {}
    })
    .await;
    events(Event::Done { bytes: total, files: Vec::new(), seconds: 0.0 });
    Ok(total)
}

/// Watch the stream behind `code`, writing plaintext to `out`. Ok only at an
/// authenticated end of stream.
pub async fn watch<W: AsyncWrite + Unpin>(
    relay: Arc<Relay>,
    code: &str,
    mut out: W,
    events: EventSink,
    wait: Duration,
) -> Result<u64> {
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
    mb.close().await;
    events(Event::KeyExchanged { verifier });
    let caps = Capabilities::derive(&key);
    let (_send, mut recv) =
        relay.open_request(&Request::StreamWatch { tid: tid.0, download: *caps.download.expose() }).await?;

    let mut opener: Option<ChunkOpener> = None;
    let mut last_seen = false;
    let mut expect: Option<u64> = None;
    let mut plain = Vec::with_capacity(MAX_STREAM_MESSAGE);
    let mut total = 0u64;
    loop {
        let f = match read_frame::<StreamFrame>(&mut recv).await {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => {
                return Err(ClientError::PeerGone(
                    "the stream was cut: the connection to the relay ended before the stream did".into(),
                ));
            }
        };
        match f {
            StreamFrame::Segment { index, last, prefix } => {
                if opener.as_ref().is_some_and(|o| !o.is_finished()) {
                    return Err(ClientError::Format(FormatError::ChunkTruncated { index: index.saturating_sub(1) }));
                }
                if let Some(e) = expect
                    && e != index
                {
                    return Err(ClientError::Protocol(format!("segment {index} arrived where {e} was expected")));
                }
                let mut o = ChunkOpener::new(&key, &tid, index, last);
                o.feed(&prefix, &mut plain)?;
                opener = Some(o);
                last_seen = last;
                expect = Some(index + 1);
            }
            StreamFrame::Message(m) => {
                let o = opener.as_mut().ok_or_else(|| ClientError::Protocol("message outside a segment".into()))?;
                plain.clear();
                o.feed(&m, &mut plain)?;
                if !plain.is_empty() {
                    total += plain.len() as u64;
                    out.write_all(&plain).await.map_err(|e| ClientError::io("writing", "standard output", e))?;
                    out.flush().await.map_err(|e| ClientError::io("writing", "standard output", e))?;
                }
            }
            StreamFrame::Skipped(n) => {
                events(Event::Warning { message: format!("fell behind: skipped {n} segment(s)") });
                opener = None;
                expect = None;
            }
            StreamFrame::End => {
                if last_seen && opener.as_ref().is_some_and(ChunkOpener::is_finished) {
                    events(Event::Done { bytes: total, files: Vec::new(), seconds: 0.0 });
                    return Ok(total);
                }
                return Err(ClientError::Format(FormatError::Malformed {
                    what: "stream",
                    reason: "ended without its authenticated final segment",
                }));
            }
            StreamFrame::Aborted(why) => {
                return Err(ClientError::PeerGone(format!("the stream was cut: {}", veil_format::escape_text(&why))));
            }
            StreamFrame::Viewers(_) => {}
        }
    }
}
