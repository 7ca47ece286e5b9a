//! Rendezvous for one-time codes: nameplates and the mailboxes behind them. The relay
//! only forwards opaque PAKE messages; it enforces that each side of a nameplate is held
//! by one connection at a time, and it enforces the one-guess rule itself: once each
//! side has posted a PAKE message, any end of the exchange but a confirmed delivery
//! (a disconnect, a timeout, a close too early, a failed confirmation) burns the
//! nameplate, whatever the clients do. A confirmed delivery is the receiving side's
//! `Close` after the sending side posted its second message (key confirmation and the
//! sealed delivery): the receiver only closes once that authenticated.
//!
//! Several relay instances may share one store. A mailbox lives in the memory of the
//! instance where its nameplate was first opened (PAKE messages stay fast); that
//! instance records `np/<nameplate>` in the store with its public address and
//! certificate fingerprint, refreshed while the mailbox is open. Another instance asked
//! for that nameplate answers with a redirect, and the client opens the mailbox there.
//! Burned nameplates are recorded there too, so a burned code stays burned everywhere.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use veil_store::Store;
use veil_wire::{ErrorCode, MAX_MAILBOX_BODY, MailboxMsg, Side, WireError};

/// How this instance can be reached by clients redirected from another instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Advert {
    /// `host:port` for clients.
    pub addr: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// Random id of this process.
    pub instance: String,
}

/// A nameplate record in the shared store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PlateRecord {
    owner: Advert,
    updated: u64,
    burned: bool,
}

/// A nameplate record not refreshed for this long belongs to a dead instance.
pub const PLATE_STALE_SECS: u64 = 90;

/// Where a nameplate's mailbox is.
#[derive(Debug)]
pub enum Placement {
    /// Here.
    Local,
    /// On another instance.
    Remote(Advert),
}

/// How long a burned nameplate stays refused.
pub const BURN_MEMORY: Duration = Duration::from_secs(3600);
/// Messages a mailbox side may post in one exchange before the relay refuses more.
pub const MAX_MESSAGES_PER_SIDE: usize = veil_wire::MAX_MAILBOX_MESSAGES;
/// Once both sides posted, the exchange must reach a confirmed delivery within this.
pub const EXCHANGE_DEADLINE: Duration = Duration::from_secs(60);
/// What both sides are told when a nameplate burns.
pub const BURNED_MESSAGE: &str = "wrong code or interference: the code is burned, use a new one";
/// Nameplates allocated from 1..=this first; the range grows when it is full.
pub const SMALL_NAMEPLATES: u32 = 999;

enum Slot {
    Empty,
    Connected { tx: mpsc::UnboundedSender<MailboxMsg>, conn: u64 },
    Left,
}

struct Plate {
    slots: [Slot; 2],
    /// Messages waiting for side `i` to join.
    pending: [Vec<MailboxMsg>; 2],
    /// Messages side `i` posted in the current exchange.
    posted: [usize; 2],
    /// When both sides had posted in the current exchange.
    started: Option<Instant>,
}

impl Plate {
    fn new() -> Plate {
        Plate { slots: [Slot::Empty, Slot::Empty], pending: [Vec::new(), Vec::new()], posted: [0, 0], started: None }
    }

    /// Both sides posted a PAKE message: from now on only a confirmed delivery ends the
    /// exchange without burning the nameplate.
    fn exchanging(&self) -> bool {
        self.posted[0] >= 1 && self.posted[1] >= 1
    }

    /// Forget the exchange (a confirmed delivery; the sender may serve the next receiver).
    fn reset(&mut self) {
        self.posted = [0, 0];
        self.pending = [Vec::new(), Vec::new()];
        self.started = None;
    }
}

/// How a side's part in a mailbox ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent `Close`.
    Closed,
    /// Anything else: disconnect, a broken frame, the relay's deadline.
    Dropped,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Sender => 0,
        Side::Receiver => 1,
    }
}

#[derive(Default)]
struct Inner {
    plates: HashMap<u32, Plate>,
    burned: HashMap<u32, Instant>,
    next_conn: u64,
    released: Vec<u32>,
}

/// All nameplates of this relay.
pub struct Rendezvous {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    store: Option<(Arc<dyn Store>, Advert)>,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendezvous").finish_non_exhaustive()
    }
}

/// A side's membership; leaving happens on drop.
#[derive(Debug)]
pub struct Membership {
    rdv: Arc<Rendezvous>,
    /// The nameplate.
    pub nameplate: u32,
    side: Side,
    conn: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Normally ended already through `Rendezvous::end`; this catches aborted tasks.
        self.rdv.leave(self.nameplate, self.side, self.conn, Ending::Dropped);
    }
}

fn werr(code: ErrorCode, msg: &str) -> WireError {
    WireError::new(code, msg)
}

impl Rendezvous {
    /// An empty rendezvous.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Rendezvous { inner: Mutex::new(Inner::default()), metrics, store: None })
    }

    /// A rendezvous that shares nameplates with other instances through `store`.
    pub fn shared(metrics: Arc<Metrics>, store: Arc<dyn Store>, me: Advert) -> Arc<Self> {
        Arc::new(Rendezvous { inner: Mutex::new(Inner::default()), metrics, store: Some((store, me)) })
    }

    fn is_local(&self, n: u32) -> bool {
        self.inner.lock().map(|g| g.plates.contains_key(&n)).unwrap_or(false)
    }

    async fn record(&self, n: u32) -> Option<PlateRecord> {
        let (store, _) = self.store.as_ref()?;
        let b = store.get(&crate::keys::nameplate(n)).await.ok()??;
        serde_json::from_slice(&b).ok()
    }

    async fn write_record(&self, n: u32, burned: bool) {
        if let Some((store, me)) = &self.store {
            let rec = PlateRecord { owner: me.clone(), updated: crate::state::now(), burned };
            if let Ok(b) = serde_json::to_vec(&rec)
                && let Err(e) = store.put(&crate::keys::nameplate(n), bytes::Bytes::from(b)).await
            {
                tracing::warn!(error = %e, "cannot record nameplate in the store");
            }
        }
    }

    /// Decide where nameplate `n` lives, claiming it here if nobody else holds it.
    /// `None` allocates a fresh nameplate.
    pub async fn place(&self, nameplate: Option<u32>) -> Result<(u32, Placement), WireError> {
        let now = crate::state::now();
        match nameplate {
            Some(n) => {
                if self.is_local(n) || self.store.is_none() {
                    return Ok((n, Placement::Local));
                }
                if let Some(rec) = self.record(n).await
                    && now.saturating_sub(rec.updated) < PLATE_STALE_SECS.max(BURN_MEMORY.as_secs())
                {
                    if rec.burned && now.saturating_sub(rec.updated) < BURN_MEMORY.as_secs() {
                        self.metrics.reject("nameplate_burned");
                        return Err(werr(ErrorCode::Burned, BURNED_MESSAGE));
                    }
                    let me = self.store.as_ref().map(|(_, m)| m.instance.clone()).unwrap_or_default();
                    if !rec.burned && rec.owner.instance != me && now.saturating_sub(rec.updated) < PLATE_STALE_SECS {
                        return Ok((n, Placement::Remote(rec.owner)));
                    }
                }
                self.write_record(n, false).await;
                Ok((n, Placement::Local))
            }
            None => {
                for _ in 0..64 {
                    let n = self.pick_free()?;
                    if self.store.is_none() {
                        return Ok((n, Placement::Local));
                    }
                    match self.record(n).await {
                        Some(rec) if now.saturating_sub(rec.updated) < PLATE_STALE_SECS.max(BURN_MEMORY.as_secs()) => {
                            continue;
                        }
                        _ => {
                            self.write_record(n, false).await;
                            return Ok((n, Placement::Local));
                        }
                    }
                }
                Err(werr(ErrorCode::LimitExceeded, "no free nameplate; try again"))
            }
        }
    }

    fn pick_free(&self) -> Result<u32, WireError> {
        let g = self.inner.lock().map_err(|_| werr(ErrorCode::Internal, "lock"))?;
        let mut range = SMALL_NAMEPLATES;
        loop {
            let free: Vec<u32> =
                (1..=range).filter(|n| !g.plates.contains_key(n) && !g.burned.contains_key(n)).take(4096).collect();
            if !free.is_empty() {
                let mut r = [0u8; 4];
                getrandom::fill(&mut r).map_err(|_| werr(ErrorCode::Internal, "rng"))?;
                return Ok(free[u32::from_le_bytes(r) as usize % free.len()]);
            }
            range = range.saturating_mul(10);
        }
    }

    /// Refresh the store records of open mailboxes and drop records of closed ones.
    pub async fn maintain(&self) {
        let Some((store, me)) = &self.store else { return };
        let (open, gone): (Vec<u32>, Vec<u32>) = match self.inner.lock() {
            Ok(mut g) => (g.plates.keys().copied().collect(), std::mem::take(&mut g.released)),
            Err(_) => return,
        };
        for n in open {
            self.write_record(n, false).await;
        }
        for n in gone {
            if self.is_local(n) {
                continue;
            }
            if let Some(rec) = self.record(n).await
                && rec.owner.instance == me.instance
                && !rec.burned
            {
                let _ = store.delete(&crate::keys::nameplate(n)).await;
            }
        }
    }

    /// Record a burned nameplate in the shared store.
    pub async fn record_burn(&self, n: u32) {
        self.write_record(n, true).await;
    }

    /// Allocate (None) or claim a nameplate for `side`.
    pub fn open(
        self: &Arc<Self>,
        nameplate: Option<u32>,
        side: Side,
    ) -> Result<(Membership, mpsc::UnboundedReceiver<MailboxMsg>), WireError> {
        let mut g = self.inner.lock().map_err(|_| werr(ErrorCode::Internal, "lock"))?;
        let now = Instant::now();
        g.burned.retain(|_, t| now.duration_since(*t) < BURN_MEMORY);
        let n = match nameplate {
            Some(n) => {
                if g.burned.contains_key(&n) {
                    self.metrics.reject("nameplate_burned");
                    return Err(werr(ErrorCode::Burned, BURNED_MESSAGE));
                }
                n
            }
            None => return Err(werr(ErrorCode::Internal, "nameplate not placed")),
        };
        g.next_conn += 1;
        let conn = g.next_conn;
        let (tx, rx) = mpsc::unbounded_channel();
        let plate = g.plates.entry(n).or_insert_with(Plate::new);
        let i = idx(side);
        if matches!(plate.slots[i], Slot::Connected { .. }) {
            self.metrics.reject("nameplate_in_use");
            return Err(werr(ErrorCode::NameplateInUse, "someone is already using this code on this side"));
        }
        for m in plate.pending[i].drain(..) {
            let _ = tx.send(m);
        }
        if let Slot::Connected { tx: other, .. } = &plate.slots[1 - i] {
            let _ = other.send(MailboxMsg::PeerJoined);
            let _ = tx.send(MailboxMsg::PeerJoined);
        }
        plate.slots[i] = Slot::Connected { tx, conn };
        self.metrics.nameplates.set(g.plates.len() as i64);
        Ok((Membership { rdv: self.clone(), nameplate: n, side, conn }, rx))
    }

    /// Deliver a message to the other side (now, or when it joins).
    pub fn post(&self, m: &Membership, body: Vec<u8>) -> Result<(), WireError> {
        if body.len() > MAX_MAILBOX_BODY {
            return Err(werr(ErrorCode::TooLarge, "mailbox message too large"));
        }
        let mut g = self.inner.lock().map_err(|_| werr(ErrorCode::Internal, "lock"))?;
        let plate = g.plates.get_mut(&m.nameplate).ok_or_else(|| werr(ErrorCode::NotFound, "mailbox closed"))?;
        let i = idx(m.side);
        if !matches!(plate.slots[i], Slot::Connected { conn, .. } if conn == m.conn) {
            return Err(werr(ErrorCode::NotFound, "mailbox closed"));
        }
        plate.posted[i] += 1;
        if plate.posted[i] > MAX_MESSAGES_PER_SIDE {
            return Err(werr(ErrorCode::LimitExceeded, "too many mailbox messages"));
        }
        if plate.started.is_none() && plate.exchanging() {
            plate.started = Some(Instant::now());
        }
        match &plate.slots[1 - i] {
            Slot::Connected { tx, .. } => {
                let _ = tx.send(MailboxMsg::Message(body));
            }
            _ => plate.pending[1 - i].push(MailboxMsg::Message(body)),
        }
        Ok(())
    }

    /// Burn the nameplate: tell whoever is connected, refuse it for [`BURN_MEMORY`].
    pub fn burn(&self, m: &Membership) {
        let Ok(mut g) = self.inner.lock() else { return };
        Self::burn_locked(&mut g, m.nameplate);
        self.metrics.nameplates.set(g.plates.len() as i64);
    }

    fn burn_locked(g: &mut Inner, n: u32) {
        if let Some(plate) = g.plates.remove(&n) {
            for s in &plate.slots {
                if let Slot::Connected { tx, .. } = s {
                    let _ = tx.send(MailboxMsg::Burned);
                }
            }
        }
        g.burned.insert(n, Instant::now());
    }

    /// Whether the exchange on `m`'s nameplate ran past [`EXCHANGE_DEADLINE`] without a
    /// confirmed delivery (the caller then ends it, which burns the nameplate).
    pub fn overdue(&self, m: &Membership) -> bool {
        let Ok(g) = self.inner.lock() else { return false };
        g.plates.get(&m.nameplate).and_then(|p| p.started).is_some_and(|t| t.elapsed() > EXCHANGE_DEADLINE)
    }

    /// `m`'s side is done with the mailbox. Returns true if that burned the nameplate
    /// (the caller records the burn in the shared store).
    pub fn end(&self, m: &Membership, how: Ending) -> bool {
        self.leave(m.nameplate, m.side, m.conn, how)
    }

    fn leave(&self, n: u32, side: Side, conn: u64, how: Ending) -> bool {
        let Ok(mut g) = self.inner.lock() else { return false };
        let i = idx(side);
        let Some(plate) = g.plates.get_mut(&n) else { return false };
        if !matches!(plate.slots[i], Slot::Connected { conn: c, .. } if c == conn) {
            return false;
        }
        let delivered = plate.posted[idx(Side::Sender)] >= 2;
        let burn = if !plate.exchanging() {
            // No exchange yet: whatever this side queued is stale for the next one.
            plate.pending[1 - i].clear();
            plate.posted[i] = 0;
            false
        } else {
            match (side, how) {
                // The receiver authenticated the delivery: the exchange is over.
                (Side::Receiver, Ending::Closed) if delivered => {
                    plate.reset();
                    false
                }
                // The sender's part is done; the receiver's close or drop decides.
                (Side::Sender, Ending::Closed) if delivered => false,
                _ => true,
            }
        };
        if burn {
            Self::burn_locked(&mut g, n);
            self.metrics.reject("exchange_not_confirmed");
            self.metrics.nameplates.set(g.plates.len() as i64);
            return true;
        }
        let Some(plate) = g.plates.get_mut(&n) else { return false };
        plate.slots[i] = Slot::Left;
        // A sender done after its delivery is no news to the receiver, which is reading it.
        let sender_done = side == Side::Sender && how == Ending::Closed && plate.exchanging();
        if let Slot::Connected { tx, .. } = &plate.slots[1 - i]
            && !sender_done
        {
            let _ = tx.send(MailboxMsg::PeerGone);
        }
        let waiting_for_receiver = plate.exchanging();
        if !waiting_for_receiver && !plate.slots.iter().any(|s| matches!(s, Slot::Connected { .. })) {
            g.plates.remove(&n);
            g.released.push(n);
        }
        self.metrics.nameplates.set(g.plates.len() as i64);
        false
    }
}
