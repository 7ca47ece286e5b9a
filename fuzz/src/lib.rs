//! Shared pieces of the fuzz targets: the fixed keys (taken from the test vectors, so the
//! seed corpus opens all the way and the fuzzer starts from deep inside each format) and
//! round-trip checks for wire frames.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use veil_format::{ContentKey, TransferId};

/// Decode fixed-length hex (vector constants only).
pub fn hex<const N: usize>(s: &str) -> [u8; N] {
    assert_eq!(s.len(), 2 * N, "hex constant of the wrong length");
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex constant");
    }
    out
}

/// One manifest case of crates/veil-format/vectors/manifest.json.
#[derive(Debug)]
pub struct ManifestCase {
    /// Content key.
    pub key: ContentKey,
    /// Transfer id.
    pub tid: TransferId,
    /// Recipient X25519 key (identity mode).
    pub recipient: Option<[u8; 32]>,
}

/// The three manifest vectors: files without recipient, text to a recipient, empty stdin.
/// A manifest target's first input byte picks one (mod 3).
pub fn manifest_case(selector: u8) -> ManifestCase {
    match selector % 3 {
        0 => ManifestCase {
            key: ContentKey::from_bytes(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")),
            tid: TransferId(hex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")),
            recipient: None,
        },
        1 => ManifestCase {
            key: ContentKey::from_bytes(hex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")),
            tid: TransferId(hex("505152535455565758595a5b5c5d5e5f")),
            recipient: Some(hex("132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472")),
        },
        _ => ManifestCase {
            key: ContentKey::from_bytes(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")),
            tid: TransferId(hex("606162636465666768696a6b6c6d6e6f")),
            recipient: None,
        },
    }
}

/// Content key and transfer id of the chunk vectors (crates/veil-format/vectors/chunk.json).
pub fn chunk_key() -> (ContentKey, TransferId) {
    (
        ContentKey::from_bytes(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")),
        TransferId(hex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")),
    )
}

/// Chunk indices of the chunk vectors; a chunk target's first input byte picks one.
pub const CHUNK_INDICES: [u64; 4] = [0, 1, 2, 72623859790382856];

/// Recipient seed of crates/veil-format/vectors/sealed.json.
pub const SEALED_RECIPIENT_SEED: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

/// Decode `data` as a whole frame (length prefix + body) and as a bare body; whatever
/// decodes must re-encode and decode to the same value.
pub fn check_frame<T>(data: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    match veil_wire::decode_frame::<T>(data) {
        Ok(Some((v, used))) => {
            let declared = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            assert_eq!(used, 4 + declared);
            assert!(used <= data.len());
            roundtrip(&v);
        }
        Ok(None) => {
            assert!(
                data.len() < 4 || data.len() < 4 + u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize
            );
        }
        Err(_) => {}
    }
    if let Ok(v) = veil_wire::decode_body::<T>(data) {
        roundtrip(&v);
    }
}

/// `encode -> decode` gives the same value, and the canonical encoding is stable.
pub fn roundtrip<T>(v: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let enc = veil_wire::encode_frame(v).expect("a decoded frame re-encodes");
    let (again, used) = veil_wire::decode_frame::<T>(&enc).expect("re-encoded frame decodes").expect("complete");
    assert_eq!(used, enc.len());
    assert_eq!(&again, v);
    assert_eq!(veil_wire::encode_frame(&again).expect("encodes"), enc);
}
