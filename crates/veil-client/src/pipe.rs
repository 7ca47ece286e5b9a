//! Standard input and output for live streams, each on a thread of its own.
//!
//! tokio's `stdin`/`stdout` hand every read and write to the blocking pool and read only
//! on demand, and `std::io::Stdout` is line-buffered (it scans every write for newlines).
//! For a stream of binary data that costs a thread hand-off per call and leaves the pipe
//! idle while a message is sealed. Here one thread reads ahead (each read becomes one
//! message at once, so latency does not change) and one thread writes whatever the viewer
//! opened, with short bounded queues between them and the runtime.

use bytes::{Buf, Bytes};
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

/// Reads queued between the reading thread and the runtime.
const QUEUE: usize = 8;

/// An [`AsyncRead`] fed by a thread doing blocking reads of up to `max` bytes.
#[derive(Debug)]
pub struct ThreadReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    pending: Bytes,
    done: bool,
}

impl ThreadReader {
    /// Start reading `r` on a new thread.
    pub fn spawn<R: Read + Send + 'static>(mut r: R, max: usize) -> std::io::Result<ThreadReader> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new().name("veil-stdin".into()).spawn(move || {
            let mut buf = vec![0u8; max.max(1)];
            loop {
                let item = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if tx.blocking_send(item).is_err() || stop {
                    break;
                }
            }
        })?;
        Ok(ThreadReader { rx, pending: Bytes::new(), done: false })
    }
}

impl AsyncRead for ThreadReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() && !self.done {
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(b)) => self.pending = b,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => self.done = true,
            }
        }
        let n = self.pending.len().min(out.remaining());
        out.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// An [`AsyncWrite`] whose writes a thread carries out in order. A write error of the
/// thread (the reader of a pipe went away) comes back on a later write; shutdown waits
/// until everything written reached the sink.
#[derive(Debug)]
pub struct ThreadWriter {
    tx: Option<tokio_util::sync::PollSender<Bytes>>,
    done: Option<oneshot::Receiver<std::io::Result<()>>>,
    /// The thread's outcome once known (an error is reported once, then `BrokenPipe`).
    outcome: Option<std::io::Result<()>>,
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the output closed")
}

impl ThreadWriter {
    /// Start writing to `w` on a new thread.
    pub fn spawn<W: Write + Send + 'static>(mut w: W) -> std::io::Result<ThreadWriter> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new().name("veil-stdout".into()).spawn(move || {
            let mut run = || -> std::io::Result<()> {
                while let Some(b) = rx.blocking_recv() {
                    w.write_all(&b)?;
                    // What is queued goes out together; flush once the queue is empty.
                    if rx.is_empty() {
                        w.flush()?;
                    }
                }
                w.flush()
            };
            let _ = done_tx.send(run());
        })?;
        Ok(ThreadWriter { tx: Some(tokio_util::sync::PollSender::new(tx)), done: Some(done), outcome: None })
    }

    /// The thread stopped taking writes: it failed (or panicked).
    fn broken(&mut self) -> std::io::Error {
        self.tx = None;
        if let Some(mut d) = self.done.take() {
            // Not reported yet: it is on its way out; the pipe is closed either way.
            self.outcome = Some(d.try_recv().unwrap_or_else(|_| Err(closed())));
        }
        self.report().err().unwrap_or_else(closed)
    }

    /// The thread's outcome: an error is reported once in full, then as `BrokenPipe`.
    fn report(&mut self) -> std::io::Result<()> {
        let r = self.outcome.take().unwrap_or(Ok(()));
        self.outcome = Some(if r.is_ok() { Ok(()) } else { Err(closed()) });
        r
    }
}

impl AsyncWrite for ThreadWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let Some(tx) = self.tx.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        if ready!(tx.poll_reserve(cx)).is_err() || tx.send_item(Bytes::copy_from_slice(buf)).is_err() {
            return Poll::Ready(Err(self.broken()));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The thread writes as soon as it can and flushes when it runs out of work.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Close the queue; the thread finishes what it has and reports.
        self.tx = None;
        if let Some(d) = self.done.as_mut() {
            let r = ready!(Pin::new(d).poll(cx));
            self.done = None;
            // A thread that panicked lost output: that is an error too.
            self.outcome = Some(r.unwrap_or_else(|_| Err(closed())));
        }
        Poll::Ready(self.report())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reader_delivers_everything_in_order_in_bounded_reads() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut r = ThreadReader::spawn(std::io::Cursor::new(data.clone()), 1000).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n <= 1000);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
    }

    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>, Option<usize>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut v = self.0.lock().unwrap();
            if self.1.is_some_and(|limit| v.len() >= limit) {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader gone"));
            }
            v.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn writer_writes_everything_before_shutdown_returns() {
        let sink = Sink::default();
        let mut w = ThreadWriter::spawn(sink.clone()).unwrap();
        for i in 0..500u32 {
            w.write_all(&i.to_le_bytes().repeat(100)).await.unwrap();
        }
        w.shutdown().await.unwrap();
        let want: Vec<u8> = (0..500u32).flat_map(|i| i.to_le_bytes().repeat(100)).collect();
        assert_eq!(*sink.0.lock().unwrap(), want);
    }

    #[tokio::test]
    async fn writer_reports_a_closed_output_and_shuts_down_without_panicking() {
        let mut w = ThreadWriter::spawn(Sink(Default::default(), Some(1000))).unwrap();
        let mut failed = None;
        for _ in 0..1000 {
            if let Err(e) = w.write_all(&[1u8; 100]).await {
                failed = Some(e);
                break;
            }
        }
        assert_eq!(failed.unwrap().kind(), std::io::ErrorKind::BrokenPipe);
        assert!(w.write_all(b"more").await.is_err());
        assert!(w.shutdown().await.is_err());
        assert!(w.shutdown().await.is_err());
    }

    #[tokio::test]
    async fn writer_error_found_only_at_shutdown_is_reported() {
        let mut w = ThreadWriter::spawn(Sink(Default::default(), Some(10))).unwrap();
        // Two small writes fit the queue; the second fails on the thread.
        w.write_all(&[1u8; 20]).await.unwrap();
        let _ = w.write_all(&[1u8; 20]).await;
        assert!(w.shutdown().await.is_err());
    }
}
