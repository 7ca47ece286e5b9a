#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several relay instances sharing one store: any instance serves any transfer, and a
//! code opened on one instance is found from another (redirect to the mailbox owner).

mod common;
use common::*;

#[test]
fn sender_on_a_receiver_on_b_share_one_store() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("shared-store");
    let store_arg = store.to_str().unwrap();
    let a = RelayProc::start_on(&t.path().join("a"), "127.0.0.1:0", &["--store-dir", store_arg]);
    let b = RelayProc::start_on(&t.path().join("b"), "127.0.0.1:0", &["--store-dir", store_arg]);
    let f = t.path().join("shared.bin");
    let data = random_bytes(5 << 20);
    std::fs::write(&f, &data).unwrap();

    // Code mode: the sender opens the mailbox on A, the receiver asks B.
    let mut s = veil(&t.path().join("hs"), &a);
    s.args(["send", f.to_str().unwrap(), "--code", "201-two-relays", "--json"]);
    let (child, first, rest) = spawn_send(s);
    assert_eq!(first["event"], "code");
    let out = t.path().join("out");
    let mut r = veil(&t.path().join("hr"), &b);
    r.args(["receive", "201-two-relays", "--yes", "--out"]).arg(&out);
    let ro = run(r);
    let (sc, so, se) = finish(child, rest);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(sc, Some(0), "{so}{se}");
    assert!(std::fs::read(out.join("shared.bin")).unwrap() == data);

    // Link mode: uploaded through A, downloaded through B.
    let mut s = veil(&t.path().join("hs"), &a);
    s.args(["send", f.to_str().unwrap(), "--link", "--json"]);
    let (child, first, rest) = spawn_send(s);
    let ticket = first["ticket"].as_str().unwrap().to_string();
    assert_eq!(finish(child, rest).0, Some(0));
    let out2 = t.path().join("out2");
    let mut r = veil(&t.path().join("hr2"), &b);
    r.args(["receive", &ticket, "--yes", "--out"]).arg(&out2);
    let ro = run(r);
    assert!(ro.status.success(), "{}", text(&ro));
    assert!(std::fs::read(out2.join("shared.bin")).unwrap() == data);

    // A code burned on A is burned for B too.
    let mut s = veil(&t.path().join("hs"), &a);
    s.args(["send", f.to_str().unwrap(), "--code", "202-burn-me", "--json"]);
    let (child, _, rest) = spawn_send(s);
    let mut r = veil(&t.path().join("hr3"), &b);
    r.args(["receive", "202-wrong-guess", "--yes", "--out"]).arg(t.path().join("o3"));
    let ro = run(r);
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro));
    assert_eq!(finish(child, rest).0, Some(1));
    let mut r = veil(&t.path().join("hr4"), &b);
    r.args(["receive", "202-burn-me", "--yes", "--out"]).arg(t.path().join("o4")).env("VEIL_WAIT_SECS", "3");
    let ro = run(r);
    assert_eq!(ro.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("burned"), "{}", text(&ro));
}
