//! Key bundles (an identity's X-Wing public key signed by its Ed25519 key), as a sender
//! fetches them from the relay (which anyone may fill with anything for its own inbox)
//! or reads them from a file given to `contacts add --bundle`: `KeyBundle::decode`, then
//! the checks a sender runs before sealing.
//!
//! Properties: no panic; what decodes re-encodes to exactly the input (one encoding per
//! bundle); its identity string round-trips; the bundle belongs to its own identity and
//! (unless it is that identity's) not to the fixed one of vectors/pq.json.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use veil_format::SecretKey;
use veil_format::identity::{Identity, KdfParams, PublicIdentity};
use veil_format::pq::KeyBundle;
use veil_fuzz::{SEALED_RECIPIENT_SEED, hex};

fn known() -> &'static PublicIdentity {
    static ME: OnceLock<PublicIdentity> = OnceLock::new();
    ME.get_or_init(|| {
        Identity::from_seed(SecretKey::from_bytes(hex(SEALED_RECIPIENT_SEED)), KdfParams::INSECURE_TEST).public()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = KeyBundle::decode(data) else { return };
    assert_eq!(bundle.encode(), data, "a bundle has one encoding");
    let id = bundle.identity();
    assert_eq!(PublicIdentity::decode(&id.encode()).expect("its identity string decodes"), id);
    bundle.check_for(&id).expect("a bundle belongs to its own identity");
    bundle.check_for(&id.without_commitment()).expect("and to that identity's old string");
    if id != *known() {
        assert!(bundle.check_for(known()).is_err(), "a bundle belongs to another identity");
    }
});
