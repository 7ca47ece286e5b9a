//! Received modes are masked by the process umask (its own test binary: the umask is
//! process-wide).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use veil_client::files::OutputPlan;
use veil_format::TransferId;
use veil_format::manifest::{ContentKind, Entry, EntryKind, Manifest};

#[test]
fn received_modes_are_masked_by_the_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let body = b"shared with everyone?";
    let dir = |p: &str, mode| Entry { path: p.into(), kind: EntryKind::Dir, size: 0, mode, hash: [0; 32] };
    let file = |p: &str, mode| Entry {
        path: p.into(),
        kind: EntryKind::File,
        size: body.len() as u64,
        mode,
        hash: *blake3::hash(body).as_bytes(),
    };
    let entries = vec![
        dir("open", 0o777),
        file("open/f", 0o666),
        file("open/x", 0o777),
        file("ro", 0o444),
        dir("implied/deep", 0o750),
        file("implied/deep/g", 0o640),
    ];
    let m = Manifest::new(TransferId::random(), ContentKind::Files, 1024, entries).unwrap();
    let content = [&body[..], body, body, body].concat();
    let part = out.join(format!(".veil-{}.part", m.transfer_id.to_hex()));
    let plan = OutputPlan::new(&m, &out, part, false, true).unwrap();
    plan.write(0, &content).unwrap();
    plan.sync().unwrap();
    plan.verify(&m).unwrap();
    plan.finish(&m).unwrap();
    let mode = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("open"), 0o755, "a folder sent 0777 loses group/other write");
    assert_eq!(mode("open/f"), 0o644);
    assert_eq!(mode("open/x"), 0o755);
    assert_eq!(mode("ro"), 0o444);
    assert_eq!(mode("implied/deep"), 0o750);
    assert_eq!(mode("implied/deep/g"), 0o640);
    assert_eq!(std::fs::read(out.join("open/x")).unwrap(), body);
}
