//! Strict decoding: every value has exactly one accepted encoding.
//!
//! `postcard` accepts bytes after a value (with `from_bytes`) and overlong varints
//! (`0x80 0x00` for 0); `data-encoding` already refuses base32 with non-zero trailing bits
//! but we do not want to depend on a default for that; `ed25519-dalek` accepts
//! non-canonical point encodings and points with a small-order component. The helpers here
//! refuse all of these, the first two by re-encoding and comparing bytes, which is simple
//! and exact.

use crate::error::{FormatError, Result};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decode one postcard value that must fill `bytes` exactly and be in the encoder's own
/// (canonical) form: no trailing bytes, no overlong varints.
pub(crate) fn postcard_exact<T: Serialize + DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|_| FormatError::Malformed { what, reason: "bad encoding" })?;
    if !rest.is_empty() {
        return Err(FormatError::Malformed { what, reason: "trailing bytes after the encoding" });
    }
    let again = postcard::to_allocvec(&value).map_err(|_| FormatError::Malformed { what, reason: "bad encoding" })?;
    if again != bytes {
        return Err(FormatError::Malformed { what, reason: "non-canonical encoding (overlong varint)" });
    }
    Ok(value)
}

/// Decode lowercase unpadded base32 (the caller has already lowercased ASCII and removed
/// white space) and require the canonical form: decoding then encoding gives the input
/// back, so non-zero trailing bits and impossible lengths are refused.
pub(crate) fn base32_exact(body: &str) -> Option<Vec<u8>> {
    let bytes = crate::BASE32.decode(body.as_bytes()).ok()?;
    (crate::BASE32.encode(&bytes).to_ascii_lowercase() == body).then_some(bytes)
}

/// An Ed25519 public key that is a valid point in the strict sense of `FORMAT.md`: the
/// 32 bytes decompress (`VerifyingKey::from_bytes`), are the canonical encoding of that
/// point (re-compressing gives the same bytes), and the point lies in the prime-order
/// subgroup and is not the identity (no small-order or mixed-order keys).
pub(crate) fn ed25519_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let vk = VerifyingKey::from_bytes(bytes).ok()?;
    let point = vk.to_edwards();
    let valid = point.compress().to_bytes() == *bytes && point.is_torsion_free() && !point.is_small_order();
    valid.then_some(vk)
}

/// Parse an embedded word list (see `FORMAT.md`, "Word lists"): one word per line, each
/// line ended by `\n`; lines are trimmed, empty lines skipped, and entries containing `-`
/// dropped (the EFF lists' hyphenated words would be ambiguous in a `-` joined phrase).
pub(crate) fn word_list(text: &'static str) -> Vec<&'static str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('-')).collect()
}
