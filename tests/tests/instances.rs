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

#[test]
fn a_viewer_on_b_watches_a_stream_published_on_a() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("shared-store");
    let store_arg = store.to_str().unwrap();
    let a = RelayProc::start_on(&t.path().join("a"), "127.0.0.1:0", &["--store-dir", store_arg]);
    let b = RelayProc::start_on(&t.path().join("b"), "127.0.0.1:0", &["--store-dir", store_arg]);
    let mut p = veil(&t.path().join("hp"), &a);
    p.args(["stream", "--code", "203-stream-on-a"]).stdin(Stdio::piped()).stderr(Stdio::null());
    let mut publisher = p.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut w = veil(&t.path().join("hw"), &b);
    w.args(["watch", "203-stream-on-a"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut viewer = w.spawn().unwrap();
    let mut out = viewer.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let data = random_bytes(3 << 20);
    let mut stdin = publisher.stdin.take().unwrap();
    // The publisher starts with the viewer; if the viewer fails, it never would.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
        data
    });
    let st = viewer.wait().unwrap();
    let mut err = String::new();
    viewer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    if !st.success() {
        let _ = publisher.kill();
    }
    let _ = publisher.wait();
    assert!(st.success(), "{err}");
    let data = feeder.join().unwrap();
    assert!(reader.join().unwrap() == data);
}
