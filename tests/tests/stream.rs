#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Live streams: `veil stream` and `veil watch` through the real relay.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

struct Publisher {
    child: Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Publisher {
    fn start(relay: &RelayProc, home: &std::path::Path, code: &str, viewers: u32) -> Publisher {
        Self::start_with(relay, home, code, viewers, &[])
    }

    fn start_with(relay: &RelayProc, home: &std::path::Path, code: &str, viewers: u32, extra: &[&str]) -> Publisher {
        let mut c = veil(home, relay);
        c.args(["stream", "--code", code, "--json", "--viewers", &viewers.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { break };
                if let Ok(v) = serde_json::from_str(&l) {
                    let _ = tx.send(v);
                }
            }
        });
        Publisher { child, events }
    }

    /// Wait until the relay reports `n` viewers attached.
    fn wait_viewers(&self, n: u32) {
        while self.wait_event("viewers")["count"] != n {}
    }

    fn wait_event(&self, kind: &str) -> serde_json::Value {
        loop {
            let v = self.events.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no {kind} event"));
            if v["event"] == kind {
                return v;
            }
        }
    }
}

fn watcher(relay: &RelayProc, home: &std::path::Path, code: &str) -> Command {
    watcher_from_start(relay, home, code, false)
}

fn watcher_from_start(relay: &RelayProc, home: &std::path::Path, what: &str, from_start: bool) -> Command {
    let mut c = veil(home, relay);
    c.arg("watch").args(if from_start { &["--from-start"][..] } else { &[] }).arg(what);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Read a child's stdout to the end on a thread.
fn collect(mut out: ChildStdout) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    })
}

fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    let _ = c.stderr.take().unwrap().read_to_string(&mut s);
    s
}

#[test]
fn fifty_mib_stream_is_byte_identical() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let mut p = Publisher::start(&relay, &t.path().join("hp"), "100-live-bytes", 1);
    p.wait_event("code");
    let mut w = watcher(&relay, &t.path().join("hw"), "100-live-bytes").spawn().unwrap();
    let got = collect(w.stdout.take().unwrap());
    let data = random_bytes(50 << 20);
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    assert!(p.child.wait().unwrap().success());
    let st = w.wait().unwrap();
    let err = stderr_of(&mut w);
    assert!(st.success(), "{err}");
    assert!(got.join().unwrap() == data, "viewer output differs from the input");
    assert!(err.contains("ended cleanly"), "{err}");
}

#[test]
fn three_viewers_one_joining_late_gets_a_suffix_from_a_segment_boundary() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let code = "101-three-viewers";
    let mut p = Publisher::start(&relay, &t.path().join("hp"), code, 3);
    p.wait_event("code");
    let mut early: Vec<Child> =
        (0..2).map(|i| watcher(&relay, &t.path().join(format!("hw{i}")), code).spawn().unwrap()).collect();
    let early_out: Vec<_> = early.iter_mut().map(|c| collect(c.stdout.take().unwrap())).collect();
    p.wait_event("key_exchanged");
    p.wait_event("key_exchanged");
    // Both early viewers attached before the first byte.
    p.wait_viewers(2);
    let blocks: Vec<Vec<u8>> = (0..3).map(|_| random_bytes(200_000)).collect();
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&blocks[0]).unwrap();
    stdin.flush().unwrap();
    // Let segment 0 close on time, then bring in the late viewer.
    std::thread::sleep(Duration::from_millis(1500));
    let mut late = watcher(&relay, &t.path().join("hw-late"), code).spawn().unwrap();
    let late_out = collect(late.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    std::thread::sleep(Duration::from_millis(500));
    for b in &blocks[1..] {
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1300));
    }
    drop(stdin);
    assert!(p.child.wait().unwrap().success());
    let all: Vec<u8> = blocks.concat();
    for (mut c, o) in early.into_iter().zip(early_out) {
        assert!(c.wait().unwrap().success(), "{}", stderr_of(&mut c));
        assert!(o.join().unwrap() == all);
    }
    assert!(late.wait().unwrap().success(), "{}", stderr_of(&mut late));
    let got = late_out.join().unwrap();
    let suffix_at_boundary = got == blocks[1..].concat() || got == blocks[2];
    assert!(suffix_at_boundary, "late viewer got {} bytes, not a suffix starting at a segment boundary", got.len());
}

#[test]
fn slow_viewer_does_not_slow_the_publisher_or_the_fast_viewer() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let code = "102-slow-viewer";
    let mut p = Publisher::start(&relay, &t.path().join("hp"), code, 2);
    p.wait_event("code");
    let mut fast = watcher(&relay, &t.path().join("hf"), code).spawn().unwrap();
    let fast_out = collect(fast.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    // The slow viewer's stdout is never read: it blocks as soon as the pipe is full.
    let mut slow = watcher(&relay, &t.path().join("hs"), code).spawn().unwrap();
    p.wait_event("key_exchanged");
    std::thread::sleep(Duration::from_millis(300));
    let data = random_bytes(100 << 20);
    let started = Instant::now();
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let st = p.child.wait().unwrap();
    let took = started.elapsed();
    assert!(st.success());
    assert!(fast.wait().unwrap().success(), "{}", stderr_of(&mut fast));
    assert!(fast_out.join().unwrap() == data, "the fast viewer got everything");
    // Liveness, not speed: the publisher finished while the slow viewer was stuck.
    assert!(took < Duration::from_secs(60), "publisher stalled for {took:?}");
    assert!(slow.try_wait().unwrap().is_none() || !slow.wait().unwrap().success());
    let _ = slow.kill();
    let _ = slow.wait();
    let metrics = http_get(&relay.http, "/metrics");
    assert!(metrics.contains("veil_relay_stream_viewers_skipped_total"), "{metrics}");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn publisher_killed_mid_stream_viewer_exits_nonzero() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let code = "103-killed-publisher";
    let mut p = Publisher::start(&relay, &t.path().join("hp"), code, 1);
    p.wait_event("code");
    let mut w = watcher(&relay, &t.path().join("hw"), code).spawn().unwrap();
    let got = collect(w.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(300_000)).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let st = w.wait().unwrap();
    let err = stderr_of(&mut w);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("cut"), "clear message: {err}");
    assert!(got.join().unwrap().len() <= 300_000);
}

#[test]
fn tampered_relayed_message_is_detected() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start_env(
        &t.path().join("relay"),
        "127.0.0.1:0",
        &[],
        &[("VEIL_RELAY_FAULT_FLIP_STREAM_MESSAGE", "3")],
    );
    let code = "104-tampered";
    let mut p = Publisher::start(&relay, &t.path().join("hp"), code, 1);
    p.wait_event("code");
    let mut w = watcher(&relay, &t.path().join("hw"), code).spawn().unwrap();
    let got = collect(w.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    let mut stdin = p.child.stdin.take().unwrap();
    for _ in 0..5 {
        stdin.write_all(&random_bytes(10_000)).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let _ = p.child.wait();
    let st = w.wait().unwrap();
    let err = stderr_of(&mut w);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("decryption failed"), "{err}");
    assert!(got.join().unwrap().len() <= 20_000, "nothing after the tampered message is output");
}

#[test]
fn real_media_through_veil_is_playable() {
    let Some(ffmpeg) = which("ffmpeg") else {
        panic!("ffmpeg is required for this test (Debian package `ffmpeg`; .ci/run installs it)");
    };
    let ffprobe = which("ffprobe").unwrap();
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let code = "105-test-pattern";
    let mut p = Publisher::start(&relay, &t.path().join("hp"), code, 1);
    p.wait_event("code");
    let out_path = t.path().join("watched.ts");
    let mut w =
        watcher(&relay, &t.path().join("hw"), code).stdout(std::fs::File::create(&out_path).unwrap()).spawn().unwrap();
    p.wait_event("key_exchanged");
    let stdin = p.child.stdin.take().unwrap();
    let ff = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=25",
            "-c:v",
            "mpeg2video",
            "-f",
            "mpegts",
            "-",
        ])
        .stdout(stdin)
        .status()
        .unwrap();
    assert!(ff.success());
    assert!(p.child.wait().unwrap().success());
    assert!(w.wait().unwrap().success(), "{}", stderr_of(&mut w));
    let probe = Command::new(ffprobe)
        .args(["-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "default=nw=1"])
        .arg(&out_path)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&probe.stdout);
    assert!(s.contains("codec_type=video"), "{s}");
    let dur: f64 = s.lines().find_map(|l| l.strip_prefix("duration=")).unwrap().parse().unwrap();
    assert!((2.5..=3.5).contains(&dur), "duration {dur}");
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

// --- Recorded streams -------------------------------------------------------------

fn replay(relay: &RelayProc, home: &std::path::Path, what: &str) -> (std::process::ExitStatus, Vec<u8>, String) {
    let mut w = watcher_from_start(relay, home, what, true).spawn().unwrap();
    let out = collect(w.stdout.take().unwrap());
    let st = w.wait().unwrap();
    let err = stderr_of(&mut w);
    (st, out.join().unwrap(), err)
}

#[test]
fn recorded_stream_replays_with_its_ticket_after_the_publisher_left() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let mut p = Publisher::start_with(&relay, &t.path().join("hp"), "110-recorded", 1, &["--record"]);
    let ticket = p.wait_event("ticket")["ticket"].as_str().unwrap().to_string();
    // Recording starts at once: nobody is watching.
    let data = random_bytes(5 << 20);
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let st = p.child.wait().unwrap();
    assert!(st.success(), "{}", stderr_of(&mut p.child));
    // Segments are chunks in the store (5 of 1 MiB, maybe a short one, and the final one).
    assert!(relay.chunk_files().len() >= 6, "{:?}", relay.chunk_files());

    let (st, got, err) = replay(&relay, &t.path().join("hw"), &ticket);
    assert!(st.success(), "{err}");
    assert!(got == data, "replay differs from the input ({} of {} bytes)", got.len(), data.len());
    // Twice: a replay does not use the recording up.
    let (st, got, err) = replay(&relay, &t.path().join("hw2"), &ticket);
    assert!(st.success() && got == data, "{err}");

    // It is a stream, not a file transfer: `veil receive` says so.
    let o = run({
        let mut c = veil(&t.path().join("hr"), &relay);
        c.args(["receive", "--yes", "--out"]).arg(t.path()).arg(&ticket);
        c
    });
    assert!(!o.status.success());
    assert!(text(&o).contains("veil watch --from-start"), "{}", text(&o));
}

#[test]
fn viewer_from_start_of_a_running_recorded_stream_gets_every_byte() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let code = "111-from-start";
    let mut p = Publisher::start_with(&relay, &t.path().join("hp"), code, 2, &["--record"]);
    p.wait_event("code");
    let blocks: Vec<Vec<u8>> = (0..6).map(|_| random_bytes(700_000)).collect();
    let mut stdin = p.child.stdin.take().unwrap();
    // Three blocks (two segments cut by size, one by time) before anyone watches.
    for b in &blocks[..3] {
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut w = watcher_from_start(&relay, &t.path().join("hw"), code, true).spawn().unwrap();
    let got = collect(w.stdout.take().unwrap());
    // A plain live viewer at the same time gets a suffix only.
    let mut live = watcher(&relay, &t.path().join("hl"), code).spawn().unwrap();
    let live_got = collect(live.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    p.wait_event("key_exchanged");
    // The rest arrives while the replay catches up and then follows live.
    for b in &blocks[3..] {
        std::thread::sleep(Duration::from_millis(400));
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    assert!(p.child.wait().unwrap().success(), "{}", stderr_of(&mut p.child));
    let st = w.wait().unwrap();
    assert!(st.success(), "{}", stderr_of(&mut w));
    let all = blocks.concat();
    let got = got.join().unwrap();
    assert!(got == all, "from-start viewer got {} of {} bytes (or different ones)", got.len(), all.len());
    assert!(live.wait().unwrap().success(), "{}", stderr_of(&mut live));
    let live_got = live_got.join().unwrap();
    assert!(live_got.len() < all.len() && all.ends_with(&live_got), "live viewer: {} bytes", live_got.len());
}

#[test]
fn replay_of_a_cut_recorded_stream_exits_nonzero_after_what_was_recorded() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let mut p = Publisher::start_with(&relay, &t.path().join("hp"), "112-cut-recording", 1, &["--record"]);
    let ticket = p.wait_event("ticket")["ticket"].as_str().unwrap().to_string();
    let data = random_bytes(2_500_000);
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    stdin.flush().unwrap();
    wait_until("two recorded segments", Duration::from_secs(20), || relay.chunk_files().len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    p.child.kill().unwrap();
    let _ = p.child.wait();

    let (st, got, err) = replay(&relay, &t.path().join("hw"), &ticket);
    assert!(!st.success(), "a cut recording replayed as complete");
    assert!(err.contains("cut"), "{err}");
    assert!(got.len() >= 2 << 20 && data.starts_with(&got), "replay gave {} bytes, not a prefix", got.len());
}

#[test]
fn expired_recording_is_swept_from_the_store() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start_on(&t.path().join("relay"), "127.0.0.1:0", &["--sweep-interval", "1s"]);
    let mut p = Publisher::start_with(&relay, &t.path().join("hp"), "113-expiring", 1, &["--record", "--expire", "2s"]);
    let ticket = p.wait_event("ticket")["ticket"].as_str().unwrap().to_string();
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(100_000)).unwrap();
    drop(stdin);
    assert!(p.child.wait().unwrap().success());
    let recording_files = || {
        let files = relay.store_files();
        files.into_iter().filter(|f| f.components().any(|c| c.as_os_str() == "t" || c.as_os_str() == "e")).count()
    };
    assert!(recording_files() > 0);
    wait_until("the sweeper", Duration::from_secs(20), || recording_files() == 0);
    let (st, got, err) = replay(&relay, &t.path().join("hw"), &ticket);
    assert!(!st.success() && got.is_empty(), "{err}");
    assert!(err.contains("expired") || err.contains("no such"), "{err}");
}

#[test]
fn a_recording_the_relay_refuses_fails_before_anything_is_read() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start_on(&t.path().join("relay"), "127.0.0.1:0", &["--max-expire", "1h"]);
    let mut c = veil(&t.path().join("hp"), &relay);
    c.args(["stream", "--record", "--expire", "2d"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = c.spawn().unwrap();
    // stdin stays open: the refusal must not wait for input.
    let _stdin = p.stdin.take().unwrap();
    let st = p.wait().unwrap();
    let err = stderr_of(&mut p);
    assert!(!st.success());
    assert!(err.contains("expiry must be between"), "{err}");
}

#[test]
fn from_start_viewer_recovers_a_tampered_live_message_from_the_recording() {
    let t = tempfile::tempdir().unwrap();
    // The relay flips a bit in the 3rd live message it forwards; the recording keeps what
    // the publisher sent.
    let relay = RelayProc::start_env(
        &t.path().join("relay"),
        "127.0.0.1:0",
        &[],
        &[("VEIL_RELAY_FAULT_FLIP_STREAM_MESSAGE", "3")],
    );
    let code = "114-tampered-recorded";
    let mut p = Publisher::start_with(&relay, &t.path().join("hp"), code, 1, &["--record"]);
    p.wait_event("code");
    let mut w = watcher_from_start(&relay, &t.path().join("hw"), code, true).spawn().unwrap();
    let got = collect(w.stdout.take().unwrap());
    p.wait_event("key_exchanged");
    p.wait_viewers(1);
    let blocks: Vec<Vec<u8>> = (0..5).map(|_| random_bytes(10_000)).collect();
    let mut stdin = p.child.stdin.take().unwrap();
    for b in &blocks {
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    assert!(p.child.wait().unwrap().success());
    let st = w.wait().unwrap();
    let err = stderr_of(&mut w);
    assert!(st.success(), "{err}");
    assert!(got.join().unwrap() == blocks.concat(), "every byte once, in order");
}
