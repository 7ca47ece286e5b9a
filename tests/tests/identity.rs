#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Identity mode end to end: the real relay and the real CLI over loopback, identities
//! derived through the CLI with the real (V1, 256 MiB) parameters.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use veil_format::identity::PublicIdentity;

const PASS_A: &str = "cactus-oblong-morphing-shrank-tapioca-outnumber-sprinkled";
const PASS_B: &str = "Bob's very own passphrase, 2 words long? No: many more #42";

/// A CLI user: a state folder with an identity made by `veil identity new`.
struct User {
    home: PathBuf,
    identity: String,
}

fn veil_at(home: &Path, relay: &RelayProc) -> Command {
    veil(home, relay)
}

fn ok(o: &Output) -> &Output {
    assert!(o.status.success(), "{}", text(o));
    o
}

fn new_identity(dir: &Path, name: &str, handle: &str, pass: &str, relay: &RelayProc) -> User {
    let home = dir.join(format!("home-{name}"));
    let mut c = veil_at(&home, relay);
    c.args(["identity", "new", "--json"]).env("VEIL_PASSPHRASE", pass).env("VEIL_HANDLE", handle);
    let o = run(c);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let u = User { home, identity: v["identity"].as_str().unwrap().to_string() };
    // People can send to an identity once its owner published its key bundle.
    publish(&u, relay);
    u
}

/// `veil identity new` without publishing (the relay never hears of it).
fn new_unpublished_identity(dir: &Path, name: &str, handle: &str, pass: &str, relay: &RelayProc) -> User {
    let home = dir.join(format!("home-{name}"));
    let mut c = veil_at(&home, relay);
    c.args(["identity", "new", "--json"]).env("VEIL_PASSPHRASE", pass).env("VEIL_HANDLE", handle);
    let o = run(c);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    User { home, identity: v["identity"].as_str().unwrap().to_string() }
}

fn publish(u: &User, relay: &RelayProc) {
    let mut c = veil_at(&u.home, relay);
    c.args(["identity", "publish"]);
    ok(&run(c));
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn add_contact(u: &User, name: &str, id: &str, relay: &RelayProc) {
    let mut c = veil_at(&u.home, relay);
    c.args(["contacts", "add", name, id]);
    ok(&run(c));
}

fn send_to(u: &User, to: &str, path: &Path, relay: &RelayProc) -> Output {
    let mut c = veil_at(&u.home, relay);
    c.args(["send", "--to", to, "--json"]).arg(path);
    run(c)
}

fn receive_inbox(u: &User, out: &Path, relay: &RelayProc, extra: &[&str]) -> Output {
    let mut c = veil_at(&u.home, relay);
    c.args(["receive", "--yes", "--out"]).arg(out).args(extra);
    run(c)
}

fn inbox_files(relay: &RelayProc) -> Vec<PathBuf> {
    relay
        .store_files()
        .into_iter()
        .filter(|p| p.strip_prefix(relay.data.join("store")).is_ok_and(|r| r.starts_with("i")))
        .collect()
}

fn inbox_hex(identity: &str) -> String {
    hex::encode(veil_wire::inbox_id(&PublicIdentity::decode(identity).unwrap().ed25519))
}

#[test]
fn derivation_is_deterministic_and_matches_the_format_vector() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/veil-format/vectors/identity.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let case = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["in"]["kind"] == "identity" && c["in"]["kdf_version"] == 1)
        .unwrap();
    let (pass, handle) = (case["in"]["passphrase"].as_str().unwrap(), case["in"]["handle"].as_str().unwrap());
    let a = new_identity(t.path(), "one", handle, pass, &relay);
    let b = new_identity(t.path(), "two", handle, pass, &relay);
    assert_eq!(a.identity, case["out"]["identity_v2"].as_str().unwrap());
    assert!(a.identity.starts_with("veilid2"));
    // The old string of the same identity is the same person.
    let old = case["out"]["identity"].as_str().unwrap();
    assert_eq!(PublicIdentity::decode(old).unwrap(), PublicIdentity::decode(&a.identity).unwrap().without_commitment());
    assert_eq!(a.identity, b.identity, "same passphrase and handle, same identity");

    let mut c = veil_at(&a.home, &relay);
    c.args(["identity", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&ok(&run(c)).stdout).unwrap();
    assert_eq!(v["identity"], case["out"]["identity_v2"]);
    assert_eq!(v["fingerprint"], case["out"]["fingerprint"]);
    let mut c = veil_at(&a.home, &relay);
    c.args(["identity", "export"]);
    assert_eq!(stdout(ok(&run(c))).trim(), a.identity);

    // Another handle, another identity.
    let other = new_identity(t.path(), "three", "someone-else", pass, &relay);
    assert_ne!(other.identity, a.identity);

    // Contacts: add (and import), list, remove.
    let mut c = veil_at(&other.home, &relay);
    c.args(["identity", "import", "alice", &a.identity]);
    ok(&run(c));
    let mut c = veil_at(&other.home, &relay);
    c.args(["contacts", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&ok(&run(c)).stdout).unwrap();
    assert_eq!(v[0]["name"], "alice");
    assert_eq!(v[0]["fingerprint"], case["out"]["fingerprint"]);
    let mut c = veil_at(&other.home, &relay);
    c.args(["contacts", "add", "alice", &other.identity]);
    let o = run(c);
    assert!(!o.status.success() && stderr(&o).contains("already a contact"), "{}", text(&o));
    let mut c = veil_at(&other.home, &relay);
    c.args(["contacts", "remove", "alice"]);
    ok(&run(c));
    let mut c = veil_at(&other.home, &relay);
    c.args(["contacts", "list", "--json"]);
    assert_eq!(stdout(ok(&run(c))).trim(), "[]");
}

#[test]
fn send_to_an_offline_recipient_then_fetch_from_the_inbox() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    add_contact(&alice, "bob", &bob.identity, &relay);
    add_contact(&bob, "alice", &alice.identity, &relay);

    let src = t.path().join("report.bin");
    let data = random_bytes(3 << 20);
    std::fs::write(&src, &data).unwrap();
    // Bob is offline: the sender exits once the upload is complete.
    let o = send_to(&alice, "bob", &src, &relay);
    ok(&o);
    assert!(stdout(&o).contains("\"delivered\""), "{}", text(&o));
    // A pasted identity string works too.
    let note = t.path().join("note.txt");
    std::fs::write(&note, b"second one").unwrap();
    ok(&send_to(&alice, &bob.identity, &note, &relay));
    assert_eq!(inbox_files(&relay).len(), 2);

    let mut c = veil_at(&bob.home, &relay);
    c.args(["inbox"]);
    let o = run(c);
    let listing = stdout(ok(&o));
    assert!(listing.contains("report.bin") && listing.contains("note.txt"), "{listing}");
    assert!(listing.contains("alice (verified contact)"), "{listing}");

    let out = t.path().join("out");
    let o = receive_inbox(&bob, &out, &relay, &[]);
    ok(&o);
    assert!(stderr(&o).contains("From: alice (verified contact)"), "{}", text(&o));
    assert!(std::fs::read(out.join("report.bin")).unwrap() == data, "byte-identical");
    assert_eq!(std::fs::read(out.join("note.txt")).unwrap(), b"second one");
    assert!(inbox_files(&relay).is_empty(), "inbox entries deleted after success");
    let mut c = veil_at(&bob.home, &relay);
    c.args(["receive", "--yes"]);
    assert!(stderr(ok(&run(c))).contains("inbox is empty"));

    // Without an identity there is no inbox.
    let mut c = veil_at(&t.path().join("nobody"), &relay);
    c.args(["inbox"]);
    let o = run(c);
    assert!(!o.status.success() && stderr(&o).contains("veil identity new"), "{}", text(&o));
}

#[test]
fn tampered_sealed_key_and_wrong_recipient_are_rejected_and_changed_key_warns() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    let carol = new_identity(t.path(), "carol", "carol", "carol-uses-a-long-and-unusual-passphrase-7", &relay);
    add_contact(&bob, "alice", &alice.identity, &relay);
    let src = t.path().join("secret.txt");
    std::fs::write(&src, b"for bob only").unwrap();

    // Tampered: flip the last byte of the stored sealed key.
    ok(&send_to(&alice, &bob.identity, &src, &relay));
    let f = inbox_files(&relay).pop().unwrap();
    let mut b = std::fs::read(&f).unwrap();
    *b.last_mut().unwrap() ^= 1;
    std::fs::write(&f, &b).unwrap();
    let out = t.path().join("out-tamper");
    let o = receive_inbox(&bob, &out, &relay, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("rejected") && stderr(&o).contains("decryption failed"), "{}", text(&o));
    assert!(!out.join("secret.txt").exists());
    std::fs::remove_file(&f).unwrap();

    // Wrong recipient: a sealed key for Bob moved into Carol's inbox does not open for her.
    ok(&send_to(&alice, &bob.identity, &src, &relay));
    let f = inbox_files(&relay).pop().unwrap();
    let carol_dir = relay.data.join("store/i").join(inbox_hex(&carol.identity));
    std::fs::create_dir_all(&carol_dir).unwrap();
    std::fs::rename(&f, carol_dir.join(f.file_name().unwrap())).unwrap();
    let out = t.path().join("out-carol");
    let o = receive_inbox(&carol, &out, &relay, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("rejected"), "{}", text(&o));
    assert!(!out.join("secret.txt").exists());

    // Changed key: Mallory calls herself "alice" (Bob's contact) with another key.
    let mallory = new_identity(t.path(), "mallory", "alice", "not-alices-passphrase-but-long-enough-9", &relay);
    ok(&send_to(&mallory, &bob.identity, &src, &relay));
    let out = t.path().join("out-mallory");
    let o = receive_inbox(&bob, &out, &relay, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("WARNING: THE IDENTITY OF YOUR CONTACT alice HAS CHANGED"), "{err}");
    assert!(err.contains("--accept-changed-key"), "{err}");
    assert!(!out.join("secret.txt").exists(), "--yes alone does not accept a changed key");
    assert_eq!(
        inbox_files(&relay)
            .iter()
            .filter(|p| p.starts_with(relay.data.join("store/i").join(inbox_hex(&bob.identity))))
            .count(),
        1
    );
    let o = receive_inbox(&bob, &out, &relay, &["--accept-changed-key"]);
    ok(&o);
    assert_eq!(std::fs::read(out.join("secret.txt")).unwrap(), b"for bob only");
}

/// An open relay never learns who sends or receives: a client with an identity proves
/// it only to open its own inbox (the relay asks with `AuthRequired`).
#[test]
fn an_identity_is_proven_only_where_the_relay_needs_it() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start_env(&t.path().join("relay"), "127.0.0.1:0", &[], &[("VEIL_LOG", "veil_relay=debug")]);
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    // (Publishing their key bundles, as new_identity does, was each one's own sign-in.)
    let before = std::fs::read_to_string(&relay.stderr_path).unwrap().matches("connection authenticated").count();
    let authenticated =
        || std::fs::read_to_string(&relay.stderr_path).unwrap().matches("connection authenticated").count() - before;
    let f = t.path().join("note.txt");
    std::fs::write(&f, b"who sent this?").unwrap();

    // Link mode and sending to an identity: no sign-in.
    let mut c = veil_at(&alice.home, &relay);
    c.args(["send", "--link", "--json"]).arg(&f);
    let first = stdout(ok(&run(c))).lines().next().unwrap().to_string();
    let ticket = serde_json::from_str::<serde_json::Value>(&first).unwrap()["ticket"].as_str().unwrap().to_string();
    ok(&send_to(&alice, &bob.identity, &f, &relay));
    // Receiving a ticket: no sign-in either.
    let mut c = veil_at(&bob.home, &relay);
    c.args(["receive", &ticket, "--yes", "--out"]).arg(t.path().join("by-ticket"));
    ok(&run(c));
    assert_eq!(authenticated(), 0, "an open relay was told who sends and receives");

    // Bob's own inbox needs his identity: proven on demand, once per connection.
    let out = t.path().join("from-inbox");
    ok(&receive_inbox(&bob, &out, &relay, &[]));
    assert!(std::fs::read(out.join("note.txt")).unwrap() == b"who sent this?");
    assert!(authenticated() >= 1);
}

fn write_allow(path: &Path, ids: &[&str]) {
    let mut s = String::from("# who may upload\n\n");
    for id in ids {
        s.push_str(&format!("{id}   # a person\n"));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn allow_list_is_enforced_and_reloaded_without_restart() {
    let t = tempfile::tempdir().unwrap();
    let allow = t.path().join("allow.txt");
    std::fs::write(&allow, "# nobody yet\n").unwrap();
    let relay = RelayProc::start_on(&t.path().join("relay"), "127.0.0.1:0", &["--allow", allow.to_str().unwrap()]);
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    write_allow(&allow, &[&alice.identity]);
    std::thread::sleep(Duration::from_millis(1200));
    let src = t.path().join("f.txt");
    std::fs::write(&src, b"allowed?").unwrap();
    let link = |home: &Path| {
        let mut c = veil_at(home, &relay);
        c.args(["send", "--link", "--json"]).arg(&src);
        run(c)
    };
    ok(&link(&alice.home));
    // Identity mode is an upload too; Bob may still receive.
    ok(&send_to(&alice, &bob.identity, &src, &relay));
    ok(&receive_inbox(&bob, &t.path().join("out"), &relay, &[]));

    let o = link(&bob.home);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("this relay only accepts uploads from identities on its allow-list"), "{}", text(&o));
    let o = link(&t.path().join("anonymous"));
    assert!(stderr(&o).contains("allow-list") && stderr(&o).contains("veil identity new"), "{}", text(&o));
    let o = send_to(&bob, &alice.identity, &src, &relay);
    assert!(stderr(&o).contains("allow-list"), "{}", text(&o));

    // Edit the file: Bob is in, Alice is out, no restart.
    write_allow(&allow, &[&bob.identity]);
    std::thread::sleep(Duration::from_millis(1200));
    ok(&link(&bob.home));
    assert!(stderr(&link(&alice.home)).contains("allow-list"));
}

#[test]
fn quotas_refuse_clearly_and_lose_nothing() {
    let t = tempfile::tempdir().unwrap();
    // Per-identity quotas and no anonymous limit: uploads need an identity, which the
    // client proves when the relay asks for it.
    let relay = RelayProc::start_on(
        &t.path().join("relay"),
        "127.0.0.1:0",
        &["--quota-bytes", "3000000", "--quota-transfers-per-hour", "2"],
    );
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let src = t.path().join("two-mb.bin");
    let data = random_bytes(2_000_000);
    std::fs::write(&src, &data).unwrap();
    let link = |home: &Path, f: &Path| {
        let mut c = veil_at(home, &relay);
        c.args(["send", "--link", "--json"]).arg(f);
        run(c)
    };
    let first = link(&alice.home, &src);
    ok(&first);
    let ticket = serde_json::from_str::<serde_json::Value>(stdout(&first).lines().next().unwrap()).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let o = link(&alice.home, &src);
    assert!(!o.status.success() && stderr(&o).contains("--quota-bytes"), "{}", text(&o));
    let small = t.path().join("small.txt");
    std::fs::write(&small, b"tiny").unwrap();
    ok(&link(&alice.home, &small));
    let o = link(&alice.home, &small);
    assert!(!o.status.success() && stderr(&o).contains("--quota-transfers-per-hour"), "{}", text(&o));

    // Anonymous senders could bypass those quotas: refused, with the way out.
    let anon = t.path().join("anon");
    let o = link(&anon, &small);
    assert!(!o.status.success() && stderr(&o).contains("veil identity new"), "{}", text(&o));

    // With an anonymous limit, senders stay anonymous (even with an identity: the relay
    // did not ask) and are limited per address.
    let open = RelayProc::start_on(&t.path().join("relay2"), "127.0.0.1:0", &["--anon-transfers-per-hour", "1"]);
    let link2 = |home: &Path, f: &Path| {
        let mut c = veil_at(home, &open);
        c.args(["send", "--link", "--json"]).arg(f);
        run(c)
    };
    ok(&link2(&alice.home, &small));
    let o = link2(&anon, &small);
    assert!(!o.status.success() && stderr(&o).contains("--anon-transfers-per-hour"), "{}", text(&o));

    // What was stored is intact.
    let out = t.path().join("out");
    let mut c = veil_at(&t.path().join("receiver"), &relay);
    c.args(["receive", &ticket, "--yes", "--out"]).arg(&out);
    ok(&run(c));
    assert!(std::fs::read(out.join("two-mb.bin")).unwrap() == data);
}

/// Every `/proc/<pid>/cmdline` of a running `veil` or `veil-relay` containing `marker`.
fn scan_cmdlines(marker: &str, seen: &mut usize) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return hits };
    for e in rd.flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let exe = cmd.split(' ').next().unwrap_or("");
        if exe.ends_with("/veil") || exe.ends_with("/veil-relay") {
            *seen += 1;
            if cmd.contains(marker) {
                hits.push(cmd);
            }
        }
    }
    hits
}

#[test]
fn passphrase_never_appears_in_ps_logs_or_errors() {
    const MARKER: &str = "Zq7-MARKER-passphrase-8f3e1c-Unique!";
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut hits, mut seen) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                hits.extend(scan_cmdlines(MARKER, &mut seen));
                std::thread::sleep(Duration::from_millis(5));
            }
            (hits, seen)
        })
    };
    let mut outputs = Vec::new();
    let alice = {
        let home = t.path().join("home-alice");
        let mut c = veil_at(&home, &relay);
        c.args(["identity", "new", "--handle", "alice"]).env("VEIL_PASSPHRASE", MARKER).env("VEIL_LOG", "trace");
        let o = run(c);
        ok(&o);
        outputs.push(text(&o));
        let mut c = veil_at(&home, &relay);
        c.args(["identity", "export"]);
        User { home, identity: stdout(&run(c)).trim().to_string() }
    };
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    let src = t.path().join("f.txt");
    std::fs::write(&src, b"hello").unwrap();
    // Every command with the passphrase in its environment, at full logging.
    let mut c = veil_at(&alice.home, &relay);
    c.args(["send", "--to", &bob.identity]).arg(&src).env("VEIL_PASSPHRASE", MARKER).env("VEIL_LOG", "trace");
    let o = run(c);
    ok(&o);
    outputs.push(text(&o));
    let mut c = veil_at(&bob.home, &relay);
    c.args(["receive", "--yes", "--out"])
        .arg(t.path().join("out"))
        .env("VEIL_PASSPHRASE", MARKER)
        .env("VEIL_LOG", "trace");
    let o = run(c);
    ok(&o);
    outputs.push(text(&o));
    // A refused weak passphrase explains the guessing cost without echoing it.
    let weak = "Marker-weak1";
    let mut c = veil_at(&t.path().join("home-weak"), &relay);
    c.args(["identity", "new", "--handle", "w"]).env("VEIL_PASSPHRASE", weak).stdout(Stdio::piped());
    let o = run(c);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("guesses a second") && err.lines().count() == 1, "{err}");
    assert!(!err.contains(weak), "{err}");

    stop.store(true, Ordering::Relaxed);
    let (hits, seen) = scanner.join().unwrap();
    assert!(seen > 0, "the scanner saw the veil processes");
    assert!(hits.is_empty(), "passphrase in a command line: {hits:?}");
    for o in &outputs {
        assert!(!o.contains(MARKER), "passphrase in CLI output: {o}");
    }
    let log = std::fs::read_to_string(&relay.stderr_path).unwrap();
    assert!(!log.contains(MARKER));
    for f in relay.store_files().into_iter().chain(std::fs::read_dir(&alice.home).unwrap().flatten().map(|e| e.path()))
    {
        if f.is_file() {
            assert!(!String::from_utf8_lossy(&std::fs::read(&f).unwrap()).contains(MARKER), "{}", f.display());
        }
    }
    assert!(!alice.identity.is_empty());
}

fn bundle_path(relay: &RelayProc, identity: &str) -> PathBuf {
    relay.data.join("store/kb").join(inbox_hex(identity))
}

/// Post-quantum identity mode: a sender needs the recipient's published key bundle,
/// checks it against the identity string, and refuses a missing or substituted one
/// loudly; an old `veilid1` contact is pinned to the first bundle that verifies.
#[test]
fn send_to_uses_the_published_bundle_and_refuses_a_substituted_one() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_unpublished_identity(t.path(), "bob", "bob", PASS_B, &relay);
    let mallory = new_identity(t.path(), "mallory", "mallory", "mallory-has-a-long-passphrase-too-42", &relay);
    let src = t.path().join("secret.txt");
    std::fs::write(&src, b"for bob only").unwrap();

    // Bob never talked to the relay: no bundle, no hybrid, no send (never X25519 alone).
    let o = send_to(&alice, &bob.identity, &src, &relay);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("has not published a post-quantum key"), "{}", text(&o));
    assert!(inbox_files(&relay).is_empty());

    // `veil inbox` publishes it (Bob talks to the relay as himself).
    let mut c = veil_at(&bob.home, &relay);
    c.args(["inbox"]);
    ok(&run(c));
    let good = std::fs::read(bundle_path(&relay, &bob.identity)).unwrap();
    assert_eq!(good.len(), 1349);
    assert_eq!(&good[..5], b"VKEY\x01");
    ok(&send_to(&alice, &bob.identity, &src, &relay));
    let sealed = std::fs::read(inbox_files(&relay).pop().unwrap()).unwrap();
    assert!(sealed.windows(5).any(|w| w == b"VSEL\x02"), "sealed with X-Wing (version 2)");
    let out = t.path().join("out");
    ok(&receive_inbox(&bob, &out, &relay, &[]));
    assert_eq!(std::fs::read(out.join("secret.txt")).unwrap(), b"for bob only");

    // The relay (or whoever holds the bucket) swaps in Mallory's bundle: refused loudly.
    let mallory_bundle = std::fs::read(bundle_path(&relay, &mallory.identity)).unwrap();
    std::fs::write(bundle_path(&relay, &bob.identity), &mallory_bundle).unwrap();
    let o = send_to(&alice, &bob.identity, &src, &relay);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("does not belong to it"), "{}", text(&o));
    // Bob's bundle with one bit of the X-Wing key changed: its signature fails.
    let mut flipped = good.clone();
    flipped[500] ^= 1;
    std::fs::write(bundle_path(&relay, &bob.identity), &flipped).unwrap();
    let o = send_to(&alice, &bob.identity, &src, &relay);
    assert!(!o.status.success() && stderr(&o).contains("does not belong to it"), "{}", text(&o));

    // Carol knows Bob by his old veilid1 string: Mallory's bundle is still refused (its
    // signature is not Bob's) ...
    let carol = new_identity(t.path(), "carol", "carol", "carol-uses-a-long-and-unusual-passphrase-7", &relay);
    let old = PublicIdentity::decode(&bob.identity).unwrap().without_commitment().encode();
    add_contact(&carol, "bob", &old, &relay);
    std::fs::write(bundle_path(&relay, &bob.identity), &mallory_bundle).unwrap();
    let o = send_to(&carol, "bob", &src, &relay);
    assert!(!o.status.success() && stderr(&o).contains("does not belong to it"), "{}", text(&o));
    // ... Bob's own is used, and pinned: the contact now holds his veilid2 string.
    std::fs::write(bundle_path(&relay, &bob.identity), &good).unwrap();
    ok(&send_to(&carol, "bob", &src, &relay));
    let mut c = veil_at(&carol.home, &relay);
    c.args(["contacts", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&ok(&run(c)).stdout).unwrap();
    assert_eq!(v[0]["identity"], bob.identity.as_str());

    // A bundle file travels with `contacts add`: it must match the identity given.
    let file = t.path().join("bob.bundle");
    let mut c = veil_at(&bob.home, &relay);
    c.args(["identity", "export", "--bundle"]).arg(&file);
    assert_eq!(stdout(ok(&run(c))).trim(), bob.identity);
    assert_eq!(std::fs::read(&file).unwrap(), good);
    let dave = new_identity(t.path(), "dave", "dave", "dave-also-picked-a-long-passphrase-1", &relay);
    let mut c = veil_at(&dave.home, &relay);
    c.args(["contacts", "add", "bob", "--bundle"]).arg(&file);
    ok(&run(c));
    let mut c = veil_at(&dave.home, &relay);
    c.args(["contacts", "add", "bob2", &mallory.identity, "--bundle"]).arg(&file);
    let o = run(c);
    assert!(!o.status.success() && stderr(&o).contains("does not belong to it"), "{}", text(&o));
    let mut c = veil_at(&dave.home, &relay);
    c.args(["contacts", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&ok(&run(c)).stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["identity"], bob.identity.as_str());
}

/// Old-style (X25519, version 1) sealed keys left in an inbox still open.
#[test]
fn an_old_style_sealed_key_still_opens() {
    let t = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&t.path().join("relay"));
    let alice = new_identity(t.path(), "alice", "alice", PASS_A, &relay);
    let bob = new_identity(t.path(), "bob", "bob", PASS_B, &relay);
    add_contact(&bob, "alice", &alice.identity, &relay);
    let src = t.path().join("old.txt");
    std::fs::write(&src, b"sealed the old way").unwrap();
    ok(&send_to(&alice, &bob.identity, &src, &relay));
    // Replace the X-Wing sealed key with an X25519 one for the same transfer, as an older
    // veil would have left it (same sender, transfer id and key).
    let f = inbox_files(&relay).pop().unwrap();
    let stored = std::fs::read(&f).unwrap();
    let nl = stored.iter().position(|b| *b == b'\n').unwrap();
    let (alice_id, bob_id) = (seed_identity(&alice), seed_identity(&bob));
    let u = veil_format::sealed::open_sealed(&bob_id, &stored[nl + 1..]).unwrap();
    let old =
        veil_format::sealed::seal_v1_with(&bob_id.public(), alice_id.signing_key(), &u.tid, &u.key, [3; 32]).unwrap();
    assert_eq!(old[4], 1);
    let mut rewritten = stored[..=nl].to_vec();
    rewritten.extend_from_slice(&old);
    std::fs::write(&f, rewritten).unwrap();
    let out = t.path().join("out");
    let o = receive_inbox(&bob, &out, &relay, &[]);
    ok(&o);
    assert!(stderr(&o).contains("From: alice (verified contact)"), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("old.txt")).unwrap(), b"sealed the old way");
}

/// The secret identity a CLI user keeps in `identity.json`.
fn seed_identity(u: &User) -> veil_format::identity::Identity {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(u.home.join("identity.json")).unwrap()).unwrap();
    let seed: [u8; 32] = hex::decode(v["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
    veil_format::identity::Identity::from_seed(
        veil_format::SecretKey::from_bytes(seed),
        veil_format::identity::KdfParams::from_version(v["kdf"].as_u64().unwrap() as u8).unwrap(),
    )
}
