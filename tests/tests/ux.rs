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
