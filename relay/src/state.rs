//! Transfers on the relay: metadata, chunks and download receipts, all in the store so
//! any relay instance sharing it can serve any transfer. In memory only what speeds
//! things up (cached metadata, wake-ups for receivers waiting on a chunk).

use crate::cut_through::{InFlight, Partial, Uploading};
use crate::keys;
use crate::metrics::Metrics;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use veil_store::Store;
use veil_wire::{CapabilityHash, ErrorCode, TransferId, TransferStatus, WireError, cap_hash, to_ranges};

/// What the relay stores about a transfer (`t/<id>/meta`, JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    /// Hash of the owner capability.
    pub owner: CapabilityHash,
    /// Hash of the download capability.
    pub download: CapabilityHash,
    /// Hash of the receipt.
    pub receipt: CapabilityHash,
    /// Unix seconds of creation.
    pub created: u64,
    /// Unix seconds of expiry.
    pub expires: u64,
    /// Download limit.
    pub max_downloads: Option<u32>,
    /// Declared size.
    pub size_hint: Option<u64>,
    /// A recorded live stream: its chunks are the stream's segments, it has no manifest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

impl Meta {
    /// A transfer created now, expiring in `expire_secs`: no download limit, no declared
    /// size, not a stream.
    fn fresh(owner: CapabilityHash, download: CapabilityHash, receipt: CapabilityHash, expire_secs: u64) -> Meta {
        let created = now();
        Meta {
            owner,
            download,
            receipt,
            created,
            expires: created.saturating_add(expire_secs),
            max_downloads: None,
            size_hint: None,
            stream: false,
        }
    }
}

/// Limits the relay enforces on transfers.
#[derive(Debug, Clone)]
pub struct TransferLimits {
    /// Largest ciphertext size of one transfer.
    pub max_transfer_bytes: u64,
    /// Most uploads in progress at once.
    pub max_active_uploads: usize,
    /// Longest expiry a client may ask for.
    pub max_expire: Duration,
}

impl Default for TransferLimits {
    fn default() -> Self {
        TransferLimits {
            max_transfer_bytes: 64 << 30,
            max_active_uploads: 1024,
            max_expire: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

struct Live {
    meta: Meta,
    /// Unix seconds of expiry (a recording's moves forward; `meta.expires` is the first).
    expires: AtomicU64,
    notify: Notify,
    bytes: AtomicU64,
    downloads: AtomicU32,
    /// Seen complete (a complete transfer never becomes incomplete again).
    complete: std::sync::atomic::AtomicBool,
}

/// A chunk's bytes as the relay can serve them.
#[derive(Debug)]
pub enum Body {
    /// Stored.
    Stored(Bytes),
    /// Still arriving from its uploader (see [`crate::cut_through`]).
    Arriving(Arc<Partial>),
}

/// All transfers.
pub struct Transfers {
    store: Arc<dyn Store>,
    in_flight: Arc<InFlight>,
    live: Mutex<HashMap<TransferId, Arc<Live>>>,
    uploading: Mutex<HashSet<TransferId>>,
    limits: TransferLimits,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").field("store", &self.store.kind()).finish_non_exhaustive()
    }
}

fn err(code: ErrorCode, msg: impl Into<String>) -> WireError {
    WireError::new(code, msg)
}

fn storage(e: veil_store::StoreError) -> WireError {
    tracing::warn!(error = %e, "store error");
    err(ErrorCode::Storage, "the relay's store failed; try again")
}

/// Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn check_cap(expected: &CapabilityHash, cap: &[u8; 32], what: &str) -> Result<(), WireError> {
    let h = cap_hash(cap);
    // Both are hashes; comparing them leaks nothing useful, but stay constant time anyway.
    let diff = h.iter().zip(expected.iter()).fold(0u8, |a, (x, y)| a | (x ^ y));
    if diff != 0 {
        return Err(err(ErrorCode::Forbidden, format!("wrong {what} capability")));
    }
    Ok(())
}

impl Transfers {
    /// Transfers on `store`.
    pub fn new(store: Arc<dyn Store>, limits: TransferLimits, metrics: Arc<Metrics>) -> Self {
        Transfers {
            store,
            in_flight: Arc::new(InFlight::default()),
            live: Mutex::new(HashMap::new()),
            uploading: Mutex::new(HashSet::new()),
            limits,
            metrics,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn live(&self, tid: &TransferId) -> Result<Arc<Live>, WireError> {
        let cached = self.live.lock().map_err(|_| err(ErrorCode::Internal, "lock"))?.get(tid).cloned();
        if let Some(l) = cached {
            if l.expires.load(Ordering::Relaxed) > now() {
                return Ok(l);
            }
            // A recording's expiry moves forward, maybe on another instance: ask the store.
            if l.meta.stream
                && let Some(raw) = self.store.get(&keys::meta(tid)).await.map_err(storage)?
                && let Ok(m) = serde_json::from_slice::<Meta>(&raw)
                && m.expires > now()
            {
                l.expires.fetch_max(m.expires, Ordering::Relaxed);
                return Ok(l);
            }
            return Err(err(ErrorCode::Expired, "this transfer has expired"));
        }
        let raw = self.store.get(&keys::meta(tid)).await.map_err(storage)?;
        let Some(raw) = raw else {
            return Err(err(
                ErrorCode::NotFound,
                "no such transfer (wrong code or ticket, or it expired and was deleted)",
            ));
        };
        let meta: Meta =
            serde_json::from_slice(&raw).map_err(|_| err(ErrorCode::Internal, "corrupt transfer metadata"))?;
        if meta.expires <= now() {
            return Err(err(ErrorCode::Expired, "this transfer has expired"));
        }
        let downloads = self.store.list(&keys::downloads(tid)).await.map_err(storage)?.len() as u32;
        let l = Arc::new(Live {
            expires: AtomicU64::new(meta.expires),
            meta,
            notify: Notify::new(),
            bytes: AtomicU64::new(0),
            downloads: AtomicU32::new(downloads),
            complete: std::sync::atomic::AtomicBool::new(false),
        });
        let mut map = self.live.lock().map_err(|_| err(ErrorCode::Internal, "lock"))?;
        Ok(map.entry(*tid).or_insert(l).clone())
    }

    /// Register a transfer from its `Create` request (idempotent for the same owner);
    /// true if it is new. Any other request is a bad request.
    pub async fn create(&self, req: veil_wire::Request) -> Result<bool, WireError> {
        let veil_wire::Request::Create { tid, owner, download, receipt, expire_secs, max_downloads, size_hint } = req
        else {
            return Err(err(ErrorCode::BadRequest, "not a Create request"));
        };
        self.create_with(tid, Meta { max_downloads, size_hint, ..Meta::fresh(owner, download, receipt, expire_secs) })
            .await
    }

    /// Register the recording of a live stream (a transfer with no manifest whose chunks
    /// the relay itself writes, see [`Transfers::put_segment`]).
    pub async fn create_recording(
        &self,
        tid: TransferId,
        owner: CapabilityHash,
        download: CapabilityHash,
        receipt: CapabilityHash,
        expire_secs: u64,
    ) -> Result<(), WireError> {
        let meta = Meta { stream: true, ..Meta::fresh(owner, download, receipt, expire_secs) };
        if !self.create_with(tid, meta).await? {
            return Err(err(ErrorCode::Conflict, "stream id already in use"));
        }
        Ok(())
    }

    async fn create_with(&self, tid: TransferId, meta: Meta) -> Result<bool, WireError> {
        let owner = meta.owner;
        let expire_secs = meta.expires - meta.created;
        if let Some(size) = meta.size_hint
            && size > self.limits.max_transfer_bytes
        {
            self.metrics.reject("transfer_too_large");
            return Err(err(
                ErrorCode::LimitExceeded,
                format!(
                    "transfer of {size} bytes exceeds this relay's limit of {} bytes",
                    self.limits.max_transfer_bytes
                ),
            ));
        }
        if expire_secs == 0 || expire_secs > self.limits.max_expire.as_secs() {
            self.metrics.reject("bad_expiry");
            return Err(err(
                ErrorCode::LimitExceeded,
                format!("expiry must be between 1 s and {} s on this relay", self.limits.max_expire.as_secs()),
            ));
        }
        match self.live(&tid).await {
            Ok(l) if l.meta.owner == owner => return Ok(false),
            Ok(_) => return Err(err(ErrorCode::Conflict, "transfer id already in use")),
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        {
            let up = self.uploading.lock().map_err(|_| err(ErrorCode::Internal, "lock"))?;
            if up.len() >= self.limits.max_active_uploads {
                self.metrics.reject("too_many_uploads");
                return Err(err(
                    ErrorCode::LimitExceeded,
                    "the relay has too many uploads in progress; try again later",
                ));
            }
        }
        let body = serde_json::to_vec(&meta).map_err(|_| err(ErrorCode::Internal, "encode"))?;
        if !self.store.put_new(&keys::meta(&tid), Bytes::from(body)).await.map_err(storage)? {
            // Someone created it concurrently: accept only if it is ours.
            self.live.lock().map_err(|_| err(ErrorCode::Internal, "lock"))?.remove(&tid);
            let l = self.live(&tid).await?;
            if l.meta.owner != owner {
                return Err(err(ErrorCode::Conflict, "transfer id already in use"));
            }
            return Ok(false);
        }
        self.store.put(&keys::expiry(&tid), Bytes::from(meta.expires.to_string())).await.map_err(storage)?;
        self.uploading.lock().map_err(|_| err(ErrorCode::Internal, "lock"))?.insert(tid);
        self.metrics.transfers_created.inc();
        Ok(true)
    }

    /// Check the owner capability of a live transfer and that it can still be written
    /// (before reading an upload body).
    pub async fn check_owner(&self, tid: &TransferId, owner: &[u8; 32]) -> Result<(), WireError> {
        let l = self.live(tid).await?;
        check_cap(&l.meta.owner, owner, "owner")?;
        self.check_writable(&l, tid).await
    }

    /// Refuse writes to a complete transfer: it is immutable.
    async fn check_writable(&self, l: &Live, tid: &TransferId) -> Result<(), WireError> {
        if self.is_complete(l, tid).await? {
            self.metrics.reject("write_after_complete");
            return Err(err(ErrorCode::Completed, "this transfer is complete: nothing in it can change any more"));
        }
        Ok(())
    }

    async fn is_complete(&self, l: &Live, tid: &TransferId) -> Result<bool, WireError> {
        if l.complete.load(Ordering::Relaxed) {
            return Ok(true);
        }
        // Another instance sharing the store may have completed it.
        let done = self.store.head(&keys::complete(tid)).await.map_err(storage)?.is_some();
        if done {
            l.complete.store(true, Ordering::Relaxed);
        }
        Ok(done)
    }

    /// Store `body` under `k` unless something is already there: the same bytes again
    /// (a retried request) are fine, anything else is refused. Returns whether it wrote.
    async fn put_once(&self, k: &str, body: Bytes, what: &str) -> Result<bool, WireError> {
        if self.store.put_new(k, body.clone()).await.map_err(storage)? {
            return Ok(true);
        }
        match self.store.get(k).await.map_err(storage)? {
            Some(existing) if existing == body => Ok(false),
            _ => {
                self.metrics.reject("rewrite");
                Err(err(ErrorCode::Conflict, format!("{what} is already stored and cannot be replaced")))
            }
        }
    }

    /// Chunk `index` of `tid` starts arriving with `len` bytes: waiting readers are served
    /// from it as it comes (None if another upload of it is already arriving). Call
    /// [`Transfers::check_owner`] first; tell the handle when the chunk is stored.
    pub async fn arriving(&self, tid: &TransferId, index: u64, len: u32) -> Option<Uploading> {
        let up = self.in_flight.begin(*tid, index, len as usize)?;
        if let Ok(l) = self.live(tid).await {
            l.notify.notify_waiters();
        }
        Some(up)
    }

    /// Store chunk `index` (durable before this returns); call [`Transfers::check_owner`]
    /// first, before reading the body.
    pub async fn put_chunk(
        &self,
        tid: &TransferId,
        owner: &[u8; 32],
        index: u64,
        body: Bytes,
    ) -> Result<(), WireError> {
        if index > veil_wire::MAX_CHUNK_INDEX {
            return Err(err(ErrorCode::BadRequest, "chunk index out of range"));
        }
        // Completion was checked by `check_owner` before the body was read; a chunk
        // racing a `Complete` can only add an index the receivers never ask for, since
        // stored chunks are write-once.
        let l = self.live(tid).await?;
        check_cap(&l.meta.owner, owner, "owner")?;
        self.store_chunk(&l, tid, index, body, "transfer exceeds", true).await
    }

    /// Store chunk `index` of a live transfer within its size limit (`what` opens the
    /// message when over it), then wake whoever waits for it.
    async fn store_chunk(
        &self,
        l: &Live,
        tid: &TransferId,
        index: u64,
        body: Bytes,
        what: &str,
        once: bool,
    ) -> Result<(), WireError> {
        let total = l.bytes.fetch_add(body.len() as u64, Ordering::Relaxed) + body.len() as u64;
        if total > self.limits.max_transfer_bytes {
            self.metrics.reject("transfer_too_large");
            return Err(err(
                ErrorCode::LimitExceeded,
                format!("{what} this relay's limit of {} bytes", self.limits.max_transfer_bytes),
            ));
        }
        let len = body.len() as u64;
        let t = std::time::Instant::now();
        if once {
            let wrote = self.put_once(&keys::chunk(tid, index), body, &format!("chunk {index}")).await;
            if !matches!(wrote, Ok(true)) {
                // A retry of what is stored, or a refused rewrite: count its bytes once.
                l.bytes.fetch_sub(len, Ordering::Relaxed);
                return wrote.map(|_| ());
            }
        } else {
            self.store.put(&keys::chunk(tid, index), body).await.map_err(storage)?;
        }
        self.metrics.chunk_latency.observe(t.elapsed().as_secs_f64());
        self.metrics.bytes_in.inc_by(len);
        l.notify.notify_waiters();
        Ok(())
    }

    /// Store the sealed manifest (write-once; completion checked by `check_owner` before
    /// the body was read).
    pub async fn put_manifest(&self, tid: &TransferId, owner: &[u8; 32], body: Bytes) -> Result<(), WireError> {
        let l = self.live(tid).await?;
        check_cap(&l.meta.owner, owner, "owner")?;
        let len = body.len() as u64;
        if self.put_once(&keys::manifest(tid), body, "the manifest").await? {
            self.metrics.bytes_in.inc_by(len);
            l.notify.notify_waiters();
        }
        Ok(())
    }

    /// Store segment `index` of a recorded stream (durable before this returns). The
    /// relay calls this itself with what the stream's publisher sent, so there is no
    /// capability to check; the transfer size limit applies as for uploads.
    pub async fn put_segment(&self, tid: &TransferId, index: u64, body: Bytes) -> Result<(), WireError> {
        if index > veil_wire::MAX_CHUNK_INDEX {
            return Err(err(ErrorCode::BadRequest, "segment index out of range"));
        }
        let l = self.live(tid).await?;
        self.store_chunk(&l, tid, index, body, "the recording reached", false).await
    }

    /// Push a recording's expiry to `expire_secs` from now (a recording is kept for its
    /// expiry after the stream ends, however long the stream ran).
    pub async fn extend_recording(&self, tid: &TransferId, expire_secs: u64) -> Result<(), WireError> {
        let l = self.live(tid).await?;
        let expires = now().saturating_add(expire_secs);
        if !l.meta.stream || expires <= l.expires.load(Ordering::Relaxed) {
            return Ok(());
        }
        let meta = Meta { expires, ..l.meta.clone() };
        let body = serde_json::to_vec(&meta).map_err(|_| err(ErrorCode::Internal, "encode"))?;
        self.store.put(&keys::meta(tid), Bytes::from(body)).await.map_err(storage)?;
        self.store.put(&keys::expiry(tid), Bytes::from(expires.to_string())).await.map_err(storage)?;
        l.expires.fetch_max(expires, Ordering::Relaxed);
        Ok(())
    }

    /// Close a recording after `count` stored segments and keep it for `expire_secs`
    /// from now (whether the stream ended cleanly is for the viewer to tell from the
    /// authenticated final segment).
    pub async fn finish_recording(&self, tid: &TransferId, count: u64, expire_secs: u64) -> Result<(), WireError> {
        // Best effort: a recording that cannot be extended is still closed.
        if let Err(e) = self.extend_recording(tid, expire_secs).await {
            tracing::warn!(error = %e, "could not extend a recording's expiry");
        }
        // The upload slot is free even if the store fails below.
        self.release_upload(tid);
        let l = self.live(tid).await?;
        self.mark_complete(&l, tid, count).await
    }

    /// Write `complete` (the chunk count), free the upload slot, wake waiting readers.
    async fn mark_complete(&self, l: &Live, tid: &TransferId, count: u64) -> Result<(), WireError> {
        self.store.put(&keys::complete(tid), Bytes::from(count.to_string())).await.map_err(storage)?;
        l.complete.store(true, Ordering::Relaxed);
        self.release_upload(tid);
        l.notify.notify_waiters();
        Ok(())
    }

    fn release_upload(&self, tid: &TransferId) {
        if let Ok(mut u) = self.uploading.lock()
            && u.remove(tid)
        {
            self.metrics.transfers_completed.inc();
        }
    }

    /// Mark complete after checking every chunk is there.
    pub async fn complete(&self, tid: &TransferId, owner: &[u8; 32], count: u64) -> Result<(), WireError> {
        let l = self.live(tid).await?;
        check_cap(&l.meta.owner, owner, "owner")?;
        if let Some(done) = self.completed(tid).await? {
            if done == count {
                // A retried Complete.
                return Ok(());
            }
            return Err(err(ErrorCode::Completed, format!("this transfer is already complete with {done} chunks")));
        }
        let have = self.chunk_indices(tid).await?;
        // `have` is sorted and unique: count what lies below `count` without walking a
        // client-chosen range.
        let missing = count.saturating_sub(have.partition_point(|&i| i < count) as u64);
        if missing > 0 || have.last().is_some_and(|&m| m >= count) {
            return Err(err(ErrorCode::Incomplete, format!("{missing} of {count} chunks missing")));
        }
        if self.store.head(&keys::manifest(tid)).await.map_err(storage)?.is_none() {
            return Err(err(ErrorCode::Incomplete, "manifest missing"));
        }
        self.mark_complete(&l, tid, count).await
    }

    async fn chunk_indices(&self, tid: &TransferId) -> Result<Vec<u64>, WireError> {
        let prefix = keys::chunks(tid);
        let keys = self.store.list(&prefix).await.map_err(storage)?;
        let mut v: Vec<u64> =
            keys.iter().filter_map(|k| u64::from_str_radix(k.strip_prefix(&prefix)?, 16).ok()).collect();
        v.sort_unstable();
        Ok(v)
    }

    /// What is stored (owner or download capability).
    pub async fn status(&self, tid: &TransferId, cap: &[u8; 32]) -> Result<TransferStatus, WireError> {
        let l = self.live(tid).await?;
        if check_cap(&l.meta.owner, cap, "owner").is_err() {
            check_cap(&l.meta.download, cap, "download")?;
        }
        let chunks = to_ranges(self.chunk_indices(tid).await?);
        let manifest = self.store.head(&keys::manifest(tid)).await.map_err(storage)?.is_some();
        let complete = self.completed(tid).await?;
        let downloads = self.store.list(&keys::downloads(tid)).await.map_err(storage)?.len() as u32;
        Ok(TransferStatus {
            chunks,
            manifest,
            complete,
            downloads,
            max_downloads: l.meta.max_downloads,
            expires_in_secs: l.expires.load(Ordering::Relaxed).saturating_sub(now()),
        })
    }

    async fn completed(&self, tid: &TransferId) -> Result<Option<u64>, WireError> {
        Ok(self
            .store
            .get(&keys::complete(tid))
            .await
            .map_err(storage)?
            .and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok())))
    }

    fn check_download(&self, l: &Live, cap: &[u8; 32]) -> Result<(), WireError> {
        check_cap(&l.meta.download, cap, "download")?;
        if let Some(max) = l.meta.max_downloads
            && l.downloads.load(Ordering::Relaxed) >= max
        {
            self.metrics.reject("download_limit");
            return Err(err(
                ErrorCode::DownloadLimit,
                format!("this transfer was already downloaded {max} time(s), its limit"),
            ));
        }
        Ok(())
    }

    /// Fetch the manifest, waiting for it up to `wait`.
    pub async fn get_manifest(&self, tid: &TransferId, cap: &[u8; 32], wait: Duration) -> Result<Bytes, WireError> {
        let l = self.live(tid).await?;
        let n = self.store.list(&keys::downloads(tid)).await.map_err(storage)?.len() as u32;
        l.downloads.store(n, Ordering::Relaxed);
        self.check_download(&l, cap)?;
        if l.meta.stream {
            return Err(err(
                ErrorCode::BadRequest,
                "this is a recorded live stream, not a file transfer: replay it with `veil watch --from-start`",
            ));
        }
        match self.wait_for(&l, tid, &keys::manifest(tid), None, wait).await? {
            Body::Stored(b) => Ok(b),
            Body::Arriving(_) => Err(err(ErrorCode::Internal, "a manifest is never served before it is stored")),
        }
    }

    /// Fetch chunk `index`, waiting for it up to `wait`.
    pub async fn get_chunk(
        &self,
        tid: &TransferId,
        cap: &[u8; 32],
        index: u64,
        wait: Duration,
    ) -> Result<Body, WireError> {
        let l = self.live(tid).await?;
        self.check_download(&l, cap)?;
        let t = std::time::Instant::now();
        let b = self.wait_for(&l, tid, &keys::chunk(tid, index), Some(index), wait).await?;
        self.metrics.chunk_latency.observe(t.elapsed().as_secs_f64());
        let len = match &b {
            Body::Stored(b) => b.len(),
            Body::Arriving(p) => p.len(),
        };
        self.metrics.bytes_out.inc_by(len as u64);
        Ok(b)
    }

    /// Wait up to `wait` for the object `k` to be stored, or for chunk `index` (when
    /// given) to start arriving on this instance.
    async fn wait_for(
        &self,
        l: &Live,
        tid: &TransferId,
        k: &str,
        index: Option<u64>,
        wait: Duration,
    ) -> Result<Body, WireError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = l.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(b) = self.store.get(k).await.map_err(storage)? {
                return Ok(Body::Stored(b));
            }
            if let Some(p) = index.and_then(|i| self.in_flight.get(tid, i)) {
                return Ok(Body::Arriving(p));
            }
            if l.expires.load(Ordering::Relaxed) <= now() {
                // A recording may have been extended meanwhile (maybe by another instance).
                self.live(tid).await?;
            }
            // A complete upload will not bring the object any more: it was lost or deleted.
            if self.store.head(&keys::complete(tid)).await.map_err(storage)?.is_some() {
                return Err(err(ErrorCode::NotFound, "this part of the transfer is missing from the relay's store"));
            }
            let now_i = tokio::time::Instant::now();
            if now_i >= deadline {
                return Err(err(ErrorCode::Timeout, "the sender has not uploaded this part yet"));
            }
            // Another relay instance may be the one receiving the upload: poll too.
            let nap = (deadline - now_i).min(Duration::from_millis(200));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    /// Count one successful download.
    pub async fn receipt(&self, tid: &TransferId, receipt: &[u8; 32]) -> Result<Option<u32>, WireError> {
        let l = self.live(tid).await?;
        check_cap(&l.meta.receipt, receipt, "receipt")?;
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|_| err(ErrorCode::Internal, "rng"))?;
        let id: String = r.iter().map(|b| format!("{b:02x}")).collect();
        self.store.put_new(&keys::download(tid, &id), Bytes::from_static(b"1")).await.map_err(storage)?;
        let n = self.store.list(&keys::downloads(tid)).await.map_err(storage)?.len() as u32;
        l.downloads.store(n, Ordering::Relaxed);
        self.metrics.downloads_completed.inc();
        Ok(l.meta.max_downloads.map(|m| m.saturating_sub(n)))
    }

    /// Delete a transfer (owner).
    pub async fn delete(&self, tid: &TransferId, owner: &[u8; 32]) -> Result<(), WireError> {
        let l = self.live(tid).await?;
        check_cap(&l.meta.owner, owner, "owner")?;
        self.remove(tid).await.map_err(storage)
    }

    async fn remove(&self, tid: &TransferId) -> Result<(), veil_store::StoreError> {
        if let Ok(mut m) = self.live.lock() {
            m.remove(tid);
        }
        if let Ok(mut u) = self.uploading.lock() {
            u.remove(tid);
        }
        self.store.delete_prefix(&keys::transfer_prefix(tid)).await?;
        self.store.delete(&keys::expiry(tid)).await
    }

    /// Delete every expired transfer; returns their ids.
    pub async fn sweep(&self) -> Result<Vec<TransferId>, veil_store::StoreError> {
        let now = now();
        let mut n = Vec::new();
        for k in self.store.list(keys::EXPIRIES).await? {
            let Some(tid) = keys::expiry_tid(&k) else { continue };
            let expired = match self.store.get(&k).await? {
                Some(b) => {
                    std::str::from_utf8(&b).ok().and_then(|s| s.trim().parse::<u64>().ok()).is_none_or(|e| e <= now)
                }
                None => false,
            };
            if expired {
                self.remove(&tid).await?;
                self.metrics.swept.inc();
                n.push(tid);
            }
        }
        Ok(n)
    }
}
