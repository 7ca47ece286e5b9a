#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end transfers: the real relay process, the real CLI, loopback only.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

#[test]
fn code_transfer_of_empty_small_and_nested_folder() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("tree/sub/deeper")).unwrap();
    std::fs::write(src.join("empty.txt"), b"").unwrap();
    std::fs::write(src.join("small.txt"), b"hello veil\n").unwrap();
    std::fs::write(src.join("tree/a.bin"), random_bytes(3 << 20)).unwrap();
    std::fs::write(src.join("tree/sub/b.txt"), b"bee").unwrap();
    std::fs::write(src.join("tree/sub/deeper/c.txt"), b"").unwrap();
    std::fs::create_dir_all(src.join("tree/emptydir")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("tree/sub/b.txt"), std::fs::Permissions::from_mode(0o750)).unwrap();
    }
    let out = t.path().join("out");
    for (i, name) in ["empty.txt", "small.txt", "tree"].iter().enumerate() {
        let p = src.join(name);
        let code = format!("{}-alpha-bravo", 10 + i);
        let (_, ro) = code_transfer(&relay, t.path(), &[p.to_str().unwrap()], &code, &out);
        assert!(ro.status.success(), "{}", text(&ro));
    }
    assert_eq!(std::fs::read(out.join("empty.txt")).unwrap(), b"");
    assert_eq!(std::fs::read(out.join("small.txt")).unwrap(), b"hello veil\n");
    for f in ["tree/a.bin", "tree/sub/b.txt", "tree/sub/deeper/c.txt"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    assert!(out.join("tree/emptydir").is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("tree/sub/b.txt")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750, "file mode restored");
    }
    // No temporary folders left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".veil"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn generated_code_several_files_text_and_stdin() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let a = t.path().join("a.txt");
    let b = t.path().join("b.txt");
    std::fs::write(&a, b"AAA").unwrap();
    std::fs::write(&b, b"BBB").unwrap();

    // Generated code, two files at once.
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    let (child, first, rest) = spawn_send(s);
    let code = first["code"].as_str().unwrap().to_string();
    let parts: Vec<&str> = code.split('-').collect();
    assert!(parts.len() >= 3 && parts[0].parse::<u32>().is_ok(), "code {code}");
    let out = t.path().join("out");
    let ro = run({
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", &code, "--yes", "--out"]).arg(&out);
        r
    });
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(finish(child, rest).0, Some(0));
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"AAA");
    assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), b"BBB");

    // Text goes to stdout.
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", "--text", "the quick brown fox", "--code", "31-text-only", "--json"]);
    let (child, _, rest) = spawn_send(s);
    let ro = run({
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", "31-text-only", "--yes"]);
        r
    });
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(String::from_utf8_lossy(&ro.stdout), "the quick brown fox");
    assert_eq!(finish(child, rest).0, Some(0));

    // Stdin in, stdout out.
    let data = random_bytes(1_500_000);
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", "-", "--code", "32-from-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = s.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let ro = run({
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", "32-from-stdin", "--yes"]);
        r
    });
    assert!(ro.status.success(), "{}", text(&ro));
    assert!(ro.stdout == data, "stdin content arrives byte-identical on stdout");
    assert!(child.wait().unwrap().success());
}

#[test]
fn large_file_200_mib_is_byte_identical() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("big.bin");
    let data = random_bytes(200 << 20);
    std::fs::write(&f, &data).unwrap();
    let out = t.path().join("out");
    let (_, ro) = code_transfer(&relay, t.path(), &[f.to_str().unwrap()], "40-large-file", &out);
    assert!(ro.status.success(), "{}", text(&ro));
    assert!(std::fs::read(out.join("big.bin")).unwrap() == data);
}

#[test]
fn wrong_code_fails_on_both_sides_and_burns_the_code() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("secret.txt");
    std::fs::write(&f, b"top secret").unwrap();
    let mut s = veil(&t.path().join("hs"), &relay);
    s.args(["send", f.to_str().unwrap(), "--code", "50-right-words", "--json"]);
    let (child, _, rest) = spawn_send(s);
    let out = t.path().join("out");
    let ro = run({
        let mut r = veil(&t.path().join("hr"), &relay);
        r.args(["receive", "50-wrong-words", "--yes", "--out"]).arg(&out);
        r
    });
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro));
    let err = String::from_utf8_lossy(&ro.stderr);
    assert!(err.contains("key confirmation failed"), "{err}");
    let (sc, _, se) = finish(child, rest);
    assert_eq!(sc, Some(1), "sender must fail too: {se}");
    assert!(se.contains("key confirmation failed"), "{se}");
    // The right code no longer works.
    let ro = run({
        let mut r = veil(&t.path().join("hr2"), &relay);
        r.args(["receive", "50-right-words", "--yes", "--out"]).arg(&out).env("VEIL_WAIT_SECS", "3");
        r
    });
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("burned"), "{}", text(&ro));
    assert!(!out.join("secret.txt").exists());
}

/// Upload by ticket (the sender finishes and exits), returning the ticket.
fn upload_link(relay: &RelayProc, home: &std::path::Path, path: &std::path::Path, extra: &[&str]) -> String {
    let mut s = veil(home, relay);
    s.args(["send", path.to_str().unwrap(), "--link", "--json"]).args(extra);
    let (child, first, rest) = spawn_send(s);
    assert_eq!(first["event"], "ticket");
    let (code, out, err) = finish(child, rest);
    assert_eq!(code, Some(0), "{out}{err}");
    first["ticket"].as_str().unwrap().to_string()
}

fn receive_ticket(
    relay: &RelayProc,
    home: &std::path::Path,
    ticket: &str,
    out: &std::path::Path,
) -> std::process::Output {
    let mut r = veil(home, relay);
    r.args(["receive", ticket, "--yes", "--out"]).arg(out).env("VEIL_WAIT_SECS", "5");
    run(r)
}

#[test]
fn tampered_truncated_reordered_deleted_chunks_fail_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("doc.bin");
    std::fs::write(&f, random_bytes(3 << 20 | 12345)).unwrap();
    type Damage = fn(&[std::path::PathBuf]);
    let cases: [(&str, Damage); 4] = [
        ("tampered", |c| {
            let mut b = std::fs::read(&c[1]).unwrap();
            b[5000] ^= 1;
            std::fs::write(&c[1], b).unwrap();
        }),
        ("truncated", |c| {
            let b = std::fs::read(&c[2]).unwrap();
            std::fs::write(&c[2], &b[..b.len() - 100]).unwrap();
        }),
        ("reordered", |c| {
            let a = std::fs::read(&c[0]).unwrap();
            let b = std::fs::read(&c[1]).unwrap();
            std::fs::write(&c[0], b).unwrap();
            std::fs::write(&c[1], a).unwrap();
        }),
        ("deleted", |c| std::fs::remove_file(&c[3]).unwrap()),
    ];
    for (name, damage) in cases {
        let store_before: std::collections::HashSet<_> = relay.chunk_files().into_iter().collect();
        let ticket = upload_link(&relay, &t.path().join("hs"), &f, &[]);
        let chunks: Vec<_> = relay.chunk_files().into_iter().filter(|p| !store_before.contains(p)).collect();
        assert_eq!(chunks.len(), 4, "{name}");
        damage(&chunks);
        let out = t.path().join(format!("out-{name}"));
        let ro = receive_ticket(&relay, &t.path().join(format!("hr-{name}")), &ticket, &out);
        assert_eq!(ro.status.code(), Some(1), "{name}: {}", text(&ro));
        let err = String::from_utf8_lossy(&ro.stderr).to_string();
        assert!(
            err.contains("decryption failed") || err.contains("truncated") || err.contains("missing"),
            "{name}: unclear error: {err}"
        );
        assert!(!out.join("doc.bin").exists(), "{name}: no final file may exist");
        // A final error leaves no partial download and no state (a ticket receive never
        // writes its key anywhere).
        assert_eq!(files_in(&out), Vec::<String>::new(), "{name}: left behind");
        assert_eq!(files_in(&t.path().join(format!("hr-{name}/receives"))), Vec::<String>::new());
    }
}

/// Names in a folder (none if it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn resume_state_is_gone_after_a_completed_transfer() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("doc.bin");
    std::fs::write(&f, random_bytes(1 << 20 | 77)).unwrap();
    let out = t.path().join("out");
    let (_, ro) = code_transfer(&relay, t.path(), &[f.to_str().unwrap()], "61-state-gone", &out);
    assert!(ro.status.success(), "{}", text(&ro));
    // The code receive kept K while it could resume; neither side keeps anything now.
    assert_eq!(files_in(&t.path().join("home-s/sends")), Vec::<String>::new());
    assert_eq!(files_in(&t.path().join("home-r/receives")), Vec::<String>::new());
}

#[test]
fn relay_store_holds_no_plaintext_or_names() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let marker = b"VEIL-PLAINTEXT-MARKER-7f3a9c";
    let name = "very-distinctive-filename-q8z.txt";
    let f = t.path().join(name);
    let mut data = Vec::new();
    for _ in 0..20_000 {
        data.extend_from_slice(marker);
    }
    std::fs::write(&f, &data).unwrap();
    let out = t.path().join("out");
    let (_, ro) = code_transfer(&relay, t.path(), &[f.to_str().unwrap()], "60-scan-store", &out);
    assert!(ro.status.success(), "{}", text(&ro));
    let files = relay.store_files();
    assert!(files.len() >= 3, "{files:?}");
    for p in files {
        let b = std::fs::read(&p).unwrap();
        assert!(!b.windows(marker.len()).any(|w| w == marker), "plaintext marker in {}", p.display());
        assert!(!b.windows(name.len()).any(|w| w == name.as_bytes()), "file name in {}", p.display());
        assert!(!p.to_string_lossy().contains(name));
    }
}

#[test]
fn existing_file_is_not_overwritten_unless_asked() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("note.txt");
    std::fs::write(&f, b"new content").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("note.txt"), b"precious").unwrap();
    let ticket = upload_link(&relay, &t.path().join("hs"), &f, &[]);
    let ro = receive_ticket(&relay, &t.path().join("hr"), &ticket, &out);
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("already exists"), "{}", text(&ro));
    assert_eq!(std::fs::read(out.join("note.txt")).unwrap(), b"precious");
    let mut r = veil(&t.path().join("hr"), &relay);
    r.args(["receive", &ticket, "--yes", "--overwrite", "--out"]).arg(&out);
    let ro = run(r);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(std::fs::read(out.join("note.txt")).unwrap(), b"new content");
}

#[test]
fn without_terminal_or_yes_receive_refuses() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let mut r = veil(&t.path().join("hr"), &relay);
    r.args(["receive", "5-some-code"]);
    let ro = run(r);
    assert_eq!(ro.status.code(), Some(2), "{}", text(&ro));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("--yes"));
}

#[test]
fn expiry_and_download_limit_give_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let f = t.path().join("once.txt");
    std::fs::write(&f, b"only once").unwrap();
    let ticket = upload_link(&relay, &t.path().join("hs"), &f, &["--max-downloads", "1"]);
    let ro = receive_ticket(&relay, &t.path().join("hr1"), &ticket, &t.path().join("o1"));
    assert!(ro.status.success(), "{}", text(&ro));
    let ro = receive_ticket(&relay, &t.path().join("hr2"), &ticket, &t.path().join("o2"));
    assert_eq!(ro.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("download limit"), "{}", text(&ro));

    // Long enough for the upload on a loaded machine, short enough to wait out.
    let ticket = upload_link(&relay, &t.path().join("hs"), &f, &["--expire", "3s"]);
    std::thread::sleep(std::time::Duration::from_millis(4100));
    let ro = receive_ticket(&relay, &t.path().join("hr3"), &ticket, &t.path().join("o3"));
    assert_eq!(ro.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ro.stderr).contains("expired"), "{}", text(&ro));
    assert!(!t.path().join("o3/once.txt").exists());
}
