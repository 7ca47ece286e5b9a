//! `sealed::open_sealed`: a content key sealed to our identity, as it arrives from an
//! inbox (anyone may leave one). Fixed recipient: the seed of vectors/sealed.json, so the
//! seed corpus opens. Property: no panic; what opens carries a 32-byte key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use veil_format::SecretKey;
use veil_format::identity::{Identity, KdfParams};
use veil_format::sealed::open_sealed;
use veil_fuzz::{SEALED_RECIPIENT_SEED, hex};

fn me() -> &'static Identity {
    static ME: OnceLock<Identity> = OnceLock::new();
    ME.get_or_init(|| Identity::from_seed(SecretKey::from_bytes(hex(SEALED_RECIPIENT_SEED)), KdfParams::INSECURE_TEST))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = open_sealed(me(), data) {
        assert_eq!(u.key.expose().len(), 32);
        let _ = veil_format::identity::fingerprint_of(&u.sender);
    }
});
