//! Inboxes: sealed keys left for an identity, stored write-once as
//! `i/<inbox hex>/<entry hex>` = one JSON line `{"created":..,"expires":..}`, `\n`, the
//! sealed bytes. Entry ids are the creation time (u64 big-endian) and 8 random bytes, so
//! a listing is oldest first. Who may list and delete is decided by the caller (the
//! connection's authenticated identity); the relay never learns a sender.

use crate::metrics::Metrics;
use crate::state::now;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use veil_store::Store;
use veil_wire::{ErrorCode, InboxEntry, InboxEntryId, InboxId, MAX_INBOX_LIST, WireError};

/// Most live entries in one inbox.
pub const MAX_INBOX_ENTRIES: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    created: u64,
    expires: u64,
}

/// All inboxes of this relay.
pub struct Inboxes {
    store: Arc<dyn Store>,
    max_expire: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Inboxes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inboxes").field("store", &self.store.kind()).finish_non_exhaustive()
    }
}

fn storage(e: veil_store::StoreError) -> WireError {
    tracing::warn!(error = %e, "store error");
    WireError::new(ErrorCode::Storage, "the relay's store failed; try again")
}

fn prefix(inbox: &InboxId) -> String {
    crate::keys::inbox(inbox)
}

fn parse(raw: &[u8]) -> Option<(Header, &[u8])> {
    let nl = raw.iter().position(|b| *b == b'\n')?;
    let h: Header = serde_json::from_slice(&raw[..nl]).ok()?;
    Some((h, &raw[nl + 1..]))
}

fn entry_id(hex_id: &str) -> Option<InboxEntryId> {
    hex::decode(hex_id).ok()?.try_into().ok()
}

impl Inboxes {
    /// Inboxes on `store`; entries live at most `max_expire`.
    pub fn new(store: Arc<dyn Store>, max_expire: Duration, metrics: Arc<Metrics>) -> Self {
        Inboxes { store, max_expire, metrics }
    }

    /// Leave `body` in `inbox` (write-once).
    pub async fn put(&self, inbox: &InboxId, expire_secs: u64, body: Bytes) -> Result<InboxEntryId, WireError> {
        if body.is_empty() {
            return Err(WireError::new(ErrorCode::BadRequest, "empty inbox entry"));
        }
        let p = prefix(inbox);
        if self.store.list(&p).await.map_err(storage)?.len() >= MAX_INBOX_ENTRIES {
            self.metrics.reject("inbox_full");
            return Err(WireError::new(
                ErrorCode::LimitExceeded,
                format!("this inbox is full ({MAX_INBOX_ENTRIES} entries waiting)"),
            ));
        }
        let created = now();
        let expires = created + expire_secs.clamp(1, self.max_expire.as_secs().max(1));
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&created.to_be_bytes());
        getrandom::fill(&mut id[8..]).map_err(|_| WireError::new(ErrorCode::Internal, "rng"))?;
        let mut obj = serde_json::to_vec(&Header { created, expires })
            .map_err(|_| WireError::new(ErrorCode::Internal, "encode"))?;
        obj.push(b'\n');
        obj.extend_from_slice(&body);
        if !self.store.put_new(&format!("{p}{}", hex::encode(id)), Bytes::from(obj)).await.map_err(storage)? {
            return Err(WireError::new(ErrorCode::Conflict, "inbox entry id collision; try again"));
        }
        Ok(id)
    }

    /// Unexpired entries after `after`, oldest first; and whether more follow.
    pub async fn list(
        &self,
        inbox: &InboxId,
        after: Option<InboxEntryId>,
    ) -> Result<(Vec<InboxEntry>, bool), WireError> {
        let p = prefix(inbox);
        let mut keys: Vec<(InboxEntryId, String)> = self
            .store
            .list(&p)
            .await
            .map_err(storage)?
            .into_iter()
            .filter_map(|k| Some((entry_id(k.strip_prefix(&p)?)?, k)))
            .collect();
        keys.sort();
        let now = now();
        let mut entries = Vec::new();
        let mut more = false;
        for (id, k) in keys.into_iter().filter(|(id, _)| after.is_none_or(|a| *id > a)) {
            let Some(raw) = self.store.get(&k).await.map_err(storage)? else { continue };
            let Some((h, sealed)) = parse(&raw) else {
                tracing::warn!(key = %k, "unreadable inbox entry");
                continue;
            };
            if h.expires <= now {
                continue;
            }
            if entries.len() == MAX_INBOX_LIST {
                more = true;
                break;
            }
            entries.push(InboxEntry { id, created: h.created, sealed: sealed.to_vec() });
        }
        Ok((entries, more))
    }

    /// Delete one entry (missing is fine).
    pub async fn delete(&self, inbox: &InboxId, entry: &InboxEntryId) -> Result<(), WireError> {
        self.store.delete(&format!("{}{}", prefix(inbox), hex::encode(entry))).await.map_err(storage)
    }

    /// Keep `body` as the key bundle of `inbox` (replacing an earlier one). Opaque: the
    /// relay never parses it.
    pub async fn put_bundle(&self, inbox: &InboxId, body: Bytes) -> Result<(), WireError> {
        if body.is_empty() {
            return Err(WireError::new(ErrorCode::BadRequest, "empty key bundle"));
        }
        self.store.put(&crate::keys::bundle(inbox), body).await.map_err(storage)
    }

    /// The key bundle published for `inbox`.
    pub async fn get_bundle(&self, inbox: &InboxId) -> Result<Bytes, WireError> {
        match self.store.get(&crate::keys::bundle(inbox)).await.map_err(storage)? {
            Some(b) => Ok(b),
            None => Err(WireError::new(ErrorCode::NotFound, "no key bundle published for this identity")),
        }
    }

    /// Delete every expired entry; returns how many.
    pub async fn sweep(&self) -> Result<usize, veil_store::StoreError> {
        let now = now();
        let mut n = 0;
        for k in self.store.list(crate::keys::INBOXES).await? {
            let expired = match self.store.get(&k).await? {
                Some(raw) => parse(&raw).is_none_or(|(h, _)| h.expires <= now),
                None => false,
            };
            if expired {
                self.store.delete(&k).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
