//! Parsing the allow-list file: pure functions over text, no IO.
//!
//! `fuzz/` compiles this file on its own (its `relay_allow_list` target includes it by
//! path, so fuzzing does not build QUIC and the S3 SDK): keep it free of `crate::` paths
//! and of dependencies beyond `blake2`, `data-encoding` and `ed25519-dalek`.

use std::collections::HashSet;

/// Parse a public identity string into its Ed25519 key: `veilid2` + base32 of
/// ed25519 || x25519 || X-Wing commitment || checksum, or the older `veilid1` + base32 of
/// ed25519 || x25519 || checksum. The relay keeps its own parser: it never links the
/// format crate.
pub fn parse_identity(s: &str) -> Result<[u8; 32], &'static str> {
    use blake2::Digest;
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    let (body, len, domain): (&str, usize, &[u8]) = if let Some(body) = s.strip_prefix("veilid2") {
        (body, 100, b"veil identity checksum v2\0")
    } else if let Some(body) = s.strip_prefix("veilid1") {
        (body, 68, b"veil identity checksum v1\0")
    } else {
        return Err("must start with veilid2 (or the older veilid1)");
    };
    let b = data_encoding::BASE32_NOPAD_NOCASE.decode(body.as_bytes()).map_err(|_| "not base32")?;
    if b.len() != len {
        return Err("wrong length");
    }
    let mut h = blake2::Blake2b256::new();
    h.update(domain);
    h.update(&b[..len - 4]);
    if h.finalize()[..4] != b[len - 4..] {
        return Err("checksum mismatch (typo?)");
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&b[..32]);
    ed25519_dalek::VerifyingKey::from_bytes(&k).map_err(|_| "not a valid Ed25519 key")?;
    Ok(k)
}

/// Parse the text of an allow-list: one public identity per line, `#` starts a comment,
/// blank lines are skipped. On error, the 1-based line number and the reason.
pub fn parse_allow_list(text: &str) -> Result<HashSet<[u8; 32]>, (usize, &'static str)> {
    let mut keys = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        keys.insert(parse_identity(line).map_err(|reason| (i + 1, reason))?);
    }
    Ok(keys)
}
