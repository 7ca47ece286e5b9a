#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The tool around the transfers: completions, man pages, QR codes, the config file,
//! exit codes, screen and media streams, driven through the real binaries.

mod common;
use common::*;
use std::process::Command;

fn stdout_of(bin_name: &str, args: &[&str]) -> String {
    let o = Command::new(bin(bin_name)).args(args).output().unwrap();
    assert!(o.status.success(), "{bin_name} {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn completions_name_the_subcommands() {
    let bash = stdout_of("veil", &["completions", "bash"]);
    for sub in ["send", "receive", "stream", "watch", "identity", "inbox", "contacts", "completions"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    assert!(bash.contains("complete -F _veil"), "not a bash completion script");
    for shell in ["zsh", "fish", "powershell"] {
        assert!(stdout_of("veil", &["completions", shell]).contains("receive"), "{shell}");
    }
    let relay = stdout_of("veil-relay", &["completions", "bash"]);
    assert!(relay.contains("--s3-bucket") && relay.contains("--listen"), "relay completion lacks its flags");
    let o = Command::new(bin("veil")).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "an unknown shell is a usage error: {}", text(&o));
}

#[test]
fn man_pages_render() {
    let page = stdout_of("veil", &["man"]);
    assert!(page.contains(".TH veil 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin("veil")).arg("man").arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for name in ["veil.1", "veil-send.1", "veil-receive.1", "veil-stream.1", "veil-completions.1"] {
        assert!(dir.path().join(name).exists(), "{name} not written");
    }
    let relay = stdout_of("veil-relay", &["man"]);
    assert!(relay.contains(".TH veil-relay 1"), "{relay}");
    // Rendered by man(1) when this machine has it.
    if let Ok(o) = Command::new("man").arg("-l").arg(dir.path().join("veil-send.1")).env("MANPAGER", "cat").output()
        && o.status.success()
    {
        let shown = String::from_utf8_lossy(&o.stdout);
        assert!(shown.contains("NAME") && shown.contains("--link"), "{shown}");
    }
}

/// `cmd` (a shell command line) run under `script`, so its output is a terminal; None
/// where `script` (util-linux) is missing.
fn on_a_terminal(cmd: &str, env: &[(&str, &std::path::Path)], relay: &RelayProc) -> Option<String> {
    let mut c = Command::new("script");
    c.args(["-qec", cmd, "/dev/null"])
        .env("VEIL_RELAY", &relay.addr)
        .env("VEIL_RETRY_SECS", "3")
        .env("VEIL_WAIT_SECS", "60")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().ok()?;
    assert!(o.status.success(), "{cmd}: {}", text(&o));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn qr_code_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let home = dir.path().join("home");
    let veil_bin = bin("veil");
    let veil_bin = veil_bin.to_str().unwrap();

    // Piped: the ticket, no QR code.
    let mut c = veil(&home, &relay);
    c.args(["send", "--link", "--text", "hello"]);
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    let piped = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(piped.contains("veil1-") && !piped.contains('█'), "{piped}");

    // --json: one object per line, never a QR code.
    let mut c = veil(&home, &relay);
    c.args(["send", "--link", "--json", "--text", "hello"]);
    let o = run(c);
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stdout).contains('█'), "{}", text(&o));

    let Some(shown) = on_a_terminal(&format!("{veil_bin} send --link --text hello"), &[("VEIL_HOME", &home)], &relay)
    else {
        eprintln!("skipped the terminal half: no `script`");
        return;
    };
    assert!(shown.contains("veil receive veil1-"), "{shown}");
    let blocks = shown.lines().filter(|l| l.starts_with("████") && l.ends_with("████")).count();
    assert!(blocks >= 21, "no QR code under the ticket:\n{shown}");

    let hidden =
        on_a_terminal(&format!("{veil_bin} send --link --no-qr --text hello"), &[("VEIL_HOME", &home)], &relay)
            .unwrap();
    assert!(hidden.contains("veil receive veil1-") && !hidden.contains('█'), "{hidden}");
}

#[test]
fn config_file_sets_the_defaults_and_config_says_where_from() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let home = dir.path().join("home");
    let out = dir.path().join("downloads");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!("relay = \"{}\"\nout = \"{}\"\nexpire = \"2d\"\n", relay.addr, out.display()),
    )
    .unwrap();

    // Without VEIL_RELAY the file's relay (with its pinned fingerprint) is used.
    let mut c = veil(&home, &relay);
    c.env_remove("VEIL_RELAY").args(["config", "--json"]);
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let file_source = format!("file {}", home.join("config.toml").display());
    assert_eq!(v["settings"]["relay"]["value"], relay.addr.as_str());
    assert_eq!(v["settings"]["relay"]["source"], file_source.as_str());
    assert_eq!(v["settings"]["expire"]["value"], "2days");
    assert_eq!(v["settings"]["out"]["source"], file_source.as_str());

    // A flag beats the environment beats the file; human output names each source.
    let mut c = veil(&home, &relay);
    c.env("VEIL_RELAY", "127.0.0.1:9").args(["config", "--expire", "3h"]);
    let o = run(c);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("(environment VEIL_RELAY)") && shown.contains("(flag --expire)"), "{shown}");

    // Send and receive with nothing but the file: the file lands in its output folder.
    let src = dir.path().join("report.txt");
    std::fs::write(&src, b"quarterly numbers").unwrap();
    let mut c = veil(&home, &relay);
    c.env_remove("VEIL_RELAY").args(["send", "--link", "--json"]).arg(&src);
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let ticket = first["ticket"].as_str().unwrap().to_string();
    let mut c = veil(&home, &relay);
    c.env_remove("VEIL_RELAY").env("VEIL_TICKET", &ticket).args(["receive", "--yes"]).current_dir(dir.path());
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("report.txt")).unwrap(), b"quarterly numbers");

    // A malformed file is a usage error naming the file.
    std::fs::write(home.join("config.toml"), "relya = \"x\"\n").unwrap();
    let mut c = veil(&home, &relay);
    c.arg("config");
    let o = run(c);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.toml"), "{}", text(&o));
}

#[test]
fn exit_codes_quiet_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let home = dir.path().join("home");
    let help = stdout_of("veil", &["--help"]);
    assert!(help.contains("Exit status:") && help.contains("3  declined"), "{help}");

    // 2: usage.
    let mut c = veil(&home, &relay);
    c.arg("send");
    assert_eq!(run(c).status.code(), Some(2));

    // --quiet: the ticket alone on stderr, nothing else.
    let src = dir.path().join("a.txt");
    std::fs::write(&src, b"x").unwrap();
    let mut c = veil(&home, &relay);
    c.args(["--quiet", "send", "--link"]).arg(&src);
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("veil1-"), "{err}");
    let ticket = lines[0].to_string();

    // 3: declined at the prompt, typed on a real terminal; nothing written.
    let veil_bin = bin("veil");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cmd = format!("{} receive {ticket} --out {}", veil_bin.display(), out.display());
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("(sleep 1; echo n) | script -qec '{cmd}' /dev/null"))
        .env("VEIL_HOME", &home)
        .env("VEIL_RELAY", &relay.addr);
    let o = sh.output().unwrap();
    let screen = String::from_utf8_lossy(&o.stdout);
    if screen.contains("Accept?") {
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(screen.contains("declined"), "{screen}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    } else {
        eprintln!("skipped the declined half: no `script`? {}", text(&o));
    }

    // NO_COLOR: no escape sequences, even on a terminal.
    let mut sh = Command::new("script");
    sh.args(["-qec", &format!("{} --help", veil_bin.display()), "/dev/null"]).env("NO_COLOR", "1");
    if let Ok(o) = sh.output() {
        assert!(!o.stdout.contains(&0x1b), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

fn have(program: &str) -> bool {
    Command::new(program).arg("-version").output().is_ok()
}

/// A virtual X display (Xvfb picks a free number); killed on drop.
struct Xvfb(std::process::Child, String);

impl Xvfb {
    fn start() -> Option<Xvfb> {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "640x480x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
        let n = line.trim();
        if n.is_empty() {
            let _ = child.kill();
            return None;
        }
        Some(Xvfb(child, format!(":{n}")))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn probe_video(path: &std::path::Path) -> String {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "compact"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn stream_the_screen_of_a_virtual_display() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!("skipped: ffmpeg/ffprobe missing");
        return;
    }
    let Some(x) = Xvfb::start() else {
        eprintln!("skipped: no Xvfb (apt-get install xvfb)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let code = "9-guitar-orbit";
    let mut p = veil(&dir.path().join("hp"), &relay);
    p.args(["stream", "--screen", "--fps", "10", "--size", "320x240", "--duration", "3s", "--code", code])
        .env("DISPLAY", &x.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let publisher = p.spawn().unwrap();
    let out = dir.path().join("screen.ts");
    let mut w = veil(&dir.path().join("hw"), &relay);
    w.args(["watch", code]).stdout(std::fs::File::create(&out).unwrap());
    let wo = run(w);
    let po = publisher.wait_with_output().unwrap();
    let perr = String::from_utf8_lossy(&po.stderr);
    assert!(po.status.success(), "publisher: {perr}");
    assert!(wo.status.success(), "viewer: {}", text(&wo));
    assert!(perr.contains("Running: ffmpeg") && perr.contains("-f x11grab"), "the ffmpeg command is printed: {perr}");
    assert!(perr.contains("-tune zerolatency") && perr.contains(&format!("-i {}", x.1)), "{perr}");
    let probe = probe_video(&out);
    assert!(probe.contains("codec_name=h264|width=320|height=240"), "ffprobe: {probe}");
}

#[test]
fn stream_a_file_and_play_it() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!("skipped: ffmpeg/ffprobe missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.mkv");
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=15"])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .arg(&movie)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let relay = RelayProc::start(&dir.path().join("relay"));
    let code = "8-guitar-orbit";
    let mut p = veil(&dir.path().join("hp"), &relay);
    p.args(["stream", "--file"]).arg(&movie).args(["--code", code]);
    p.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let publisher = p.spawn().unwrap();
    // --play with the player replaced by a command writing a file.
    let played = dir.path().join("played.ts");
    let mut w = veil(&dir.path().join("hw"), &relay);
    w.args(["watch", "--play", code]).env("VEIL_PLAYER", format!("dd status=none of={}", played.display()));
    let wo = run(w);
    let po = publisher.wait_with_output().unwrap();
    assert!(po.status.success(), "publisher: {}", String::from_utf8_lossy(&po.stderr));
    assert!(wo.status.success(), "viewer: {}", text(&wo));
    assert!(String::from_utf8_lossy(&po.stderr).contains("-re -i"), "{}", String::from_utf8_lossy(&po.stderr));
    assert!(probe_video(&played).contains("codec_name=h264|width=320|height=240"), "{}", probe_video(&played));

    // No ffmpeg, no player: one clear line each, before anything starts.
    let empty = dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = veil(&dir.path().join("hp"), &relay);
    c.args(["stream", "--file"]).arg(&movie).env("PATH", &empty);
    let o = run(c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains("ffmpeg not found") && err.contains("apt install ffmpeg") && err.lines().count() == 1,
        "{err}"
    );
    let mut c = veil(&dir.path().join("hw"), &relay);
    c.args(["watch", "--play", code]).env("PATH", &empty).env_remove("VEIL_PLAYER");
    let o = run(c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err.contains("mpv or ffplay"), "{err}");
}

#[test]
fn receive_json_has_one_object_per_file_then_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let src = dir.path().join("folder");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    std::fs::write(src.join("sub/b.txt"), b"b").unwrap();
    let out = dir.path().join("out");
    let (_, ro) = code_transfer(&relay, dir.path(), &[src.to_str().unwrap()], "6-acorn-atlas", &out);
    assert!(ro.status.success(), "{}", text(&ro));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&ro.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let files: Vec<&str> = events.iter().filter(|v| v["event"] == "file").filter_map(|v| v["path"].as_str()).collect();
    assert_eq!(files.len(), 2, "{events:?}");
    assert!(files.iter().any(|f| f.ends_with("a.txt")) && files.iter().any(|f| f.ends_with("b.txt")), "{files:?}");
    assert_eq!(events.last().map(|v| v["event"].clone()), Some(serde_json::json!("done")), "{events:?}");
}
