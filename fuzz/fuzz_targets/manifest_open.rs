//! `Manifest::open` on attacker-chosen stored bytes (the relay and the bucket are
//! adversaries): magic, version, envelope, postcard `SignedManifest`, signature, postcard
//! `Manifest`, validation. Input: one selector byte (which vector's key / transfer id /
//! recipient, mod 3) then the stored manifest. Seeds are the vectors, which open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_format::manifest::Manifest;
use veil_fuzz::manifest_case;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, sealed)) = data.split_first() else { return };
    let case = manifest_case(sel);
    if let Ok(vm) = Manifest::open(sealed, &case.key, &case.tid, case.recipient) {
        // Whatever opens is valid and belongs to this transfer.
        vm.manifest.validate().expect("an opened manifest validates");
        assert_eq!(vm.manifest.transfer_id, case.tid);
        let _ = vm.manifest.offsets();
        // Round trip of the inner body: decode -> encode -> decode is the same value.
        let body = postcard::to_allocvec(&vm.manifest).expect("encodes");
        let again: Manifest = postcard::from_bytes(&body).expect("decodes");
        assert_eq!(again, vm.manifest);
    }
});
