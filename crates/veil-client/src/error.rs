//! Errors of the client library.

use std::path::PathBuf;
use veil_format::FormatError;
use veil_wire::WireError;

/// Everything that can go wrong sending or receiving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The relay refused a request.
    #[error("relay: {0}")]
    Relay(WireError),
    /// The relay could not be reached.
    #[error("cannot reach the relay at {addr}: {reason}")]
    Connect {
        /// Relay address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The relay's certificate is not the one pinned.
    #[error(
        "THE RELAY'S CERTIFICATE CHANGED for {addr}!\n  pinned:    {old}\n  presented: {new}\nSomeone may be intercepting the connection. If the relay operator really replaced the certificate, remove the entry from {known}"
    )]
    CertificateChanged {
        /// Relay address.
        addr: String,
        /// Pinned fingerprint.
        old: String,
        /// Presented fingerprint.
        new: String,
        /// The file holding the pins.
        known: String,
    },
    /// A format or crypto error (tampering, wrong code, bad names...).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A local file operation failed.
    #[error("{op} {}: {err}", .path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        err: std::io::Error,
    },
    /// The connection to the relay broke and did not come back in time.
    #[error("connection to the relay lost: {0}")]
    Transport(String),
    /// The peer or relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The relay answered a request with a response of the wrong kind.
    #[error("protocol error: unexpected answer to {request}")]
    UnexpectedAnswer {
        /// The request that got the wrong answer.
        request: &'static str,
    },
    /// A frame to or from the relay could not be encoded or decoded.
    #[error("protocol error: {0}")]
    Frame(#[from] veil_wire::FrameError),
    /// A background task of the transfer panicked or was cancelled.
    #[error("an internal task of the transfer failed")]
    Task(#[source] tokio::task::JoinError),
    /// The relay announced a body longer than the request can bring back: refused before
    /// anything was allocated for it.
    #[error("the relay announced {len} bytes where at most {cap} can come: refused")]
    BodyTooLarge {
        /// The announced length.
        len: u32,
        /// The most this request can bring.
        cap: u32,
    },
    /// The ticket is password-wrapped and no password was given.
    #[error("this ticket needs a password")]
    PasswordNeeded,
    /// A file would be overwritten (replacing it was not allowed).
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The temporary folder of a receive is not a private folder of ours (a symbolic link,
    /// not a folder, another owner, or open to others): someone may be tampering with it.
    #[error("refusing to use the temporary folder {}: {reason}; remove it if it is not yours and try again", .path.display())]
    UnsafeTemp {
        /// The temporary folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A received entry would be written through a symbolic link or something else that
    /// is not a plain folder.
    #[error("refusing to write {}: {reason}", .path.display())]
    UnsafePath {
        /// The path in the output folder.
        path: PathBuf,
        /// What is in the way.
        reason: &'static str,
    },
    /// The user declined the transfer.
    #[error("transfer declined")]
    Declined,
    /// The other side went away.
    #[error("{0}")]
    PeerGone(String),
    /// Invalid input from the user.
    #[error("{0}")]
    Usage(String),
    /// Waited too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The recipient has not published its key bundle (post-quantum key) on this relay,
    /// so nothing can be sealed to it (veil never falls back to X25519 alone).
    #[error("{recipient} has not published a post-quantum key on this relay yet")]
    NoKeyBundle {
        /// Fingerprint of the recipient.
        recipient: String,
    },
}

impl ClientError {
    /// Whether running the same command again can continue the transfer (a broken
    /// connection, a relay or disk hiccup, a file in the way): its resume state is worth
    /// keeping. Everything else (refusals, authentication failures, a burned code) is
    /// final, and the state holding keys is deleted.
    pub fn is_resumable(&self) -> bool {
        match self {
            ClientError::Transport(_)
            | ClientError::Connect { .. }
            | ClientError::Timeout(_)
            | ClientError::Io { .. }
            | ClientError::Exists(_)
            | ClientError::PasswordNeeded
            | ClientError::Usage(_) => true,
            ClientError::Relay(e) => matches!(
                e.code,
                veil_wire::ErrorCode::Storage
                    | veil_wire::ErrorCode::Timeout
                    | veil_wire::ErrorCode::LimitExceeded
                    | veil_wire::ErrorCode::Internal
            ),
            ClientError::Task(_) | ClientError::UnexpectedAnswer { .. } | ClientError::Frame(_) => false,
            _ => false,
        }
    }

    /// Wrap an IO error with its path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClientError::Io { op, path: path.into(), err: source }
    }
}

impl From<veil_quic::QuicError> for ClientError {
    fn from(e: veil_quic::QuicError) -> Self {
        match e {
            veil_quic::QuicError::Read(m) | veil_quic::QuicError::Write(m) => ClientError::Transport(m),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ClientError {
    fn from(e: tokio::task::JoinError) -> Self {
        ClientError::Task(e)
    }
}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        ClientError::Relay(e)
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ClientError>;
