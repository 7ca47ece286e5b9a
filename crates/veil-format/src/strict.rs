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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What the libraries do on their own, which is why the helpers above exist.
    #[test]
    fn library_behaviour_the_spec_relies_on() {
        // postcard 1.x takes an overlong varint and leaves trailing bytes to the caller.
        assert_eq!(postcard::from_bytes::<u32>(&[0x80, 0x00]).unwrap(), 0);
        assert_eq!(postcard::from_bytes::<u32>(&[0x05, 0xff]).unwrap(), 5);
        assert!(postcard_exact::<u32>(&[0x80, 0x00], "test").is_err());
        assert!(postcard_exact::<u32>(&[0x05, 0xff], "test").is_err());
        assert_eq!(postcard_exact::<u32>(&[0x05], "test").unwrap(), 5);
        // data-encoding's BASE32_NOPAD_NOCASE already refuses non-zero trailing bits
        // ("ab": 10 bits, one byte and two trailing bits, the last one set).
        assert!(crate::BASE32.decode(b"aa").is_ok());
        assert!(crate::BASE32.decode(b"ab").is_err());
        assert!(base32_exact("ab").is_none());
        assert_eq!(base32_exact("aa").unwrap(), vec![0]);
        // ed25519-dalek's from_bytes accepts the identity point; we do not.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&identity).is_ok());
        assert!(ed25519_key(&identity).is_none());
    }
}
