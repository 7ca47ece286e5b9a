//! The receive folder under attack: another local user plants symbolic links (before or
//! while a receive runs) at the temporary folder, at final names and at intermediate
//! folders. Nothing may be written, truncated or deleted outside the output folder.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use veil_client::ClientError;
use veil_client::files::OutputPlan;
use veil_format::TransferId;
use veil_format::manifest::{ContentKind, Entry, EntryKind, Manifest};

enum E<'a> {
    F(&'a str, &'a [u8]),
    D(&'a str),
}

fn manifest(kind: ContentKind, items: &[E<'_>]) -> (Manifest, Vec<u8>) {
    let mut entries = Vec::new();
    let mut content = Vec::new();
    for it in items {
        match it {
            E::F(p, b) => {
                entries.push(Entry {
                    path: (*p).into(),
                    kind: EntryKind::File,
                    size: b.len() as u64,
                    mode: 0o644,
                    hash: *blake3::hash(b).as_bytes(),
                });
                content.extend_from_slice(b);
            }
            E::D(p) => {
                entries.push(Entry { path: (*p).into(), kind: EntryKind::Dir, size: 0, mode: 0o755, hash: [0; 32] })
            }
        }
    }
    (Manifest::new(TransferId::random(), kind, 1024, entries).unwrap(), content)
}

fn part_of(out: &Path, m: &Manifest) -> PathBuf {
    out.join(format!(".veil-{}.part", m.transfer_id.to_hex()))
}

fn write_all(plan: &OutputPlan, content: &[u8]) -> veil_client::Result<()> {
    // Chunked like a receive, so several writes hit each file.
    for (i, c) in content.chunks(7).enumerate() {
        plan.write(i as u64 * 7, c)?;
    }
    Ok(())
}

fn run(m: &Manifest, content: &[u8], out: &Path, overwrite: bool) -> veil_client::Result<Vec<PathBuf>> {
    let plan = OutputPlan::new(m, out, part_of(out, m), overwrite, true)?;
    write_all(&plan, content)?;
    plan.sync()?;
    plan.verify(m)?;
    plan.finish(m)
}

/// A folder with one file, and a snapshot to compare with afterwards.
struct Victim {
    dir: PathBuf,
}

impl Victim {
    fn new(root: &Path, file: &str) -> Victim {
        let dir = root.join("victim");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(file), b"precious data that must survive").unwrap();
        Victim { dir }
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let p = e.path();
                let body = if p.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
                (e.file_name().to_string_lossy().into_owned(), body)
            })
            .collect();
        v.sort();
        v
    }

    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            self.snapshot(),
            vec![("0".to_string(), b"precious data that must survive".to_vec())],
            "{what}: the victim folder changed"
        );
    }
}

#[test]
fn planted_part_folder_symlink_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = Victim::new(t.path(), "0");
    let (m, content) = manifest(ContentKind::Files, &[E::F("f.txt", b"attacker chooses nothing here")]);
    symlink(&victim.dir, part_of(&out, &m)).unwrap();

    let err = run(&m, &content, &out, false).unwrap_err();
    assert!(matches!(err, ClientError::UnsafeTemp { .. }), "{err:?}");
    assert!(err.to_string().contains("temporary folder"), "{err}");
    victim.assert_untouched("planted part folder");
    assert!(!out.join("f.txt").exists());
    assert!(std::fs::symlink_metadata(part_of(&out, &m)).unwrap().file_type().is_symlink(), "the link is left alone");
}

#[test]
fn part_folder_that_is_not_private_or_not_ours_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (m, content) = manifest(ContentKind::Files, &[E::F("f.txt", b"hello")]);
    let part = part_of(&out, &m);
    std::fs::create_dir(&part).unwrap();
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(part.join("0"), b"planted").unwrap();
    let err = run(&m, &content, &out, false).unwrap_err();
    assert!(matches!(err, ClientError::UnsafeTemp { .. }), "{err:?}");
    assert_eq!(std::fs::read(part.join("0")).unwrap(), b"planted");

    // A plain file where the folder should be.
    std::fs::remove_dir_all(&part).unwrap();
    std::fs::write(&part, b"not a folder").unwrap();
    let err = run(&m, &content, &out, false).unwrap_err();
    assert!(matches!(err, ClientError::UnsafeTemp { .. }), "{err:?}");
    assert_eq!(std::fs::read(&part).unwrap(), b"not a folder");

    // Another owner (only testable with the right to give files away).
    std::fs::remove_file(&part).unwrap();
    std::fs::create_dir(&part).unwrap();
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&part, Some(54321), None).is_ok() {
        let err = run(&m, &content, &out, false).unwrap_err();
        assert!(matches!(err, ClientError::UnsafeTemp { .. }), "{err:?}");
    }
}

#[test]
fn part_folder_swapped_during_the_run_is_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = Victim::new(t.path(), "0");
    let (m, content) = manifest(ContentKind::Files, &[E::F("f.txt", b"the real content of the transfer")]);
    let part = part_of(&out, &m);
    let plan = OutputPlan::new(&m, &out, part.clone(), false, true).unwrap();
    // Another user moves our folder away and plants a link to the victim instead.
    std::fs::rename(&part, t.path().join("moved")).unwrap();
    symlink(&victim.dir, &part).unwrap();
    let r = write_all(&plan, &content).and_then(|()| plan.sync()).and_then(|()| plan.verify(&m));
    let r = r.and_then(|()| plan.finish(&m));
    victim.assert_untouched("part folder swapped after new");
    if r.is_ok() {
        assert_eq!(std::fs::read(out.join("f.txt")).unwrap(), content);
    }
    assert!(std::fs::symlink_metadata(&part).unwrap().file_type().is_symlink(), "the planted link is not followed");
}

#[test]
fn text_part_folder_under_home_is_checked_too() {
    let t = tempfile::tempdir().unwrap();
    let home = veil_client::Home::at(t.path().join("home"));
    let victim = Victim::new(t.path(), "0");
    let (m, content) = manifest(ContentKind::Text, &[E::F("text", b"hello there")]);
    let part = home.path(&format!("tmp/recv-{}.part", m.transfer_id.to_hex()));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    symlink(&victim.dir, &part).unwrap();
    let r = OutputPlan::new(&m, t.path(), part.clone(), false, false).and_then(|p| write_all(&p, &content));
    assert!(matches!(r, Err(ClientError::UnsafeTemp { .. })), "{r:?}");
    victim.assert_untouched("text part folder");

    // A clean run works and the text comes back.
    std::fs::remove_file(&part).unwrap();
    let plan = OutputPlan::new(&m, t.path(), part.clone(), false, false).unwrap();
    write_all(&plan, &content).unwrap();
    plan.sync().unwrap();
    plan.verify(&m).unwrap();
    assert_eq!(std::fs::read(plan.single_temp().unwrap()).unwrap(), content);
    let mode = std::fs::metadata(&part).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn symlink_at_a_final_name_is_refused_even_with_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = Victim::new(t.path(), "0");
    let (m, content) = manifest(ContentKind::Files, &[E::F("f.txt", b"new content")]);
    symlink(victim.dir.join("0"), out.join("f.txt")).unwrap();
    for overwrite in [false, true] {
        let err = run(&m, &content, &out, overwrite).unwrap_err();
        assert!(matches!(err, ClientError::Exists(_) | ClientError::UnsafePath { .. }), "{err:?}");
        victim.assert_untouched("symlink at final name");
        assert!(std::fs::symlink_metadata(out.join("f.txt")).unwrap().file_type().is_symlink());
    }
    // A dangling link too (O_CREAT would follow it and create the target).
    std::fs::remove_file(out.join("f.txt")).unwrap();
    symlink(victim.dir.join("new"), out.join("f.txt")).unwrap();
    for overwrite in [false, true] {
        assert!(run(&m, &content, &out, overwrite).is_err());
        victim.assert_untouched("dangling symlink at final name");
    }
}

#[test]
fn symlink_at_an_intermediate_folder_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = Victim::new(t.path(), "0");
    let (m, content) = manifest(ContentKind::Files, &[E::F("a/x", b"payload"), E::F("a/0", b"payload two")]);
    symlink(&victim.dir, out.join("a")).unwrap();
    for overwrite in [false, true] {
        let err = run(&m, &content, &out, overwrite).unwrap_err();
        assert!(matches!(err, ClientError::UnsafePath { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        victim.assert_untouched("symlink at an intermediate folder");
    }
    // A link that stays inside the output folder is not followed either.
    std::fs::remove_file(out.join("a")).unwrap();
    std::fs::create_dir(out.join("b")).unwrap();
    symlink("b", out.join("a")).unwrap();
    let err = run(&m, &content, &out, true).unwrap_err();
    assert!(matches!(err, ClientError::UnsafePath { .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(out.join("b")).unwrap().count(), 0);
}

#[test]
fn symlinks_swapped_in_after_planning_are_not_followed() {
    // At an intermediate folder, then at a final name (with overwrite).
    for plant_folder in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let victim = Victim::new(t.path(), "0");
        let (m, content) = manifest(ContentKind::Files, &[E::D("a"), E::F("a/0", b"payload"), E::F("f", b"two")]);
        let plan = OutputPlan::new(&m, &out, part_of(&out, &m), true, true).unwrap();
        write_all(&plan, &content).unwrap();
        plan.sync().unwrap();
        plan.verify(&m).unwrap();
        if plant_folder {
            symlink(&victim.dir, out.join("a")).unwrap();
        } else {
            symlink(victim.dir.join("0"), out.join("f")).unwrap();
        }
        let err = plan.finish(&m).unwrap_err();
        assert!(matches!(err, ClientError::UnsafePath { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        victim.assert_untouched("symlinks planted before finish");
    }
}

#[test]
fn overwrite_replaces_a_regular_file_but_never_a_folder() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (m, content) = manifest(ContentKind::Files, &[E::F("f", b"new"), E::F("d", b"file over a folder")]);
    std::fs::write(out.join("f"), b"old").unwrap();
    std::fs::create_dir(out.join("d")).unwrap();
    std::fs::write(out.join("d/keep"), b"keep").unwrap();
    assert!(matches!(run(&m, &content, &out, false), Err(ClientError::Exists(_))));
    assert!(run(&m, &content, &out, true).is_err());
    assert_eq!(std::fs::read(out.join("d/keep")).unwrap(), b"keep");

    let (m, content) = manifest(ContentKind::Files, &[E::F("f", b"new")]);
    let written = run(&m, &content, &out, true).unwrap();
    assert_eq!(written, vec![out.join("f")]);
    assert_eq!(std::fs::read(out.join("f")).unwrap(), b"new");
    assert!(!part_of(&out, &m).exists(), "the temporary folder is removed");
}

#[test]
fn failed_finish_leaves_no_half_placed_entry() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let big = vec![7u8; 10_000];
    let (m, content) = manifest(
        ContentKind::Files,
        &[E::F("one", &big), E::D("sub"), E::F("sub/two", b"second"), E::F("three", b"third")],
    );
    let plan = OutputPlan::new(&m, &out, part_of(&out, &m), false, true).unwrap();
    write_all(&plan, &content).unwrap();
    plan.sync().unwrap();
    plan.verify(&m).unwrap();
    // Something appears at the last name while we finish.
    std::fs::create_dir(out.join("three")).unwrap();
    let err = plan.finish(&m).unwrap_err();
    assert!(matches!(err, ClientError::Exists(_)), "{err:?}");
    // Every entry is either fully in place or absent.
    for (name, body) in [("one", &big[..]), ("sub/two", b"second")] {
        match std::fs::read(out.join(name)) {
            Ok(b) => assert_eq!(b, body, "{name} is half placed"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        }
    }
    assert!(out.join("three").is_dir());
    assert_eq!(std::fs::read_dir(out.join("three")).unwrap().count(), 0);
    // Nothing but entries and our temporary folder in the output folder.
    for e in std::fs::read_dir(&out).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(["one", "sub", "three"].contains(&n.as_str()) || n.starts_with(".veil-"), "stray {n}");
    }
    // Once the obstacle is gone, a rerun (a resume: nothing written again) finishes.
    std::fs::remove_dir(out.join("three")).unwrap();
    let plan = OutputPlan::new(&m, &out, part_of(&out, &m), true, true).unwrap();
    plan.verify(&m).unwrap();
    plan.finish(&m).unwrap();
    assert_eq!(std::fs::read(out.join("one")).unwrap(), big);
    assert_eq!(std::fs::read(out.join("sub/two")).unwrap(), b"second");
    assert_eq!(std::fs::read(out.join("three")).unwrap(), b"third");
    assert!(!part_of(&out, &m).exists());
}

#[test]
fn resume_reuses_our_own_part_folder() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (m, content) = manifest(ContentKind::Files, &[E::F("a/big", &body), E::F("small", b"s")]);
    {
        let plan = OutputPlan::new(&m, &out, part_of(&out, &m), false, true).unwrap();
        plan.write(0, &content[..2048]).unwrap();
    }
    let plan = OutputPlan::new(&m, &out, part_of(&out, &m), false, true).unwrap();
    plan.write(2048, &content[2048..]).unwrap();
    plan.sync().unwrap();
    plan.verify(&m).unwrap();
    plan.finish(&m).unwrap();
    assert_eq!(std::fs::read(out.join("a/big")).unwrap(), body);
    assert_eq!(std::fs::read(out.join("small")).unwrap(), b"s");
}

#[test]
fn entries_below_a_file_and_bidi_names_are_refused() {
    let tid = TransferId::random();
    let f = |p: &str| Entry { path: p.into(), kind: EntryKind::File, size: 1, mode: 0o644, hash: [0; 32] };
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![f("a"), f("a/b")]).is_err());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![f("a/b"), f("a")]).is_err());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![f("A/b"), f("a")]).is_err());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![f("photo\u{202E}gpj.exe")]).is_err());
    assert!(Manifest::new(tid, ContentKind::Files, 1024, vec![f("x\u{2067}y/z")]).is_err());
}
