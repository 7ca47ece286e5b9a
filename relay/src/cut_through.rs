//! Cut-through: a chunk being uploaded is served to receivers already waiting for it as
//! its bytes arrive, while the relay persists it, so a receiver trails the sender by a
//! round trip instead of by whole chunks, and a one-chunk file costs one transfer time.
//!
//! What a chunk's storage means does not change: a chunk counts as stored (for `Status`,
//! `Complete`, resume and receipts) only once the store acknowledged it. The relay also
//! holds back the last byte of a chunk it serves early until the store acknowledged the
//! whole chunk; if the upload breaks or the store refuses it, the receiver's request
//! ends in a stream reset instead, and the receiver asks again (a chunk cannot be
//! authenticated without its last bytes, so nothing unacknowledged is ever accepted).

use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use veil_wire::TransferId;

/// Bytes held back from early readers until the store acknowledged the chunk.
const HELD_BACK: usize = 1;

/// A chunk on its way in.
#[derive(Debug)]
pub struct Partial {
    len: usize,
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// What arrived so far, until the body is complete.
    buf: BytesMut,
    /// The complete body.
    whole: Option<Bytes>,
    /// Some(true): stored; Some(false): the upload failed or the store refused it.
    outcome: Option<bool>,
}

/// What an early reader may send next.
#[derive(Debug)]
pub enum Next {
    /// These bytes, starting at the reader's offset.
    Bytes(Bytes),
    /// Nothing new yet: wait.
    Wait,
    /// Everything was sent.
    Done,
    /// The chunk will not be stored: abandon the response.
    Failed,
}

impl Partial {
    /// Declared body length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the declared body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The uploader got `piece`.
    pub fn push(&self, piece: &[u8]) {
        if let Ok(mut g) = self.inner.lock() {
            g.buf.extend_from_slice(piece);
        }
        self.changed.notify_waiters();
    }

    /// The uploader read the whole body: the bytes to store (None if the lock was
    /// poisoned: the upload fails rather than store anything else).
    pub fn complete(&self) -> Option<Bytes> {
        let body = self.inner.lock().ok().map(|mut g| {
            let b = std::mem::take(&mut g.buf).freeze();
            g.whole = Some(b.clone());
            b
        });
        self.changed.notify_waiters();
        body
    }

    fn settle(&self, stored: bool) {
        if let Ok(mut g) = self.inner.lock() {
            g.outcome.get_or_insert(stored);
        }
        self.changed.notify_waiters();
    }

    /// What a reader that has sent `offset` bytes may send now.
    pub fn next(&self, offset: usize) -> Next {
        let Ok(g) = self.inner.lock() else { return Next::Failed };
        if g.outcome == Some(false) {
            return Next::Failed;
        }
        let limit = if g.outcome == Some(true) { self.len } else { self.len.saturating_sub(HELD_BACK) };
        let have = g.whole.as_ref().map_or(g.buf.len(), Bytes::len).min(limit);
        if offset >= self.len {
            return Next::Done;
        }
        if have <= offset {
            return Next::Wait;
        }
        match &g.whole {
            Some(w) => Next::Bytes(w.slice(offset..have)),
            None => Next::Bytes(Bytes::copy_from_slice(&g.buf[offset..have])),
        }
    }

    /// Wait until the store answered: the whole chunk, or None if it will not be stored
    /// (for readers that serve only whole chunks, such as the web side).
    pub async fn wait_stored(&self) -> Option<Bytes> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.inner.lock().ok()?;
                match g.outcome {
                    Some(true) => return g.whole.clone(),
                    Some(false) => return None,
                    None => {}
                }
            }
            notified.await;
        }
    }

    /// Wait until [`Partial::next`] may say something new.
    pub async fn changed(&self, offset: usize) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !matches!(self.next(offset), Next::Wait) {
            return;
        }
        notified.await;
    }
}

/// The chunks being uploaded to this instance.
#[derive(Debug, Default)]
pub struct InFlight {
    map: Mutex<HashMap<(TransferId, u64), Arc<Partial>>>,
}

impl InFlight {
    /// Register chunk `index` of `tid` as arriving with `len` bytes. None when another
    /// upload of the same chunk is already in flight (a retry racing the first try: it
    /// is stored the ordinary way).
    pub fn begin(self: &Arc<Self>, tid: TransferId, index: u64, len: usize) -> Option<Uploading> {
        let mut m = self.map.lock().ok()?;
        if m.contains_key(&(tid, index)) {
            return None;
        }
        let p = Arc::new(Partial { len, inner: Mutex::new(Inner::default()), changed: Notify::new() });
        m.insert((tid, index), p.clone());
        Some(Uploading { registry: self.clone(), key: (tid, index), partial: p, stored: false })
    }

    /// The upload of chunk `index` in flight, if any.
    pub fn get(&self, tid: &TransferId, index: u64) -> Option<Arc<Partial>> {
        self.map.lock().ok()?.get(&(*tid, index)).cloned()
    }
}

/// The uploader's handle: unregisters the chunk when dropped, telling early readers
/// whether it was stored ([`Uploading::stored`]) or not (dropped without it).
#[derive(Debug)]
pub struct Uploading {
    registry: Arc<InFlight>,
    key: (TransferId, u64),
    partial: Arc<Partial>,
    stored: bool,
}

impl Uploading {
    /// The chunk arriving.
    pub fn partial(&self) -> &Partial {
        &self.partial
    }

    /// The store acknowledged the chunk.
    pub fn stored(mut self) {
        self.stored = true;
    }
}

impl Drop for Uploading {
    fn drop(&mut self) {
        self.partial.settle(self.stored);
        if let Ok(mut m) = self.registry.map.lock() {
            m.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn readers_get_all_but_the_last_byte_until_the_chunk_is_stored() {
        let reg = Arc::new(InFlight::default());
        let up = reg.begin([1; 16], 0, 6).unwrap();
        assert!(reg.begin([1; 16], 0, 6).is_none(), "one upload of a chunk at a time");
        let p = reg.get(&[1; 16], 0).unwrap();
        assert!(matches!(p.next(0), Next::Wait));
        up.partial().push(b"abc");
        assert!(matches!(p.next(0), Next::Bytes(b) if &b[..] == b"abc"));
        up.partial().push(b"def");
        let body = up.partial().complete().unwrap();
        assert_eq!(&body[..], b"abcdef");
        assert!(matches!(p.next(3), Next::Bytes(b) if &b[..] == b"de"));
        assert!(matches!(p.next(5), Next::Wait), "the last byte waits for the store");
        up.stored();
        assert!(matches!(p.next(5), Next::Bytes(b) if &b[..] == b"f"));
        assert!(matches!(p.next(6), Next::Done));
        assert!(reg.get(&[1; 16], 0).is_none());
    }

    #[test]
    fn a_failed_upload_fails_its_readers() {
        let reg = Arc::new(InFlight::default());
        let up = reg.begin([2; 16], 3, 4).unwrap();
        let p = reg.get(&[2; 16], 3).unwrap();
        up.partial().push(b"abcd");
        up.partial().complete();
        drop(up);
        assert!(matches!(p.next(0), Next::Failed));
        assert!(reg.begin([2; 16], 3, 4).is_some(), "a retry can start over");
    }
}
