#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile input: crafted manifests with escaping names, a relay whose certificate changed.

mod common;
use common::*;
use ed25519_dalek::Signer;
use veil_format::identity::Identity;
use veil_format::kdf::{CTX_MANIFEST, derive};
use veil_format::manifest::{
    ContentKind, Entry, EntryKind, MANIFEST_MAGIC, MANIFEST_VERSION, Manifest, SignedManifest,
};
use veil_format::ticket::Ticket;

/// Seal a manifest without validating it, as a malicious sender would.
fn craft(m: &Manifest, key: &veil_format::ContentKey) -> Vec<u8> {
    let id = Identity::ephemeral();
    let body = postcard::to_allocvec(m).unwrap();
    let mut msg = b"veil manifest v1\0".to_vec();
    msg.extend_from_slice(&m.transfer_id.0);
    msg.extend_from_slice(&[0u8; 32]);
    msg.push(0); // no sender name
    msg.extend_from_slice(&body);
    let signature = id.signing_key().sign(&msg).to_bytes();
    let signed = SignedManifest { signer: id.public().ed25519, recipient: None, signature, body, sender_name: None };
    let plain = postcard::to_allocvec(&signed).unwrap();
    let mut ad = MANIFEST_MAGIC.to_vec();
    ad.push(MANIFEST_VERSION);
    ad.extend_from_slice(&m.transfer_id.0);
    let mut out = ad[..5].to_vec();
    out.extend(veil_format::chunk::envelope_seal(&derive(key, 0, CTX_MANIFEST), &ad, &plain));
    out
}

#[test]
fn crafted_manifest_with_escaping_names_writes_nothing_outside() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("innocent.txt");
    std::fs::write(&f, b"pwned").unwrap();
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--link", "--json"]);
    let (child, first, rest) = spawn_send(s);
    let ticket = first["ticket"].as_str().unwrap().to_string();
    assert_eq!(finish(child, rest).0, Some(0));
    let tk = Ticket::decode(&ticket).unwrap();
    let (tid, key) = (tk.transfer_id(), tk.key(None).unwrap());
    let manifest_path = relay.data.join("store/t").join(tid.to_hex()).join("manifest");
    assert!(manifest_path.exists());

    let outer = t.path().join("victim");
    let out = outer.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let escape = outer.join("escape.txt");
    for evil in [
        "../escape.txt",
        "/tmp/veil-escape-test.txt",
        "a/../../escape.txt",
        "C:\\escape.txt",
        "nul",
        "x\u{1b}]0;title\u{7}",
    ] {
        let m = Manifest {
            transfer_id: tid,
            content: ContentKind::Files,
            chunk_size: 1 << 20,
            total_size: 5,
            chunk_count: 1,
            entries: vec![Entry {
                path: evil.to_string(),
                kind: EntryKind::File,
                size: 5,
                mode: 0o644,
                hash: *blake3::hash(b"pwned").as_bytes(),
            }],
        };
        std::fs::write(&manifest_path, craft(&m, &key)).unwrap();
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", &ticket, "--yes", "--out"]).arg(&out);
        let ro = run(r);
        assert_eq!(ro.status.code(), Some(1), "{evil:?}: {}", text(&ro));
        let err = String::from_utf8_lossy(&ro.stderr);
        assert!(err.contains("unsafe file name"), "{evil:?}: {err}");
        assert!(!err.contains('\u{1b}'), "escape sequences are never printed raw");
        assert!(!escape.exists(), "{evil:?} escaped the output folder");
        assert!(!std::path::Path::new("/tmp/veil-escape-test.txt").exists());
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{evil:?}: nothing written");
    }
}

#[test]
fn changed_relay_certificate_is_a_loud_error() {
    let t = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(&t.path().join("relay1"));
    let listen = relay.quic.clone();
    let f = t.path().join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let home = t.path().join("hs");
    // Trust on first use: no fingerprint in the address.
    let send = |relay: &RelayProc| {
        let mut s = veil(&home, relay);
        s.env("VEIL_RELAY", &listen).args(["send", f.to_str().unwrap(), "--link", "--json"]);
        run(s)
    };
    let o = send(&relay);
    assert!(o.status.success(), "{}", text(&o));
    let known = std::fs::read_to_string(home.join("known_relays.json")).unwrap();
    let old_fp = relay.addr.split('#').nth(1).unwrap().to_string();
    assert!(known.contains(&old_fp), "{known}");
    relay.kill();

    let other = RelayProc::start_on(&t.path().join("relay2"), &listen, &[]);
    let new_fp = other.addr.split('#').nth(1).unwrap().to_string();
    assert_ne!(old_fp, new_fp);
    let o = send(&other);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("CERTIFICATE CHANGED"), "{err}");
    assert!(err.contains(&old_fp) && err.contains(&new_fp), "names both fingerprints: {err}");
}
