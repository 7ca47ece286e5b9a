//! The inner layers of a manifest, which `manifest_open` only reaches with a valid
//! signature: the fuzzer's bytes are the postcard `Manifest` body, which this target signs
//! (with the signer key of the vectors) and seals under the vector key, then opens with
//! `Manifest::open`. Also decodes the bytes directly as `Manifest` and `SignedManifest`.
//!
//! Input: one control byte (bit 0: recipient / identity mode, bits 1-2: sender name from
//! a small list with invalid names), then the body.
//!
//! Properties: no panic; `open` succeeds exactly when the body decodes strictly (no
//! trailing bytes, canonical varints: the bytes are exactly the encoding of the value),
//! validates and names this transfer; decode -> encode -> decode gives the same value.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use veil_format::chunk::envelope_seal_with;
use veil_format::kdf::{CTX_MANIFEST, derive};
use veil_format::manifest::{MANIFEST_MAGIC, MANIFEST_VERSION, Manifest, SignedManifest};
use veil_format::{ContentKey, TransferId};
use veil_fuzz::hex;

const NAMES: [Option<&str>; 4] = [None, Some("alice@example.org"), Some(""), Some("bad\u{1b}[2Jname")];

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else { return };

    // 1. The body alone.
    let direct = postcard::from_bytes::<Manifest>(body);
    if let Ok(m) = &direct {
        let enc = postcard::to_allocvec(m).expect("encodes");
        assert_eq!(&postcard::from_bytes::<Manifest>(&enc).expect("re-decodes"), m);
        if m.validate().is_ok() {
            let _ = m.offsets();
            // A valid manifest is what `Manifest::new` builds from its entries.
            let rebuilt = Manifest::new(m.transfer_id, m.content, m.chunk_size, m.entries.clone())
                .expect("a valid manifest rebuilds");
            assert_eq!(&rebuilt, m);
        }
    }

    // 2. The same bytes as a `SignedManifest`: encoding is stable.
    if let Ok(s) = postcard::from_bytes::<SignedManifest>(body) {
        let enc = postcard::to_allocvec(&s).expect("encodes");
        let again: SignedManifest = postcard::from_bytes(&enc).expect("re-decodes");
        assert_eq!(postcard::to_allocvec(&again).expect("encodes"), enc);
    }

    // 3. Signed and sealed as a sender would, then opened.
    let tid = match body.get(..16) {
        Some(t) => TransferId(t.try_into().expect("16 bytes")),
        None => TransferId([0; 16]),
    };
    let recipient =
        (ctl & 1 == 1).then(|| hex::<32>("132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472"));
    let sender_name = NAMES[usize::from((ctl >> 1) & 3)];
    let signer = SigningKey::from_bytes(&hex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"));
    // The signed message as FORMAT.md defines it.
    let mut msg = b"veil manifest v1\0".to_vec();
    msg.extend_from_slice(&tid.0);
    msg.extend_from_slice(&recipient.unwrap_or([0; 32]));
    msg.extend_from_slice(&postcard::to_allocvec(&sender_name).expect("encodes"));
    msg.extend_from_slice(body);
    let signed = SignedManifest {
        signer: signer.verifying_key().to_bytes(),
        recipient,
        signature: signer.sign(&msg).to_bytes(),
        body: body.to_vec(),
        sender_name: sender_name.map(str::to_string),
    };
    let plain = postcard::to_allocvec(&signed).expect("encodes");
    let key = ContentKey::from_bytes(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    let mut ad = MANIFEST_MAGIC.to_vec();
    ad.push(MANIFEST_VERSION);
    ad.extend_from_slice(&tid.0);
    let mut sealed = ad[..5].to_vec();
    sealed.extend_from_slice(&envelope_seal_with(&derive(&key, 0, CTX_MANIFEST), &ad, &plain, [7; 24]));
    let opened = Manifest::open(&sealed, &key, &tid, recipient);
    let name_ok = sender_name.is_none_or(|n| veil_format::manifest::validate_sender_name(n).is_ok());
    let canonical = direct.as_ref().is_ok_and(|m| postcard::to_allocvec(m).is_ok_and(|enc| enc == body));
    let expect_ok =
        name_ok && canonical && direct.as_ref().is_ok_and(|m| m.transfer_id == tid && m.validate().is_ok());
    assert_eq!(opened.is_ok(), expect_ok, "open disagrees with decode + validate: {opened:?}");
    if let (Ok(vm), Ok(m)) = (&opened, &direct) {
        assert_eq!(&vm.manifest, m);
        assert_eq!(vm.signer, signer.verifying_key().to_bytes());
        assert_eq!(vm.sender_name.as_deref(), sender_name);
    }
    // Someone else's recipient key never opens it.
    if recipient.is_some() {
        assert!(Manifest::open(&sealed, &key, &tid, Some([9; 32])).is_err());
    }
});
