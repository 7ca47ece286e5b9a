//! Blob storage behind the veil relay.
//!
//! The relay is blind: it stores only ciphertext objects (chunks of a few MiB, small
//! metadata objects) under string keys such as `t/<transfer-id-hex>/c/00000012`,
//! `t/<id>/manifest` or `t/<id>/dl/<n>`. This crate is the one place that knows where those
//! bytes live. The relay holds an `Arc<dyn Store>` and never learns which backend is behind
//! it.
//!
//! Backends:
//!
//! - [`MemoryStore`]: a map in memory, for tests and as the reference behaviour.
//! - [`FsStore`]: one file per object under a root directory (the relay's embedded
//!   default).
//! - An S3 store lives with the relay and passes the same [`conformance`] suite.
//!
//! # Guarantees every backend gives
//!
//! - **Atomic put.** A reader sees the old object, the new one, or none; never part of one.
//! - **Durable on return.** When [`Store::put`] or [`Store::put_new`] returns `Ok`, the
//!   object survives a crash or power loss (on [`FsStore`]: the file is fsynced, renamed
//!   into place and its directory fsynced). The relay acknowledges a chunk only then.
//! - **Create-only writes.** [`Store::put_new`] writes only if no object exists under the
//!   key and tells which case happened, so two relay instances racing on the same key
//!   cannot both win. On S3-compatible services that ignore conditional writes
//!   (`If-None-Match: *`) it is best-effort; the S3 store documents this.
//! - **Checked keys.** Every key passes [`validate_key`] before it touches a backend, so a
//!   key can never name a path outside the store or a backend's temporary file.
//! - A missing object is `Ok(None)`, not an error; deleting one is `Ok(())`.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use veil_store::{MemoryStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), veil_store::StoreError> {
//! let store = MemoryStore::new();
//! store.put("t/0a1b/c/00000000", Bytes::from_static(b"ciphertext")).await?;
//! assert!(!store.put_new("t/0a1b/c/00000000", Bytes::from_static(b"other")).await?);
//! assert_eq!(store.get_range("t/0a1b/c/00000000", 0, 6).await?.as_deref(), Some(&b"cipher"[..]));
//! assert_eq!(store.list("t/0a1b/").await?, ["t/0a1b/c/00000000"]);
//! store.delete_prefix("t/0a1b/").await?;
//! assert_eq!(store.head("t/0a1b/c/00000000").await?, None);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod conformance;
mod error;
mod fs;
mod key;
mod memory;

pub use error::StoreError;
pub use fs::FsStore;
pub use key::{MAX_KEY_LEN, MAX_SEGMENT_LEN, validate_key, validate_prefix};
pub use memory::MemoryStore;

use bytes::Bytes;

/// An object store for opaque ciphertext, addressed by string keys.
///
/// Keys follow [`validate_key`]; list prefixes follow [`validate_prefix`]. Every method
/// rejects a bad key with [`StoreError::InvalidKey`] before doing anything else.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Short backend name for logs/metrics ("memory", "fs", later "s3").
    fn kind(&self) -> &'static str;

    /// Store the whole object. Atomic: a reader sees the old object, the new one, or none;
    /// never a partial one. Durable when it returns Ok (fs: file fsynced, renamed into
    /// place, directory fsynced).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;

    /// Store only if no object exists under `key`; `Ok(true)` if written, `Ok(false)` if one
    /// existed (left untouched). Atomic and durable like [`Store::put`].
    async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, StoreError>;

    /// Whole object, or `None` if missing.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Bytes `[start, end)` clamped to the object's length; `None` if the object is missing.
    /// `start` past the length, or `end < start`, is [`StoreError::InvalidRange`];
    /// `start == len` gives an empty body.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError>;

    /// Size in bytes, or `None` if missing.
    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError>;

    /// All keys that start with `prefix`, sorted ascending (byte order). Never returns
    /// temporary files.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Delete one object; deleting a missing key is Ok.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Delete every object under `prefix` (used by the expiry sweeper); Ok if none.
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;

    /// Readiness probe: is the backend reachable and writable? (fs: root dir exists and a
    /// probe file can be written/removed.)
    async fn check(&self) -> Result<(), StoreError>;
}

/// Clamps `[start, end)` to an object of `len` bytes, following [`Store::get_range`].
pub(crate) fn clamp_range(start: u64, end: u64, len: u64) -> Result<(u64, u64), StoreError> {
    if start > len || end < start {
        return Err(StoreError::InvalidRange);
    }
    Ok((start, end.min(len)))
}
