#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Resume: a relay killed mid-upload, a receiver killed mid-download.

mod common;
use common::*;
use std::io::BufRead;
use std::process::Stdio;

#[test]
fn relay_killed_mid_upload_then_both_commands_rerun() {
    let t = tempfile::tempdir().unwrap();
    let data_dir = t.path().join("relay");
    let mut relay = RelayProc::start(&data_dir);
    let listen = relay.quic.clone();
    let f = t.path().join("big.bin");
    let data = random_bytes(300 << 20);
    std::fs::write(&f, &data).unwrap();
    let out = t.path().join("out");
    let code = "77-resume-please";

    let send_cmd = |relay: &RelayProc| {
        let mut s = veil(&t.path().join("hs"), relay);
        s.args(["send", f.to_str().unwrap(), "--code", code, "--json"])
            .env("VEIL_PARALLEL", "2")
            .env("VEIL_RETRY_SECS", "1");
        s
    };
    let recv_cmd = |relay: &RelayProc| {
        let mut r = veil(&t.path().join("hr"), relay);
        r.args(["receive", code, "--yes", "--json", "--out"]).arg(&out).env("VEIL_RETRY_SECS", "1");
        r
    };

    let (sender, first, mut rest) = spawn_send(send_cmd(&relay));
    assert_eq!(first["event"], "code");
    let mut receiver = recv_cmd(&relay).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Kill the relay as soon as the upload has made progress.
    let mut line = String::new();
    loop {
        line.clear();
        assert!(rest.read_line(&mut line).unwrap() > 0, "sender ended before uploading");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "progress" && v["done"].as_u64().unwrap() >= 8 << 20 {
            break;
        }
    }
    relay.kill();
    let (sc, so, se) = finish(sender, rest);
    assert_ne!(sc, Some(0), "the sender cannot finish without its relay: {so}{se}");
    let rs = receiver.wait().unwrap();
    assert!(!rs.success(), "the receiver cannot finish without the relay");
    assert!(!out.join("big.bin").exists());

    // Same port, same data folder: the same relay comes back.
    let relay = RelayProc::start_on(&data_dir, &listen, &[]);
    let (sender, first, rest) = spawn_send(send_cmd(&relay));
    assert!(first["event"] == "resumed" || first["event"] == "code" || first["event"] == "progress", "{first}");
    let ro = run(recv_cmd(&relay));
    let (sc, so, se) = finish(sender, rest);
    assert_eq!(sc, Some(0), "{so}{se}");
    assert!(ro.status.success(), "{}", text(&ro));
    assert!(
        so.contains("\"resumed\"") || first["event"] == "resumed",
        "the sender resumed rather than starting over: {first} {so}"
    );
    assert!(std::fs::read(out.join("big.bin")).unwrap() == data, "byte-identical after resume");
}

#[test]
fn receiver_killed_mid_download_resumes() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("movie.bin");
    let data = random_bytes(120 << 20);
    std::fs::write(&f, &data).unwrap();
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--link", "--json"]);
    let (child, first, rest) = spawn_send(s);
    let ticket = first["ticket"].as_str().unwrap().to_string();
    assert_eq!(finish(child, rest).0, Some(0));

    let out = t.path().join("out");
    let recv = || {
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", &ticket, "--yes", "--json", "--out"]).arg(&out).env("VEIL_PARALLEL", "1");
        r
    };
    let mut child = recv().stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
        if v["event"] == "progress" && v["done"].as_u64().unwrap() >= 20 << 20 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("movie.bin").exists(), "no final file from a killed receiver");

    let ro = run(recv());
    assert!(ro.status.success(), "{}", text(&ro));
    let stdout = String::from_utf8_lossy(&ro.stdout);
    let resumed = stdout.lines().find(|l| l.contains("\"resumed\"")).expect("receiver resumed");
    let v: serde_json::Value = serde_json::from_str(resumed).unwrap();
    assert!(v["done"].as_u64().unwrap() >= 20 << 20, "{v}");
    assert!(std::fs::read(out.join("movie.bin")).unwrap() == data);
}
