//! The one error type shared by every storage backend.

/// Why a storage operation failed.
///
/// A missing object is not an error: reads return `Ok(None)` and deletes of missing keys
/// succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The key (or list prefix) breaks the key rules of [`validate_key`](crate::validate_key).
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key or prefix, as given.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A ranged read started past the end of the object, or its end lies before its start.
    #[error("invalid byte range: start is past the end of the object or after the range end")]
    InvalidRange,
    /// The backend's file system reported an error.
    #[error("storage I/O error during {op} of {key:?}")]
    Io {
        /// The operation that failed (`"put"`, `"get"`, ...).
        op: &'static str,
        /// The key or prefix it was working on.
        key: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot be reached or written to right now; retrying later may help.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `op` on `key`.
    pub(crate) fn io(op: &'static str, key: &str, source: std::io::Error) -> Self {
        Self::Io { op, key: key.to_owned(), source }
    }
}
