//! Counting what clients hold open, in one place: QUIC connections (in total and per IP
//! address) and mailboxes (per connection and per IP address). A permit is taken before
//! the work starts and gives its slot back when dropped.

use crate::access::ConnCtx;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use veil_wire::{ErrorCode, WireError};

/// Most mailboxes one connection may hold open at once (a key exchange needs one).
pub const MAX_MAILBOXES_PER_CONN: usize = 4;
/// Most mailboxes the connections of one IP address may hold open at once.
pub const MAX_MAILBOXES_PER_IP: usize = 32;

/// The relay's open connections and mailboxes.
#[derive(Debug)]
pub struct Slots {
    conns: Mutex<(usize, HashMap<IpAddr, usize>)>,
    mailboxes: Mutex<HashMap<IpAddr, usize>>,
    max_conns: usize,
    max_conns_per_ip: usize,
    /// Connections granted [`veil_quic::RELAY_BULK_WINDOW`] of receive credit now.
    wide: std::sync::atomic::AtomicUsize,
    /// Most connections with the bulk window: the window budget over the bulk window.
    max_wide: usize,
}

fn take_one(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    *map.entry(ip).or_insert(0) += 1;
}

fn give_back(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

impl Slots {
    /// Room for `max_conns` connections, `max_conns_per_ip` from one address, and
    /// `window_budget` bytes of receive credit for connections moving transfers.
    pub fn new(max_conns: usize, max_conns_per_ip: usize, window_budget: u64) -> Arc<Slots> {
        Arc::new(Slots {
            conns: Mutex::new((0, HashMap::new())),
            mailboxes: Mutex::new(HashMap::new()),
            max_conns,
            max_conns_per_ip,
            wide: std::sync::atomic::AtomicUsize::new(0),
            max_wide: usize::try_from(window_budget / u64::from(veil_quic::RELAY_BULK_WINDOW)).unwrap_or(usize::MAX),
        })
    }

    /// The connection `ctx` uploads chunks: grant it the bulk receive window (enough
    /// for a long fat path) while the window budget allows; every connection starts
    /// with [`veil_quic::RELAY_BASE_WINDOW`], so the worst case of unread data the relay
    /// can be made to buffer is `max_conns x base + budget`, not `max_conns x bulk`.
    pub fn widen(self: &Arc<Self>, ctx: &ConnCtx, conn: &quinn::Connection) {
        let Ok(mut w) = ctx.wide.lock() else { return };
        if w.is_some() {
            return;
        }
        if self.wide.fetch_add(1, Ordering::Relaxed) >= self.max_wide {
            self.wide.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        *w = Some(WidePermit { slots: self.clone() });
        conn.set_receive_window(veil_quic::RELAY_BULK_WINDOW.into());
    }

    /// Connections holding the bulk window now.
    pub fn wide(&self) -> usize {
        self.wide.load(Ordering::Relaxed)
    }

    /// A connection slot for `ip`, or None when the relay or that address is full.
    pub fn connection(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        let mut g = self.conns.lock().ok()?;
        let per_ip = g.1.get(&ip).copied().unwrap_or(0);
        if g.0 >= self.max_conns || per_ip >= self.max_conns_per_ip {
            return None;
        }
        g.0 += 1;
        take_one(&mut g.1, ip);
        Some(ConnPermit { slots: self.clone(), ip })
    }

    /// A mailbox slot for the connection `ctx`, or a `LimitExceeded` saying which limit.
    pub fn mailbox(self: &Arc<Self>, ctx: &Arc<ConnCtx>) -> Result<MailboxPermit, WireError> {
        let refuse = |what: &str| {
            WireError::new(
                ErrorCode::LimitExceeded,
                format!("too many open mailboxes {what}; finish a key exchange first"),
            )
        };
        let mut ips = self.mailboxes.lock().map_err(|_| refuse("(lock)"))?;
        if ips.get(&ctx.ip).copied().unwrap_or(0) >= MAX_MAILBOXES_PER_IP {
            return Err(refuse("from this address"));
        }
        if ctx.mailboxes.fetch_add(1, Ordering::Relaxed) >= MAX_MAILBOXES_PER_CONN {
            ctx.mailboxes.fetch_sub(1, Ordering::Relaxed);
            return Err(refuse("on this connection"));
        }
        take_one(&mut ips, ctx.ip);
        Ok(MailboxPermit { slots: self.clone(), ctx: ctx.clone() })
    }
}

/// A connection slot, given back on drop.
#[derive(Debug)]
pub struct ConnPermit {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Ok(mut g) = self.slots.conns.lock() {
            g.0 = g.0.saturating_sub(1);
            give_back(&mut g.1, self.ip);
        }
    }
}

/// A connection's share of the window budget, given back when the connection's state
/// is dropped.
#[derive(Debug)]
pub struct WidePermit {
    slots: Arc<Slots>,
}

impl Drop for WidePermit {
    fn drop(&mut self) {
        self.slots.wide.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A mailbox slot, given back on drop.
#[derive(Debug)]
pub struct MailboxPermit {
    slots: Arc<Slots>,
    ctx: Arc<ConnCtx>,
}

impl Drop for MailboxPermit {
    fn drop(&mut self) {
        self.ctx.mailboxes.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut ips) = self.slots.mailboxes.lock() {
            give_back(&mut ips, self.ctx.ip);
        }
    }
}
