//! Key rules shared by every backend.
//!
//! Keys look like `t/<transfer-id-hex>/c/00000012`: `/`-separated segments of
//! `[A-Za-z0-9._-]`. The rules keep a key a safe relative path on any file system and a
//! plain S3 object name.

use crate::StoreError;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The longest segment (the text between two `/`) accepted, in bytes, so that every
/// segment is a valid file name on common file systems.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks that `key` is a valid object key.
///
/// A valid key is non-empty, at most [`MAX_KEY_LEN`] bytes, uses only the characters
/// `[A-Za-z0-9._/-]`, has no leading or trailing `/`, no empty segment (`//`), no segment
/// longer than [`MAX_SEGMENT_LEN`] bytes, and no segment starting with `.` (so no `.` or
/// `..` segment either; dot names are reserved for backend temporary files).
///
/// # Errors
///
/// [`StoreError::InvalidKey`] naming the first rule the key breaks.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    check_key(key).map_err(|reason| invalid(key, reason))
}

/// Checks that `prefix` is a valid prefix for [`Store::list`](crate::Store::list) and
/// [`Store::delete_prefix`](crate::Store::delete_prefix).
///
/// A valid prefix is either empty (everything), or a valid key optionally followed by one
/// `/`. That admits exactly the prefixes some valid key can start with, such as `t/`,
/// `t/0a1b`, `t/0a1b/c/`; it rejects `../`, `/abs`, `a//` and dot segments.
///
/// # Errors
///
/// [`StoreError::InvalidKey`] naming the first rule the prefix breaks.
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_KEY_LEN {
        return Err(invalid(prefix, "longer than 512 bytes"));
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    check_key(body).map_err(|reason| invalid(prefix, reason))
}

/// Whether `name` is a valid single key segment (used to skip foreign files when listing).
pub(crate) fn is_valid_segment(name: &str) -> bool {
    check_segment(name).is_ok()
}

fn invalid(key: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidKey { key: key.to_owned(), reason }
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("longer than 512 bytes");
    }
    if key.starts_with('/') {
        return Err("starts with '/'");
    }
    if key.ends_with('/') {
        return Err("ends with '/'");
    }
    key.split('/').try_for_each(check_segment)
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("empty segment ('//')");
    }
    if !segment.bytes().all(is_key_byte) {
        return Err("characters other than A-Z a-z 0-9 . _ / -");
    }
    if segment.starts_with('.') {
        return Err("segment starts with '.' (reserved)");
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err("segment longer than 255 bytes");
    }
    Ok(())
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relay_keys() {
        for key in ["t/0a1b2c/c/00000012", "t/0a1b2c/manifest", "t/0a1b2c/dl/3", "a", "a.b/c..d/e-f_G9", "x."] {
            assert!(validate_key(key).is_ok(), "{key}");
        }
        let long = format!("{}/{}/b", "a".repeat(255), "a".repeat(254));
        assert_eq!(long.len(), MAX_KEY_LEN);
        assert!(validate_key(&long).is_ok());
    }

    #[test]
    fn rejects_bad_keys() {
        let too_long = "a/".repeat(256) + "a";
        let long_segment = "a".repeat(256);
        for key in [
            "",
            "/",
            "/abs",
            "a/",
            "a//b",
            ".",
            "..",
            "../x",
            "a/./b",
            "a/../b",
            ".hidden",
            "a/.tmp-1",
            "a\\b",
            "a\0b",
            "a b",
            "c:/x",
            "ä",
            too_long.as_str(),
            long_segment.as_str(),
        ] {
            assert!(matches!(validate_key(key), Err(StoreError::InvalidKey { .. })), "{key:?}");
        }
    }

    #[test]
    fn prefixes() {
        for prefix in ["", "t/", "t/0a", "t/0a/c/", "a"] {
            assert!(validate_prefix(prefix).is_ok(), "{prefix:?}");
        }
        for prefix in ["/", "/t", "../", "a//", "a/../", ".x/", "a\\b", "a/./"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix:?}");
        }
    }
}
