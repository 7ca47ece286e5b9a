//! Wide-area faults, through the userspace link emulator (`veil-netem`) between the real
//! CLI and the real relay: a link that goes down for 20 s, a client whose address changes
//! mid-transfer, heavy loss with reordering, and a code transfer over a long path. Each
//! test checks completion and byte identity; speed is for `benches/wan.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use veil_netem::{LinkConfig, Netem};

/// A relay behind the emulator: clients reach it only through `em`.
struct Wan {
    relay: RelayProc,
    em: Netem,
    addr: String,
    rt: tokio::runtime::Runtime,
}

impl Wan {
    fn start(dir: &Path, link: LinkConfig) -> Wan {
        let relay = RelayProc::start(&dir.join("relay"));
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let upstream = relay.quic.parse().unwrap();
        let down = LinkConfig { seed: link.seed.wrapping_add(1), ..link.clone() };
        let em = rt.block_on(Netem::start(upstream, link, down)).unwrap();
        let fingerprint = relay.addr.split_once('#').unwrap().1;
        let addr = format!("{}#{fingerprint}", em.addr());
        Wan { relay, em, addr, rt }
    }

    /// `veil` with its own home, through the emulator, with the default retry budget.
    fn veil(&self, home: &Path) -> Command {
        let mut c = veil(home, &self.relay);
        c.env("VEIL_RELAY", &self.addr).env_remove("VEIL_RETRY_SECS");
        c
    }

    /// Upload `file` with `--link`, run `during` once the upload is under way, download
    /// it again through the emulator and compare.
    fn link_round_trip(&self, dir: &Path, file: &Path, during: impl FnOnce(&Wan)) -> Duration {
        let t = Instant::now();
        let mut s = self.veil(&dir.join("hs"));
        s.args(["send", file.to_str().unwrap(), "--link", "--json"]);
        let (child, first, rest) = spawn_send(s);
        let ticket = first["ticket"].as_str().unwrap().to_string();
        during(self);
        let (code, out, err) = finish(child, rest);
        assert_eq!(code, Some(0), "sender failed:\n{out}\n{err}\nemulator: {:?}", self.em.stats());
        let got = dir.join("got");
        let mut r = self.veil(&dir.join("hr"));
        r.args(["receive", &ticket, "--yes", "--out"]).arg(&got);
        let ro = run(r);
        assert!(ro.status.success(), "{}\nemulator: {:?}", text(&ro), self.em.stats());
        let name = file.file_name().unwrap();
        assert!(std::fs::read(got.join(name)).unwrap() == std::fs::read(file).unwrap(), "received bytes differ");
        t.elapsed()
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        self.relay.kill();
        let _ = &self.rt;
    }
}

fn file_of(dir: &Path, mib: usize) -> std::path::PathBuf {
    let p = dir.join("payload.bin");
    std::fs::write(&p, random_bytes(mib << 20)).unwrap();
    p
}

#[test]
fn an_upload_survives_the_link_going_down_for_20_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let wan = Wan::start(dir.path(), LinkConfig::symmetric(20_000_000, Duration::from_millis(20)));
    // 16 MiB at 20 Mbit/s: about 7 s of upload, with the link down from the 2nd second.
    let file = file_of(dir.path(), 16);
    let took = wan.link_round_trip(dir.path(), &file, |w| {
        std::thread::sleep(Duration::from_secs(2));
        w.em.blackhole(Duration::from_secs(20));
    });
    let s = wan.em.stats();
    assert!(s.blackholed > 0, "the outage hit nothing: {s:?}");
    assert!(took > Duration::from_secs(20), "{took:?}");
}

#[test]
fn the_connection_migrates_when_the_client_address_changes() {
    let dir = tempfile::tempdir().unwrap();
    let wan = Wan::start(dir.path(), LinkConfig::symmetric(50_000_000, Duration::from_millis(20)));
    let file = file_of(dir.path(), 12);
    wan.link_round_trip(dir.path(), &file, |w| {
        std::thread::sleep(Duration::from_millis(700));
        w.em.change_addresses();
    });
    // The sender's first address, its second, and the receiver's.
    assert!(wan.em.stats().addresses >= 3, "{:?}", wan.em.stats());
    let log = std::fs::read_to_string(&wan.relay.stderr_path).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn five_percent_loss_with_reordering_still_delivers_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let link = LinkConfig {
        loss: 0.05,
        jitter: Duration::from_millis(8),
        reorder: true,
        seed: 5,
        ..LinkConfig::symmetric(50_000_000, Duration::from_millis(20))
    };
    let wan = Wan::start(dir.path(), link);
    let file = file_of(dir.path(), 6);
    wan.link_round_trip(dir.path(), &file, |_| {});
    let s = wan.em.stats();
    assert!(s.lost > 100, "{s:?}");
}

#[test]
fn a_code_transfer_over_a_long_lossy_path() {
    let dir = tempfile::tempdir().unwrap();
    let link = LinkConfig { loss: 0.01, ..LinkConfig::symmetric(20_000_000, Duration::from_millis(150)) };
    let wan = Wan::start(dir.path(), link);
    let file = file_of(dir.path(), 3);
    let code = "71-guitar-orbit";
    let mut s = wan.veil(&dir.path().join("hs"));
    s.args(["send", file.to_str().unwrap(), "--code", code, "--json"]);
    let (child, first, rest) = spawn_send(s);
    assert_eq!(first["code"], code);
    let got = dir.path().join("got");
    let mut r = wan.veil(&dir.path().join("hr"));
    r.args(["receive", code, "--yes", "--out"]).arg(&got);
    let ro = run(r);
    let (sc, so, se) = finish(child, rest);
    assert!(ro.status.success(), "{}", text(&ro));
    assert_eq!(sc, Some(0), "{so}{se}");
    assert!(std::fs::read(got.join("payload.bin")).unwrap() == std::fs::read(&file).unwrap());
}
