//! Every name the relay gives an object in its store, in one place (PROTOCOL.md,
//! "Storage layout", describes the same names for operators and other implementations).

use veil_wire::{InboxId, TransferId, tid_hex};

/// Everything of transfer `tid`: `t/<tid hex>/`.
pub fn transfer_prefix(tid: &TransferId) -> String {
    format!("t/{}/", tid_hex(tid))
}

/// The transfer's metadata (JSON): `t/<tid>/meta`.
pub fn meta(tid: &TransferId) -> String {
    format!("{}meta", transfer_prefix(tid))
}

/// The sealed manifest: `t/<tid>/manifest`.
pub fn manifest(tid: &TransferId) -> String {
    format!("{}manifest", transfer_prefix(tid))
}

/// The chunk count, written once the upload is complete: `t/<tid>/complete`.
pub fn complete(tid: &TransferId) -> String {
    format!("{}complete", transfer_prefix(tid))
}

/// The chunks of a transfer: `t/<tid>/c/`.
pub fn chunks(tid: &TransferId) -> String {
    format!("{}c/", transfer_prefix(tid))
}

/// Chunk `index`: `t/<tid>/c/<index as 16 lowercase hex digits>` (listings sort by index).
pub fn chunk(tid: &TransferId, index: u64) -> String {
    format!("{}{index:016x}", chunks(tid))
}

/// Counted downloads (one object per receipt): `t/<tid>/dl/`.
pub fn downloads(tid: &TransferId) -> String {
    format!("{}dl/", transfer_prefix(tid))
}

/// One counted download: `t/<tid>/dl/<random id>`.
pub fn download(tid: &TransferId, id: &str) -> String {
    format!("{}{id}", downloads(tid))
}

/// The expiry index the sweeper walks: `e/`.
pub const EXPIRIES: &str = "e/";

/// When transfer `tid` expires (Unix seconds, decimal): `e/<tid>`.
pub fn expiry(tid: &TransferId) -> String {
    format!("{EXPIRIES}{}", tid_hex(tid))
}

/// The transfer an expiry entry belongs to.
pub fn expiry_tid(key: &str) -> Option<TransferId> {
    veil_wire::tid_from_hex(key.strip_prefix(EXPIRIES)?)
}

/// Every inbox: `i/`.
pub const INBOXES: &str = "i/";

/// One inbox's entries: `i/<inbox hex>/`.
pub fn inbox(inbox: &InboxId) -> String {
    format!("{INBOXES}{}/", hex::encode(inbox))
}

/// The key bundle published for an inbox: `kb/<inbox hex>`.
pub fn bundle(inbox: &InboxId) -> String {
    format!("kb/{}", hex::encode(inbox))
}

/// Where nameplate `n`'s mailbox lives, for instances sharing the store: `np/<n>`.
pub fn nameplate(n: u32) -> String {
    format!("np/{n}")
}
