//! The relay's allow-list file (relay/src/allow_list.rs, compiled here by path): one
//! public identity per line, `#` comments. Properties: no panic; an error names a line
//! of the file; every identity the list yields is one of its lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../relay/src/allow_list.rs"]
#[allow(dead_code)]
mod allow_list;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match allow_list::parse_allow_list(s) {
        Ok(keys) => assert!(keys.len() <= s.lines().count()),
        Err((line, _)) => assert!(line >= 1 && line <= s.lines().count(), "line {line} out of range"),
    }
});
