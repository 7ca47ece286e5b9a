#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The relay on a real S3-compatible server (Garage 2.5.0 on 127.0.0.1, a fresh key and
//! bucket per test; `.ci/install-garage` builds it).

mod common;
use common::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use veil_store::Store;
use veil_store_s3::testing::Garage;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn s3_args(g: &Garage) -> Vec<String> {
    vec![
        "--s3-bucket".into(),
        g.bucket().to_string(),
        "--s3-endpoint".into(),
        g.endpoint(),
        "--s3-region".into(),
        g.region().to_string(),
        "--s3-path-style".into(),
    ]
}

fn s3_env(g: &Garage) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), g.access_key().to_string()),
        ("AWS_SECRET_ACCESS_KEY".into(), g.secret_key().to_string()),
    ]
}

fn relay_on(g: &Garage, data: &std::path::Path, extra: &[&str]) -> RelayProc {
    let mut args: Vec<String> = s3_args(g);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = s3_env(g);
    let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    RelayProc::start_env(data, "127.0.0.1:0", &args, &env)
}

/// Every object in the bucket, with its bytes.
fn bucket_objects(rt: &tokio::runtime::Runtime, g: &Garage) -> Vec<(String, Vec<u8>)> {
    rt.block_on(async {
        let s = veil_store_s3::S3Store::connect(g.s3_config("")).await.unwrap();
        let mut out = Vec::new();
        for k in s.list("").await.unwrap() {
            if let Some(b) = s.get(&k).await.unwrap() {
                out.push((k, b.to_vec()));
            }
        }
        out
    })
}

#[test]
fn code_and_link_transfers_through_s3_leave_only_ciphertext() {
    let rt = rt();
    let g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let relay = relay_on(&g, &t.path().join("relay"), &[]);
    let marker = b"S3-PLAINTEXT-MARKER-a81f";
    let name = "s3-distinctive-name-k2v.txt";
    let f = t.path().join(name);
    std::fs::write(&f, marker.repeat(50_000)).unwrap();
    let out = t.path().join("out");
    let (_, ro) = code_transfer(&relay, t.path(), &[f.to_str().unwrap()], "301-over-s3", &out);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(std::fs::read(out.join(name)).unwrap(), std::fs::read(&f).unwrap());

    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--link", "--json"]);
    let (child, first, rest) = spawn_send(s);
    let ticket = first["ticket"].as_str().unwrap().to_string();
    assert_eq!(finish(child, rest).0, Some(0));
    let out2 = t.path().join("out2");
    let mut r = veil(&t.path().join("hr2"), &relay);
    r.args(["receive", &ticket, "--yes", "--out"]).arg(&out2);
    let ro = run(r);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(std::fs::read(out2.join(name)).unwrap(), std::fs::read(&f).unwrap());

    let objects = bucket_objects(&rt, &g);
    assert!(
        objects.iter().any(|(k, _)| k.contains("/c/")),
        "chunks are in the bucket: {:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    for (k, b) in &objects {
        assert!(!b.windows(marker.len()).any(|w| w == marker), "plaintext in {k}");
        assert!(!b.windows(name.len()).any(|w| w == name.as_bytes()), "file name in {k}");
        assert!(!k.contains(name));
    }
}

#[test]
fn upload_through_relay_a_download_through_relay_b() {
    let rt = rt();
    let g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let a = relay_on(&g, &t.path().join("a"), &[]);
    let b = relay_on(&g, &t.path().join("b"), &[]);
    let f = t.path().join("ab.bin");
    let data = random_bytes(6 << 20);
    std::fs::write(&f, &data).unwrap();

    upload_on_a_download_on_b(t.path(), &a, &b, &f, "302-relay-a-b");
}

#[test]
fn s3_server_restart_mid_transfer_loses_nothing() {
    let rt = rt();
    let mut g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let relay = relay_on(&g, &t.path().join("relay"), &[]);
    let f = t.path().join("big.bin");
    let data = random_bytes(120 << 20);
    std::fs::write(&f, &data).unwrap();
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--code", "303-s3-restart", "--json"])
        .env("VEIL_RETRY_SECS", "90")
        .env("VEIL_PARALLEL", "2");
    let (child, _, mut rest) = spawn_send(s);
    let out = t.path().join("out");
    let mut r = veil(&t.path().join("hr"), &relay);
    r.args(["receive", "303-s3-restart", "--yes", "--out"])
        .arg(&out)
        .env("VEIL_RETRY_SECS", "90")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut receiver = r.spawn().unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(rest.read_line(&mut line).unwrap() > 0, "sender ended early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "progress" && v["done"].as_u64().unwrap() >= 8 << 20 {
            break;
        }
    }
    g.stop();
    std::thread::sleep(std::time::Duration::from_secs(3));
    rt.block_on(g.restart());
    let (sc, so, se) = finish(child, rest);
    assert_eq!(sc, Some(0), "{so}{se}");
    let st = receiver.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut receiver.stderr.take().unwrap(), &mut err).unwrap();
    assert!(st.success(), "{err}");
    assert!(std::fs::read(out.join("big.bin")).unwrap() == data, "byte-identical after the S3 restart");
}

#[test]
fn sweeper_removes_expired_transfers_from_the_bucket() {
    let rt = rt();
    let g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let relay = relay_on(&g, &t.path().join("relay"), &["--sweep-interval", "1s"]);
    let f = t.path().join("short.txt");
    std::fs::write(&f, b"short-lived").unwrap();
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--link", "--expire", "2s", "--json"]);
    let (child, _, rest) = spawn_send(s);
    assert_eq!(finish(child, rest).0, Some(0));
    assert!(bucket_objects(&rt, &g).iter().any(|(k, _)| k.starts_with("t/")));
    wait_until("the sweeper", std::time::Duration::from_secs(20), || {
        !bucket_objects(&rt, &g).iter().any(|(k, _)| k.starts_with("t/") || k.starts_with("e/"))
    });
}

#[test]
fn startup_errors_are_one_clear_line() {
    let rt = rt();
    let g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let start = |bucket: &str, endpoint: &str, secret: &str| {
        let o = Command::new(bin("veil-relay"))
            .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data"])
            .arg(t.path().join("relay"))
            .args(["--s3-bucket", bucket, "--s3-endpoint", endpoint, "--s3-region", g.region(), "--s3-path-style"])
            .env("AWS_ACCESS_KEY_ID", g.access_key())
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "one error line: {err}");
        lines[0].to_string()
    };
    let e = start("no-such-bucket", &g.endpoint(), g.secret_key());
    assert!(e.contains("does not exist"), "{e}");
    let e = start(g.bucket(), &g.endpoint(), &"0".repeat(64));
    assert!(e.contains("access denied") || e.contains("credentials"), "{e}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = start(g.bucket(), &format!("http://{closed}"), g.secret_key());
    assert!(e.contains("cannot reach"), "{e}");
}

#[test]
fn recorded_stream_on_s3_replays_and_leaves_only_ciphertext() {
    use std::io::Write;
    let rt = rt();
    let g = rt.block_on(Garage::start());
    let t = tempfile::tempdir().unwrap();
    let relay = relay_on(&g, &t.path().join("relay"), &[]);
    let marker = b"S3-STREAM-PLAINTEXT-7c2e";
    let data = marker.repeat(120_000);
    let mut p = veil(&t.path().join("hp"), &relay);
    p.args(["stream", "--record", "--code", "302-stream-on-s3", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = p.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ticket = loop {
        let v: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if v["event"] == "ticket" {
            break v["ticket"].as_str().unwrap().to_string();
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let st = child.wait().unwrap();
    assert!(st.success(), "publisher failed");

    let mut w = veil(&t.path().join("hw"), &relay);
    w.args(["watch", "--from-start", &ticket]);
    let o = w.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout == data, "replay differs ({} of {} bytes)", o.stdout.len(), data.len());

    let objects = bucket_objects(&rt, &g);
    assert!(objects.iter().filter(|(k, _)| k.contains("/c/")).count() >= 3, "segments are in the bucket");
    for (k, b) in &objects {
        assert!(!b.windows(marker.len()).any(|w| w == marker), "plaintext in {k}");
    }
}
