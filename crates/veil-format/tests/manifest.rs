#![allow(clippy::unwrap_used, clippy::expect_used)]
use veil_format::identity::Identity;
use veil_format::manifest::*;
use veil_format::{ContentKey, FormatError, TransferId};

fn entry(path: &str, size: u64) -> Entry {
    Entry { path: path.into(), kind: EntryKind::File, size, mode: 0o644, hash: [1; 32] }
}

fn sample(tid: TransferId) -> Manifest {
    Manifest::new(
        tid,
        ContentKind::Files,
        1 << 20,
        vec![
            Entry { path: "dir".into(), kind: EntryKind::Dir, size: 0, mode: 0o755, hash: [0; 32] },
            entry("dir/a.txt", 10),
            entry("dir/sub/b.bin", 3 << 20),
        ],
    )
    .unwrap()
}

#[test]
fn seal_open_roundtrip_returns_signer() {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let id = Identity::ephemeral();
    let m = sample(tid);
    assert_eq!(m.chunk_count, 4);
    let sealed = m.seal(&key, id.signing_key(), None).unwrap();
    let v = Manifest::open(&sealed, &key, &tid, None).unwrap();
    assert_eq!(v.manifest, m);
    assert_eq!(v.signer, id.public().ed25519);
    assert_eq!(m.offsets(), vec![0, 0, 10]);
}

#[test]
fn tampering_wrong_key_wrong_transfer_rejected() {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let id = Identity::ephemeral();
    let sealed = sample(tid).seal(&key, id.signing_key(), None).unwrap();
    for i in [0, 4, 5, 30, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[i] ^= 0x40;
        assert!(Manifest::open(&t, &key, &tid, None).is_err(), "flip at {i}");
    }
    assert_eq!(Manifest::open(&sealed, &ContentKey::random(), &tid, None).unwrap_err(), FormatError::DecryptionFailed);
    assert!(Manifest::open(&sealed, &key, &TransferId::random(), None).is_err());
    assert!(Manifest::open(&sealed[..3], &key, &tid, None).is_err());
    let mut v = sealed.clone();
    v[4] = 9;
    assert_eq!(
        Manifest::open(&v, &key, &tid, None).unwrap_err(),
        FormatError::UnsupportedVersion { what: "manifest", version: 9 }
    );
}

#[test]
fn recipient_binding_and_wrong_signer() {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let id = Identity::ephemeral();
    let bob = Identity::ephemeral().public().x25519;
    let carol = Identity::ephemeral().public().x25519;
    let sealed = sample(tid).seal(&key, id.signing_key(), Some(bob)).unwrap();
    assert!(Manifest::open(&sealed, &key, &tid, Some(bob)).is_ok());
    assert_eq!(Manifest::open(&sealed, &key, &tid, Some(carol)).unwrap_err(), FormatError::BadSignature);
    assert_eq!(Manifest::open(&sealed, &key, &tid, None).unwrap_err(), FormatError::BadSignature);

    // A manifest re-signed by someone else does not claim the original signer.
    let mallory = Identity::ephemeral();
    let forged = sample(tid).seal(&key, mallory.signing_key(), None).unwrap();
    let v = Manifest::open(&forged, &key, &tid, None).unwrap();
    assert_ne!(v.signer, id.public().ed25519);
}

#[test]
fn inconsistent_manifests_rejected() {
    let tid = TransferId::random();
    let mut m = sample(tid);
    m.chunk_count = 3;
    assert!(m.validate().is_err());
    let mut m = sample(tid);
    m.total_size += 1;
    assert!(m.validate().is_err());
    let mut m = sample(tid);
    m.chunk_size = 0;
    assert!(m.validate().is_err());
    assert!(
        Manifest::new(tid, ContentKind::Files, 1024, vec![entry("a", 1), entry("A", 1)]).is_err(),
        "case-folded duplicate"
    );
    assert!(
        Manifest::new(tid, ContentKind::Files, 1024, vec![entry("a", 1), entry("a/b", 1)]).is_err(),
        "entry under a file"
    );
    assert!(Manifest::new(tid, ContentKind::Text, 1024, vec![entry("a", 1), entry("b", 1)]).is_err());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![entry("a", u64::MAX), entry("b", 2)]).is_err());
}

#[test]
fn name_validation() {
    for good in ["a", "a/b/c.txt", "ünïcödé/文件.txt", "...x", "a b", "x/.hidden"] {
        assert!(validate_name(good).is_ok(), "{good} should be accepted");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        ".",
        "./a",
        "a//b",
        "a/",
        "C:\\x",
        "c:x",
        "a\\b",
        "nul",
        "NUL.txt",
        "con",
        "con.d",
        "Com1.log",
        "lpt9",
        "aux/x",
        "a\0b",
        "a\nb",
        "\x1b[31mred",
        "trailing.",
        "space ",
        &"x".repeat(256),
    ] {
        let r = validate_name(bad);
        assert!(matches!(r, Err(FormatError::UnsafeName { .. })), "{bad:?} should be rejected, got {r:?}");
    }
    // The error text never carries raw control characters.
    let e = validate_name("\x1b]0;pwned\x07").unwrap_err().to_string();
    assert!(!e.contains('\x1b') && !e.contains('\x07'), "{e}");
}

#[test]
fn entry_below_a_file_refused_in_any_order() {
    let tid = TransferId::random();
    let dir = |p: &str| Entry { path: p.into(), kind: EntryKind::Dir, size: 0, mode: 0o755, hash: [0; 32] };
    for entries in [
        vec![entry("a", 1), entry("a/b", 1)],
        vec![entry("a/b", 1), entry("a", 1)],
        vec![entry("x/a/b/c", 1), entry("X/A", 1)],
        vec![dir("a/b"), entry("a", 1)],
    ] {
        let names: Vec<_> = entries.iter().map(|e| e.path.clone()).collect();
        let r = Manifest::new(tid, ContentKind::Files, 1024, entries);
        assert!(matches!(r, Err(FormatError::UnsafeName { .. })), "{names:?} must be refused, got {r:?}");
    }
    // Folders may hold entries whatever the order.
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![entry("a/b", 1), dir("a")]).is_ok());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![dir("a"), entry("a/b", 1)]).is_ok());
}

#[test]
fn bidi_controls_in_names_refused() {
    for c in
        ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}']
            .into_iter()
            .chain(['\u{200E}', '\u{200F}', '\u{061C}'])
    {
        let name = format!("invoice{c}fdp.exe");
        let r = validate_name(&name);
        assert!(matches!(r, Err(FormatError::UnsafeName { .. })), "U+{:04X} must be refused, got {r:?}", c as u32);
        assert!(!r.unwrap_err().to_string().contains(c), "the error text escapes U+{:04X}", c as u32);
        let r = Manifest::new(TransferId::random(), ContentKind::Files, 1024, vec![entry(&format!("d/{name}"), 1)]);
        assert!(r.is_err());
    }
}

#[test]
fn modes_above_0o777_refused() {
    let tid = TransferId::random();
    for mode in [0o4755, 0o2755, 0o1777, 0o100644, u32::MAX] {
        let e = Entry { path: "f".into(), kind: EntryKind::File, size: 1, mode, hash: [1; 32] };
        let r = Manifest::new(tid, ContentKind::Files, 1024, vec![e]);
        assert!(matches!(r, Err(FormatError::Malformed { .. })), "mode {mode:o} must be refused, got {r:?}");
    }
    let e = Entry { path: "f".into(), kind: EntryKind::File, size: 1, mode: 0o777, hash: [1; 32] };
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![e]).is_ok());
}
