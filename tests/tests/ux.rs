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
