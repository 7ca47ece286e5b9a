//! Typed errors of the format core. Every AEAD failure is one opaque variant.

/// Everything that can go wrong while building or reading veil's formats.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Authentication failed: wrong key, tampered, reordered, spliced or truncated data.
    #[error("decryption failed: the data was tampered with, truncated, or belongs to another transfer")]
    DecryptionFailed,
    /// The data ended before a complete structure could be read.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A declared length is larger than this implementation accepts.
    #[error("{what} too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// What was declared.
        what: &'static str,
        /// The declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A structure was written by a newer (or unknown) version of veil.
    #[error("unsupported {what} version {version}; upgrade veil")]
    UnsupportedVersion {
        /// What structure.
        what: &'static str,
        /// The version found.
        version: u8,
    },
    /// Bytes that cannot be a valid structure (bad magic, bad encoding, bad lengths).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What structure.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A chunk ended without its final message.
    #[error("chunk {index} is truncated: its final message is missing")]
    ChunkTruncated {
        /// Index of the chunk.
        index: u64,
    },
    /// Data arrived after a chunk's final message.
    #[error("data after the final message of chunk {index}")]
    TrailingData {
        /// Index of the chunk.
        index: u64,
    },
    /// A signature did not verify, or the signer is not the expected one.
    #[error("bad signature: the manifest was not signed by the claimed sender")]
    BadSignature,
    /// A file name in a manifest could escape the output folder or is not portable.
    #[error("unsafe file name {name:?}: {reason}")]
    UnsafeName {
        /// The name, with control characters escaped.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The one-time code could not be parsed.
    #[error("invalid code: {0}")]
    InvalidCode(&'static str),
    /// Key confirmation failed or the exchange was cut: someone typed the code wrong, or
    /// an attacker guessed.
    #[error(
        "wrong code or interference: the code is burned, use a new one (key confirmation failed: either side may have typed it wrong, or someone tried to guess it)"
    )]
    WrongCode,
    /// The ticket could not be parsed.
    #[error("invalid ticket: {0}")]
    InvalidTicket(&'static str),
    /// A public identity string could not be parsed.
    #[error("invalid identity: {0}")]
    InvalidIdentity(&'static str),
    /// The passphrase is too weak to protect a public identity.
    #[error("passphrase too weak: about {bits} bits of entropy ({hint}); use `veil identity new` to generate one")]
    WeakPassphrase {
        /// Estimated entropy in bits.
        bits: u32,
        /// What makes it weak.
        hint: &'static str,
    },
    /// A key bundle (X-Wing public key) does not belong to the identity it was meant for:
    /// substituted by a relay or an attacker, or the identity string is wrong.
    #[error(
        "the post-quantum key offered for identity {identity} does not belong to it: refused (someone may have substituted it; check the identity string with its owner)"
    )]
    KeyBundleMismatch {
        /// Fingerprint of the identity.
        identity: String,
    },
    /// The peer skipped the post-quantum step after the code exchange: an older veil, or
    /// someone in the middle stripping it.
    #[error(
        "the other side skipped the post-quantum key exchange (an older veil, or someone interfering): refused; both sides need a veil with post-quantum code mode, and the code is burned"
    )]
    PostQuantumMissing,
    /// The key-derivation parameters are not supported.
    #[error("unsupported key-derivation parameters: {0}")]
    BadKdfParams(&'static str),
}

/// Result alias for the format core.
pub type Result<T> = std::result::Result<T, FormatError>;

/// Escape control characters (and other non-printing characters) in peer-supplied text
/// before it reaches a terminal.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
