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

    upload_on_a_download_on_b(t.path(), &a, &b, &f, "201-two-relays");

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
