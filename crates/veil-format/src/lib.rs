//! # veil-format: the format and crypto core of veil
//!
//! Everything veil encrypts, signs or encodes is defined here, and nothing here does IO:
//! bytes in, bytes out. The relay never links this crate (it is blind by construction);
//! the client library and the CLI build on it. The exact byte layouts, every KDF context
//! and the security argument are in the [`spec`] module (`FORMAT.md`), with test vectors
//! under `crates/veil-format/vectors/`.
//!
//! ```
//! use veil_format::{ContentKey, TransferId, chunk};
//! let key = ContentKey::random();
//! let tid = TransferId::random();
//! let sealed = chunk::seal_chunk(&key, &tid, 0, true, b"hello");
//! assert_eq!(chunk::open_chunk(&key, &tid, 0, true, &sealed).unwrap(), b"hello");
//! // The same bytes under another index, transfer or key do not open.
//! assert!(chunk::open_chunk(&key, &tid, 1, true, &sealed).is_err());
//! ```
#![forbid(unsafe_code)]

pub mod chunk;
pub mod code;
pub mod error;
pub mod identity;
pub mod kdf;
pub mod manifest;
pub mod pq;
pub mod sealed;
pub mod secret;
mod strict;
pub mod ticket;

#[doc = include_str!("../FORMAT.md")]
pub mod spec {}

pub use error::{FormatError, Result, escape_text};
pub use secret::{ContentKey, SecretKey, TransferId};

/// Lowercase RFC 4648 base32 without padding: copy-paste safe, case-insensitive.
pub(crate) const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD_NOCASE;

/// Fill `buf` from the operating system's random number generator.
pub fn random_bytes(buf: &mut [u8]) {
    dryoc::rng::copy_randombytes(buf);
}

/// A uniform random number below `n` (rejection sampling; `n > 0`).
pub(crate) fn random_below(n: u32) -> u32 {
    let n = n.max(1);
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        random_bytes(&mut b);
        let v = u32::from_le_bytes(b);
        if v < zone {
            return v % n;
        }
    }
}

/// The capabilities every holder of a content key has. The relay stores only their
/// hashes; presenting one proves knowledge of `K` for that purpose alone. Writing and
/// deleting need the [`OwnerSecret`] instead, which only the sender has.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Fetch the manifest and chunks.
    pub download: SecretKey,
    /// Proof of a complete, authenticated download (counts against the limit).
    pub receipt: SecretKey,
}

impl Capabilities {
    /// Derive the capabilities of content key `key`.
    pub fn derive(key: &ContentKey) -> Capabilities {
        use kdf::{CTX_CAPABILITY, cap, derive};
        Capabilities {
            download: derive(key, cap::DOWNLOAD, CTX_CAPABILITY),
            receipt: derive(key, cap::RECEIPT, CTX_CAPABILITY),
        }
    }
}

/// The sender's own secret `O` for a transfer: 32 random bytes, never derived from `K`
/// (which every receiver holds) and never given to anyone. Its capability
/// ([`OwnerSecret::capability`]) uploads, resumes, completes and deletes.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerSecret(SecretKey);

impl OwnerSecret {
    /// A fresh random owner secret.
    pub fn random() -> Self {
        OwnerSecret(SecretKey::random())
    }

    /// The secret kept in a sender's resume state.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        OwnerSecret(SecretKey::from_bytes(bytes))
    }

    /// The raw secret (to keep in the sender's private resume state only).
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }

    /// The owner capability presented to the relay: `KDF(O, 2, "veilcap1")`.
    pub fn capability(&self) -> SecretKey {
        use kdf::{CTX_CAPABILITY, cap, derive};
        derive(&self.0, cap::OWNER, CTX_CAPABILITY)
    }
}

impl std::fmt::Debug for OwnerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerSecret(..)")
    }
}
