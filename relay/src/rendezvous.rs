//! Rendezvous for one-time codes: nameplates and the mailboxes behind them. The relay
//! only forwards opaque PAKE messages; it enforces that each side of a nameplate is held
//! by one connection at a time and that a failed key confirmation burns the nameplate.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use veil_wire::{ErrorCode, MAX_MAILBOX_BODY, MailboxMsg, Side, WireError};

/// How long a burned nameplate stays refused.
pub const BURN_MEMORY: Duration = Duration::from_secs(600);
/// Messages a mailbox side may post before the relay refuses more.
pub const MAX_MESSAGES_PER_SIDE: usize = 1024;
/// Nameplates allocated from 1..=this first; the range grows when it is full.
pub const SMALL_NAMEPLATES: u32 = 999;

enum Slot {
    Empty,
    Connected { tx: mpsc::UnboundedSender<MailboxMsg>, conn: u64 },
    Left,
}

struct Plate {
    slots: [Slot; 2],
    pending: [Vec<MailboxMsg>; 2],
    posted: [usize; 2],
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
}

/// All nameplates of this relay.
pub struct Rendezvous {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
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
        self.rdv.leave(self.nameplate, self.side, self.conn);
    }
}

fn werr(code: ErrorCode, msg: &str) -> WireError {
    WireError::new(code, msg)
}

impl Rendezvous {
    /// An empty rendezvous.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Rendezvous { inner: Mutex::new(Inner::default()), metrics })
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
                    return Err(werr(
                        ErrorCode::Burned,
                        "this code was burned by a failed attempt; ask for a new code",
                    ));
                }
                n
            }
            None => {
                let mut range = SMALL_NAMEPLATES;
                loop {
                    let free: Vec<u32> = (1..=range)
                        .filter(|n| !g.plates.contains_key(n) && !g.burned.contains_key(n))
                        .take(4096)
                        .collect();
                    if !free.is_empty() {
                        let mut r = [0u8; 4];
                        getrandom::fill(&mut r).map_err(|_| werr(ErrorCode::Internal, "rng"))?;
                        break free[u32::from_le_bytes(r) as usize % free.len()];
                    }
                    range = range.saturating_mul(10);
                }
            }
        };
        g.next_conn += 1;
        let conn = g.next_conn;
        let (tx, rx) = mpsc::unbounded_channel();
        let plate = g.plates.entry(n).or_insert_with(|| Plate {
            slots: [Slot::Empty, Slot::Empty],
            pending: [Vec::new(), Vec::new()],
            posted: [0, 0],
        });
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
        plate.posted[i] += 1;
        if plate.posted[i] > MAX_MESSAGES_PER_SIDE {
            return Err(werr(ErrorCode::LimitExceeded, "too many mailbox messages"));
        }
        match &plate.slots[1 - i] {
            Slot::Connected { tx, .. } => {
                let _ = tx.send(MailboxMsg::Message(body));
            }
            _ => plate.pending[1 - i].push(MailboxMsg::Message(body)),
        }
        Ok(())
    }

    /// Burn the nameplate: tell the other side, refuse it for a while.
    pub fn burn(&self, m: &Membership) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(plate) = g.plates.remove(&m.nameplate) {
            for s in &plate.slots {
                if let Slot::Connected { tx, .. } = s {
                    let _ = tx.send(MailboxMsg::Burned);
                }
            }
        }
        g.burned.insert(m.nameplate, Instant::now());
        self.metrics.nameplates.set(g.plates.len() as i64);
    }

    fn leave(&self, n: u32, side: Side, conn: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        let mut remove = false;
        if let Some(plate) = g.plates.get_mut(&n) {
            let i = idx(side);
            if matches!(plate.slots[i], Slot::Connected { conn: c, .. } if c == conn) {
                plate.slots[i] = Slot::Left;
                if let Slot::Connected { tx, .. } = &plate.slots[1 - i] {
                    let _ = tx.send(MailboxMsg::PeerGone);
                }
            }
            remove = !plate.slots.iter().any(|s| matches!(s, Slot::Connected { .. }));
        }
        if remove {
            g.plates.remove(&n);
        }
        self.metrics.nameplates.set(g.plates.len() as i64);
    }
}
