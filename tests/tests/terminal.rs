#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CLI in a real terminal: tmux runs `veil send` and `veil receive` in two panes, the
//! test types at the prompts and reads the screens (capture-pane), as a person would.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server (its own socket); killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(env: &[(&str, String)]) -> Option<Tmux> {
        let socket = format!("veil-test-{}", std::process::id());
        let mut c = Command::new("tmux");
        c.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "110", "-y", "60", "-s", "veil"]);
        for (k, v) in env {
            c.args(["-e", &format!("{k}={v}")]);
        }
        c.arg("sh");
        let ok = c.status().ok()?.success();
        ok.then_some(Tmux { socket })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o = Command::new("tmux").args(["-L", &self.socket]).args(args).output().unwrap();
        assert!(o.status.success(), "tmux {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Type `keys` (literally) then Enter into `pane`.
    fn type_line(&self, pane: &str, keys: &str) {
        self.tmux(&["send-keys", "-t", pane, "-l", keys]);
        self.tmux(&["send-keys", "-t", pane, "Enter"]);
    }

    fn screen(&self, pane: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-200", "-t", pane])
    }

    /// Wait until `pane` shows `what`; the screen then.
    fn wait_for(&self, pane: &str, what: &str) -> String {
        self.wait_for_more(pane, what, 0)
    }

    /// Wait until `pane` shows `what` more than `seen` times (scrollback included).
    fn wait_for_more(&self, pane: &str, what: &str, seen: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen(pane);
            if s.matches(what).count() > seen {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "pane {pane} never showed {what:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn send_and_receive_in_a_real_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: no tmux");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(&dir.path().join("relay"));
    let src = dir.path().join("report.pdf");
    std::fs::write(&src, random_bytes(3 << 20)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let env = [
        ("VEIL_RELAY", relay.addr.clone()),
        ("VEIL_RETRY_SECS", "3".into()),
        ("VEIL_WAIT_SECS", "60".into()),
        ("TERM", "xterm-256color".into()),
    ];
    let Some(t) = Tmux::start(&env) else {
        eprintln!("skipped: tmux could not start a server");
        return;
    };
    t.tmux(&["split-window", "-v", "-t", "veil:0"]);
    let (sender, receiver) = ("veil:0.0", "veil:0.1");
    let veil_bin = shell_quote(&bin("veil"));

    // The sender: a code, the command to run on the other side, a QR code. A chosen code
    // so the Tab completion below is deterministic ("ac" is acid, acorn, acre, acts).
    let send_home = shell_quote(&dir.path().join("hs"));
    t.type_line(
        sender,
        &format!("VEIL_HOME={send_home} {veil_bin} send --code 4242-acorn-atlas {}", shell_quote(&src)),
    );
    let s = t.wait_for(sender, "Waiting for the receiver");
    let code = s
        .lines()
        .find_map(|l| l.split("Code: ").nth(1))
        .unwrap_or_else(|| panic!("no code on the sender's screen:\n{s}"))
        .trim()
        .to_string();
    assert!(s.contains(&format!("veil receive {code}")), "{s}");
    assert!(s.lines().filter(|l| l.starts_with("████") && l.ends_with("████")).count() >= 12, "no QR code:\n{s}");

    // The receiver: asked for the code at a prompt (out of `ps`), then asked to accept.
    let recv_home = shell_quote(&dir.path().join("hr"));
    t.type_line(receiver, &format!("cd {} && VEIL_HOME={recv_home} {veil_bin} receive", shell_quote(&out)));
    t.wait_for(receiver, "Code or ticket (Enter for your inbox):");
    // Tab completion of the words: "ac" lists its four words, "o" then makes it acorn-.
    t.tmux(&["send-keys", "-t", receiver, "-l", "4242-ac"]);
    t.tmux(&["send-keys", "-t", receiver, "Tab"]);
    t.wait_for(receiver, "acid  acorn  acre  acts");
    t.tmux(&["send-keys", "-t", receiver, "-l", "o"]);
    t.tmux(&["send-keys", "-t", receiver, "Tab"]);
    t.wait_for(receiver, "4242-acorn-");
    t.tmux(&["send-keys", "-t", receiver, "-l", "atl"]);
    t.tmux(&["send-keys", "-t", receiver, "Tab"]);
    t.wait_for(receiver, &code);
    t.tmux(&["send-keys", "-t", receiver, "Enter"]);
    let r = t.wait_for(receiver, "Accept? [y/N]");
    assert!(r.contains("Offering 1 file(s), 3.0 MiB") && r.contains("report.pdf"), "{r}");
    assert!(r.contains("Verification words"), "{r}");
    t.type_line(receiver, "y");
    let r = t.wait_for(receiver, "Received 3.0 MiB");
    let s = t.wait_for(sender, "Sent 3.0 MiB");
    // `cargo test ... -- --nocapture` shows what a person sees.
    eprintln!("--- sender ---\n{s}\n--- receiver ---\n{r}");
    assert_eq!(std::fs::read(out.join("report.pdf")).unwrap(), std::fs::read(&src).unwrap());
    // Verification words match on both screens.
    let words = |screen: &str| screen.lines().find(|l| l.contains("Verification words")).map(|l| l.trim().to_string());
    assert_eq!(words(&s), words(&r), "sender:\n{s}\nreceiver:\n{r}");
    // No escape sequences leaked as text, and the progress bar left no debris.
    assert!(!r.contains("\u{1b}") && !r.contains("[2K"), "{r}");

    // Declined at the prompt: exit status 3 and nothing written.
    t.type_line(sender, &format!("VEIL_HOME={send_home} {veil_bin} send --link --text hello; echo sent=$?"));
    let s = t.wait_for(sender, "sent=0");
    let ticket = s
        .lines()
        .find_map(|l| l.split("Ticket: ").nth(1))
        .unwrap_or_else(|| panic!("no ticket:\n{s}"))
        .trim()
        .to_string();
    let asked = t.screen(receiver).matches("Accept? [y/N]").count();
    t.type_line(receiver, &format!("VEIL_HOME={recv_home} {veil_bin} receive {ticket}; echo status=$?"));
    t.wait_for_more(receiver, "Accept? [y/N]", asked);
    t.type_line(receiver, "n");
    // Exit status 3 (declined), and nothing written.
    let r = t.wait_for(receiver, "status=3");
    assert!(r.contains("transfer declined; nothing was written"), "{r}");
    assert!(!out.join("text.txt").exists());
}
