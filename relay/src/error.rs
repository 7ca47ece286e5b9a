//! Why a relay could not start. Serving errors go to clients as `veil_wire::WireError`;
//! these are for the operator, one clear line each.

use std::path::PathBuf;

/// A relay that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file of the relay's own (certificate, key) could not be read or written.
    #[error("{op} {}: {source}", .path.display())]
    File {
        /// What we were doing.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key is unusable.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The storage backend answered its check with an error.
    #[error("the {kind} store is not usable: {source}")]
    Store {
        /// Which backend.
        kind: &'static str,
        /// Its error.
        #[source]
        source: veil_store::StoreError,
    },
    /// An address could not be bound.
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        /// QUIC or HTTP.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TLS or QUIC could not be set up.
    #[error("QUIC/TLS setup: {0}")]
    Setup(String),
    /// The allow-list file is unreadable or invalid.
    #[error(transparent)]
    AllowList(#[from] crate::access::AllowListError),
}

impl StartError {
    pub(crate) fn file(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StartError::File { op, path: path.into(), source }
    }
}
