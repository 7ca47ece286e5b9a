//! Public identity strings (`veilid1...`), pasted by people and read from contact lists:
//! `PublicIdentity::decode` in veil-format, and, differentially, the relay's own parser
//! (relay/src/allow_list.rs, which must agree: the relay never links veil-format).
//!
//! Properties: no panic; decode -> encode -> decode gives the same identity; both parsers
//! accept the same strings and yield the same Ed25519 key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_format::identity::PublicIdentity;

#[path = "../../relay/src/allow_list.rs"]
#[allow(dead_code)]
mod allow_list;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let ours = PublicIdentity::decode(s);
    let relay = allow_list::parse_identity(s);
    match (&ours, &relay) {
        (Ok(p), Ok(k)) => {
            assert_eq!(&p.ed25519, k);
            let again = PublicIdentity::decode(&p.encode()).expect("re-encoded identity decodes");
            assert_eq!(&again, p);
            let _ = p.fingerprint();
        }
        (Err(_), Err(_)) => {}
        (o, r) => panic!("veil-format and the relay disagree: {o:?} vs {r:?}"),
    }
});
