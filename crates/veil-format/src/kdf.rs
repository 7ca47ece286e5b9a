//! Key derivation: libsodium's `crypto_kdf` (BLAKE2b keyed with the main key, an 8-byte
//! context and a 64-bit subkey id). Every context used by veil is declared here, once.

use crate::secret::SecretKey;
use dryoc::classic::crypto_kdf::crypto_kdf_derive_from_key;

/// An 8-byte KDF context. Versioned: a new meaning gets a new context.
pub type Context = [u8; 8];

/// Per-chunk content keys: `K_i = KDF(K, i, CHUNK)`.
pub const CTX_CHUNK: &Context = b"veilchk1";
/// Manifest encryption key: `KDF(K, 0, MANIFEST)`.
pub const CTX_MANIFEST: &Context = b"veilman1";
/// Capabilities presented to the relay: subkey 1 download, 2 owner, 3 receipt.
pub const CTX_CAPABILITY: &Context = b"veilcap1";
/// Identity keys from the Argon2id seed: subkey 1 Ed25519, 2 X25519, 3 X-Wing.
pub const CTX_IDENTITY: &Context = b"veilid01";
/// PAKE session keys: subkey 1 sender confirmation, 2 receiver confirmation,
/// 3 key-delivery envelope (old, classical delivery; no longer sent), 4 verification
/// string, 5 the envelope of the receiver's ML-KEM-768 encapsulation key.
pub const CTX_PAKE: &Context = b"veilpak1";
/// Code mode after the hybrid step, from `Kh` (PAKE key + ML-KEM secret): subkey 1
/// key-delivery envelope.
pub const CTX_PAKE_HYBRID: &Context = b"veilpqh1";
/// Ticket password wrap: subkey 1 wrapping key (from the Argon2id output).
pub const CTX_TICKET: &Context = b"veiltkt1";
/// Sealing a content key to an identity: subkey 1 envelope key (from the X25519 hash).
pub const CTX_SEAL: &Context = b"veilsea1";
/// Sealing a content key to an identity with X-Wing: subkey 1 envelope key.
pub const CTX_SEAL_XWING: &Context = b"veilsea2";

/// Subkey ids within [`CTX_CAPABILITY`].
pub mod cap {
    /// Needed to fetch chunks and the manifest.
    pub const DOWNLOAD: u64 = 1;
    /// Needed to upload, resume, revoke and delete.
    pub const OWNER: u64 = 2;
    /// Sent by the receiver after the whole transfer authenticated.
    pub const RECEIPT: u64 = 3;
}

/// Derive a 32-byte subkey.
pub fn derive(main: &SecretKey, id: u64, ctx: &Context) -> SecretKey {
    let mut out = [0u8; 32];
    // Only fails for subkey lengths outside 16..=64; 32 is always valid.
    if crypto_kdf_derive_from_key(&mut out, id, ctx, main.expose()).is_err() {
        unreachable_kdf();
    }
    SecretKey::from_bytes(out)
}

#[cold]
fn unreachable_kdf() {
    // A 32-byte subkey is always inside libsodium's 16..=64 range.
    debug_assert!(false, "crypto_kdf rejected a 32-byte subkey");
}

/// BLAKE2b-256 (libsodium `crypto_generichash`, no key) of the concatenation of `parts`.
pub fn blake2b_256(parts: &[&[u8]]) -> [u8; 32] {
    let input: Vec<u8> = parts.concat();
    let mut out = [0u8; 32];
    // Only fails for output lengths outside 16..=64.
    if dryoc::classic::crypto_generichash::crypto_generichash(&mut out, &input, None).is_err() {
        unreachable_kdf();
    }
    out
}
