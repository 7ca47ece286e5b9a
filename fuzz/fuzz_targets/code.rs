//! `Code::parse` on what a user types. Properties: no panic; a parsed code reveals a
//! string that parses to the same code; the nameplate is never 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_format::code::Code;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(c) = Code::parse(s) else { return };
    assert_ne!(c.nameplate(), 0);
    assert!(c.word_bits().is_finite());
    let _ = c.is_short();
    let again = Code::parse(&c.reveal()).expect("a revealed code parses");
    assert_eq!(again, c);
});
