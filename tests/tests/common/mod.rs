//! Test support: start the real `veil-relay` binary and run the real `veil` binary, on
//! 127.0.0.1 only. Binaries are built by the test command (`cargo build --bins` first).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// target/<profile>, found from this test executable (target/<profile>/deps/x).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} not built: run `cargo build --bins` before the tests (see README)", p.display());
    p
}

/// A relay process; killed on drop.
pub struct RelayProc {
    pub child: Option<Child>,
    pub addr: String,
    pub quic: String,
    pub http: String,
    pub data: PathBuf,
    pub stderr_path: PathBuf,
}

impl RelayProc {
    pub fn start(data: &Path) -> RelayProc {
        Self::start_on(data, "127.0.0.1:0", &[])
    }

    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> RelayProc {
        Self::start_env(data, listen, extra, &[])
    }

    pub fn start_env(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> RelayProc {
        std::fs::create_dir_all(data).unwrap();
        let stderr_path = data.with_extension("stderr.log");
        let err = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(bin("veil-relay"))
            .args(["--listen", listen, "--http", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("VEIL_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut quic = String::new();
        let mut http = String::new();
        let mut addr = String::new();
        for _ in 0..3 {
            let l = lines.next().expect("relay printed nothing").unwrap();
            if let Some(rest) = l.strip_prefix("veil-relay listening on ") {
                quic = rest.split(' ').next().unwrap().to_string();
                http = rest.rsplit(' ').next().unwrap().to_string();
            }
            if let Some(a) = l.strip_prefix("clients: VEIL_RELAY=") {
                addr = a.to_string();
            }
        }
        assert!(!addr.is_empty(), "relay did not print its address");
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        RelayProc { child: Some(child), addr, quic, http, data: data.to_path_buf(), stderr_path }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every file of the store, recursively.
    pub fn store_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.data.join("store"), &mut out);
        out
    }

    /// The chunk files of a transfer, sorted by index.
    pub fn chunk_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            self.store_files().into_iter().filter(|p| p.parent().is_some_and(|d| d.ends_with("c"))).collect();
        v.sort();
        v
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A `veil` command with its own state folder, pointed at `relay`.
pub fn veil(home: &Path, relay: &RelayProc) -> Command {
    let mut c = Command::new(bin("veil"));
    c.env("VEIL_HOME", home)
        .env("VEIL_RELAY", &relay.addr)
        .env("VEIL_RETRY_SECS", "3")
        .env("VEIL_WAIT_SECS", "60")
        .env_remove("VEIL_PASSPHRASE");
    c.stdin(Stdio::null());
    c
}

pub fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Spawn a `veil send ... --json` and return the child and its first event (code or ticket).
pub fn spawn_send(mut c: Command) -> (Child, serde_json::Value, BufReader<std::process::ChildStdout>) {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    match serde_json::from_str(&line) {
        Ok(v) => (child, v, out),
        Err(_) => {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("sender printed {line:?}; {}", text(&o))
        }
    }
}

pub fn finish(mut child: Child, rest: BufReader<std::process::ChildStdout>) -> (Option<i32>, String, String) {
    let mut out = String::new();
    for l in rest.lines() {
        out.push_str(&l.unwrap());
        out.push('\n');
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let st = child.wait().unwrap();
    (st.code(), out, err)
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    for c in v.chunks_mut(1 << 20) {
        getrandom::fill(c).unwrap();
    }
    v
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Send `path` with a chosen code and receive it into `out`; returns (send output, receive output).
pub fn code_transfer(relay: &RelayProc, dir: &Path, send_args: &[&str], code: &str, out: &Path) -> (String, Output) {
    let mut s = veil(&dir.join("home-s"), relay);
    s.arg("send").args(send_args).args(["--code", code, "--json"]);
    let (child, first, rest) = spawn_send(s);
    assert_eq!(first["event"], "code");
    assert_eq!(first["code"], code);
    let mut r = veil(&dir.join("home-r"), relay);
    r.args(["receive", code, "--yes", "--json", "--out"]).arg(out);
    let ro = run(r);
    let (sc, so, se) = finish(child, rest);
    assert_eq!(sc, Some(0), "sender failed:\n{so}\n{se}\nreceiver: {}", text(&ro));
    (so, ro)
}

/// Two relays sharing a store: `file` sent with `code` through `a` and received through
/// `b`, then the same file by ticket; both arrive byte-identical.
pub fn upload_on_a_download_on_b(dir: &Path, a: &RelayProc, b: &RelayProc, file: &Path, code: &str) {
    let data = std::fs::read(file).unwrap();
    let name = file.file_name().unwrap();

    // Code mode: the sender opens the mailbox on A, the receiver asks B.
    let mut s = veil(&dir.join("hs"), a);
    s.args(["send", file.to_str().unwrap(), "--code", code, "--json"]);
    let (child, first, rest) = spawn_send(s);
    assert_eq!(first["event"], "code");
    let out = dir.join("out");
    let mut r = veil(&dir.join("hr"), b);
    r.args(["receive", code, "--yes", "--out"]).arg(&out);
    let ro = run(r);
    let (sc, so, se) = finish(child, rest);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(sc, Some(0), "{so}{se}");
    assert!(std::fs::read(out.join(name)).unwrap() == data);

    // Link mode: uploaded through A, downloaded through B.
    let mut s = veil(&dir.join("hs"), a);
    s.args(["send", file.to_str().unwrap(), "--link", "--json"]);
    let (child, first, rest) = spawn_send(s);
    let ticket = first["ticket"].as_str().unwrap().to_string();
    assert_eq!(finish(child, rest).0, Some(0));
    let out2 = dir.join("out2");
    let mut r = veil(&dir.join("hr2"), b);
    r.args(["receive", &ticket, "--yes", "--out"]).arg(&out2);
    let ro = run(r);
    assert!(ro.status.success(), "{}", text(&ro));
    assert!(std::fs::read(out2.join(name)).unwrap() == data);
}
