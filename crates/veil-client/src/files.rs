//! Local files: collecting what to send, reading the concatenated content by chunk, and
//! writing received content safely (temporary files, rename only after authentication,
//! never outside the output folder, never through a symbolic link, never over an existing
//! file unless asked).

use crate::error::{ClientError, Result};
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, MetadataExt, OpenOptions, OpenOptionsExt};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use veil_format::manifest::{Entry, EntryKind, Manifest, validate_name};

/// One entry to send with where its bytes come from.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// The manifest entry (hash filled in by [`hash_entries`]).
    pub entry: Entry,
    /// Local file for [`EntryKind::File`].
    pub local: Option<PathBuf>,
    /// Modification time seen while collecting (resume key).
    pub mtime: u64,
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        if meta.permissions().readonly() { 0o444 } else { 0o644 }
    }
}

fn mtime_of(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0)
}

/// Walk the paths given on the command line. Files keep their base name; folders are
/// sent with their structure. Symbolic links are skipped (reported in the second value).
pub fn collect(paths: &[PathBuf]) -> Result<(Vec<SourceEntry>, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|e| ClientError::io("reading", p, e))?;
        let canonical = std::fs::canonicalize(p).map_err(|e| ClientError::io("reading", p, e))?;
        let base = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Usage(format!("cannot send {}: it has no usable name", p.display())))?;
        walk(p, &meta, base, &mut out, &mut skipped)?;
    }
    let mut seen = std::collections::HashSet::new();
    for e in &out {
        if !seen.insert(e.entry.path.to_lowercase()) {
            return Err(ClientError::Usage(format!("two inputs are both named {:?}; rename one", e.entry.path)));
        }
    }
    Ok((out, skipped))
}

fn walk(
    p: &Path,
    meta: &std::fs::Metadata,
    name: String,
    out: &mut Vec<SourceEntry>,
    skipped: &mut Vec<PathBuf>,
) -> Result<()> {
    validate_name(&name).map_err(|e| ClientError::Usage(format!("cannot send {}: {e}", p.display())))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        skipped.push(p.to_path_buf());
        return Ok(());
    }
    if ft.is_file() {
        out.push(SourceEntry {
            entry: Entry { path: name, kind: EntryKind::File, size: meta.len(), mode: mode_of(meta), hash: [0; 32] },
            local: Some(p.to_path_buf()),
            mtime: mtime_of(meta),
        });
    } else if ft.is_dir() {
        out.push(SourceEntry {
            entry: Entry { path: name.clone(), kind: EntryKind::Dir, size: 0, mode: mode_of(meta), hash: [0; 32] },
            local: None,
            mtime: 0,
        });
        let mut kids: Vec<_> = std::fs::read_dir(p)
            .map_err(|e| ClientError::io("listing", p, e))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| ClientError::io("listing", p, e))?;
        kids.sort_by_key(|d| d.file_name());
        for k in kids {
            let kp = k.path();
            let kname = k.file_name().to_str().map(str::to_string).ok_or_else(|| {
                ClientError::Usage(format!("cannot send {}: the name is not valid UTF-8", kp.display()))
            })?;
            let km = std::fs::symlink_metadata(&kp).map_err(|e| ClientError::io("reading", &kp, e))?;
            walk(&kp, &km, format!("{name}/{kname}"), out, skipped)?;
        }
    } else {
        skipped.push(p.to_path_buf());
    }
    Ok(())
}

/// Compute the BLAKE3 of every file (done before upload: the hash is in the manifest).
pub fn hash_entries(entries: &mut [SourceEntry]) -> Result<()> {
    for e in entries.iter_mut() {
        if let Some(p) = &e.local {
            let (n, h) = hash_file(p)?;
            if n != e.entry.size {
                return Err(ClientError::Usage(format!("{} changed while being read", p.display())));
            }
            e.entry.hash = h;
        }
    }
    Ok(())
}

/// BLAKE3 of a file, reading 1 MiB at a time and hashing each block on all cores.
pub fn hash_file(p: &Path) -> Result<(u64, [u8; 32])> {
    let f = File::open(p).map_err(|e| ClientError::io("opening", p, e))?;
    hash_reader(f, p)
}

/// BLAKE3 of everything `f` yields (`p` names it in errors).
fn hash_reader(mut f: impl Read, p: &Path) -> Result<(u64, [u8; 32])> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = f.read(&mut buf[filled..]).map_err(|e| ClientError::io("reading", p, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        h.update_rayon(&buf[..filled]);
        total += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    Ok((total, *h.finalize().as_bytes()))
}

/// Reads the concatenated content of all entries, chunk by chunk.
#[derive(Debug, Clone)]
pub struct ContentReader {
    files: Vec<(u64, u64, PathBuf)>,
    total: u64,
}

impl ContentReader {
    /// A reader over the files of `entries`, in order.
    pub fn new(entries: &[SourceEntry]) -> Self {
        let mut off = 0;
        let mut files = Vec::new();
        for e in entries {
            if let (EntryKind::File, Some(p)) = (e.entry.kind, &e.local) {
                if e.entry.size > 0 {
                    files.push((off, e.entry.size, p.clone()));
                }
                off += e.entry.size;
            }
        }
        ContentReader { files, total: off }
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Read bytes `[start, start + len)` (blocking).
    pub fn read(&self, start: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let end = start + len as u64;
        let first = self.files.partition_point(|(o, s, _)| o + s <= start);
        for (off, size, path) in &self.files[first..] {
            if *off >= end {
                break;
            }
            let a = start.max(*off);
            let b = end.min(off + size);
            let mut f = File::open(path).map_err(|e| ClientError::io("opening", path, e))?;
            f.seek(SeekFrom::Start(a - off)).map_err(|e| ClientError::io("reading", path, e))?;
            f.read_exact(&mut buf[(a - start) as usize..(b - start) as usize]).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    ClientError::Usage(format!("{} shrank while being sent", path.display()))
                } else {
                    ClientError::io("reading", path, e)
                }
            })?;
        }
        Ok(buf)
    }
}

/// Where received bytes go until they are authenticated, and where they end up.
///
/// Every file operation below the output folder goes through directory handles, one
/// name at a time, never following a symbolic link: the output folder is opened once
/// (the only lookup by full path), the temporary folder is created in it (or in the state
/// folder for text and stdin) and must be a private folder of ours, temporary files are
/// opened by name in that folder's handle, and finished files are linked or renamed from
/// it into folder handles walked component by component. A link planted by another
/// local user, before or during the receive, makes the receive fail instead of being
/// followed.
#[derive(Debug)]
pub struct OutputPlan {
    /// Temporary folder (`<out>/.veil-<id>.part`), as a path for messages.
    pub part_dir: PathBuf,
    out_dir: PathBuf,
    /// The output folder (files transfers only).
    out: Option<Dir>,
    /// The folder holding the temporary folder, and the temporary folder's name in it.
    part_parent: Dir,
    part_name: String,
    /// The temporary folder, checked to be a private folder of ours.
    part: Dir,
    files: Vec<TempFile>,
    single: Option<PathBuf>,
    /// Permission bits the umask lets through.
    allowed: u32,
    overwrite: bool,
}

#[derive(Debug)]
struct TempFile {
    /// Where the file's bytes start in the content.
    offset: u64,
    size: u64,
    /// Name in the temporary folder.
    name: String,
    /// Index of the manifest entry.
    entry: usize,
}

/// Progress file in the temporary folder: finished chunk indices, one a line.
const PROGRESS: &str = "done";
/// Probe file used to learn which permission bits the umask lets through.
const UMASK_PROBE: &str = "umask-probe";

fn no_follow(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.follow(FollowSymlinks::No)
}

/// Whether an error says a symbolic link or a non-folder was met where a folder was
/// expected (`ELOOP`/`ENOTDIR`: the name changed between a look and an open).
fn is_link_error(e: &std::io::Error) -> bool {
    matches!(rustix::io::Errno::from_io_error(e), Some(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR))
}

/// Create `name` in `parent` as a 0700 folder, or accept an existing one only if it is a
/// real folder (not a symbolic link), owned by us and private. Returns its handle.
fn open_private_dir(parent: &Dir, name: &str, shown: &Path) -> Result<Dir> {
    let unsafe_temp = |reason| ClientError::UnsafeTemp { path: shown.to_path_buf(), reason };
    let mut b = DirBuilder::new();
    b.mode(0o700);
    match parent.create_dir_with(name, &b) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = parent.symlink_metadata(name).map_err(|e| ClientError::io("reading", shown, e))?;
            if meta.file_type().is_symlink() {
                return Err(unsafe_temp("it is a symbolic link"));
            }
            if !meta.is_dir() {
                return Err(unsafe_temp("it is not a folder"));
            }
        }
        Err(e) => return Err(ClientError::io("creating", shown, e)),
    }
    let dir = parent.open_dir_nofollow(name).map_err(|e| {
        if is_link_error(&e) { unsafe_temp("it is a symbolic link") } else { ClientError::io("opening", shown, e) }
    })?;
    // Checked on the opened handle: what we use is what we checked.
    let meta = dir.dir_metadata().map_err(|e| ClientError::io("reading", shown, e))?;
    if !meta.is_dir() {
        return Err(unsafe_temp("it is not a folder"));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(unsafe_temp("it belongs to another user"));
    }
    if meta.mode() & 0o7777 != 0o700 {
        return Err(unsafe_temp("it is not private (its mode is not 0700)"));
    }
    Ok(dir)
}

/// Which of the bits 0o777 the umask lets through: the mode of a file created with 0o777
/// (the kernel applies the umask, or a default ACL, itself; no unsafe code, no global
/// state changed).
fn probe_allowed_bits(part: &Dir, shown: &Path) -> Result<u32> {
    let _ = part.remove_file(UMASK_PROBE);
    let mut o = OpenOptions::new();
    no_follow(o.write(true).create_new(true)).mode(0o777);
    let f = part
        .open_with(UMASK_PROBE, &o)
        .map_err(|e| ClientError::io("creating", shown.join(UMASK_PROBE), e))?
        .into_std();
    let mode = f.metadata().map_err(|e| ClientError::io("reading", shown.join(UMASK_PROBE), e))?.permissions().mode();
    drop(f);
    let _ = part.remove_file(UMASK_PROBE);
    Ok(mode & 0o777)
}

/// `base/rel` for messages.
fn shown(base: &Path, rel: &str) -> PathBuf {
    base.join(rel)
}

impl OutputPlan {
    /// Plan the output of `m` into `out_dir` with temporary files in `part_dir`.
    /// Fails before anything is written if a final name exists (and !overwrite), or if a
    /// name would go through a symbolic link or a file. With `check_final` (files
    /// transfers) the output folder is opened; text and stdin transfers only use
    /// `part_dir`. The temporary folder is created private (0700), or reused only if it is
    /// a private folder of ours (a resume).
    pub fn new(m: &Manifest, out_dir: &Path, part_dir: PathBuf, overwrite: bool, check_final: bool) -> Result<Self> {
        let part_name = part_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| ClientError::UnsafeTemp { path: part_dir.clone(), reason: "it has no usable name" })?;
        let parent_path = match part_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let out = if check_final {
            let out = Dir::open_ambient_dir(out_dir, cap_std::ambient_authority())
                .map_err(|e| ClientError::io("opening", out_dir, e))?;
            for e in &m.entries {
                precheck(&out, out_dir, &e.path, e.kind, overwrite)?;
                let first = e.path.split('/').next().unwrap_or_default();
                if parent_path == out_dir && first.to_lowercase() == part_name.to_lowercase() {
                    return Err(ClientError::UnsafePath {
                        path: shown(out_dir, first),
                        reason: "it is the name of the temporary folder",
                    });
                }
            }
            Some(out)
        } else {
            None
        };
        let part_parent = match &out {
            Some(o) if parent_path == out_dir => o.try_clone().map_err(|e| ClientError::io("opening", out_dir, e))?,
            _ => {
                crate::home::create_private_dir(&parent_path)?;
                Dir::open_ambient_dir(&parent_path, cap_std::ambient_authority())
                    .map_err(|e| ClientError::io("opening", &parent_path, e))?
            }
        };
        let part = open_private_dir(&part_parent, &part_name, &part_dir)?;
        let allowed = probe_allowed_bits(&part, &part_dir)?;

        let mut files = Vec::new();
        let offsets = m.offsets();
        for (i, e) in m.entries.iter().enumerate() {
            if e.kind == EntryKind::File {
                files.push(TempFile { offset: offsets[i], size: e.size, name: i.to_string(), entry: i });
            }
        }
        let plan = OutputPlan {
            single: files.first().map(|f| part_dir.join(&f.name)),
            part_dir,
            out_dir: out_dir.to_path_buf(),
            out,
            part_parent,
            part_name,
            part,
            files,
            allowed,
            overwrite,
        };
        for f in &plan.files {
            let mut o = OpenOptions::new();
            // Not create_new: a resume finds the files of the earlier run (in our own folder).
            no_follow(o.write(true).create(true).truncate(false)).mode(0o600);
            let file = plan.open_temp(&f.name, &o, "creating")?;
            file.set_len(f.size).map_err(|e| ClientError::io("sizing", plan.temp_path(&f.name), e))?;
        }
        Ok(plan)
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        self.part_dir.join(name)
    }

    /// Open a file of the temporary folder through its handle; it must be a regular file.
    fn open_temp(&self, name: &str, opts: &OpenOptions, op: &'static str) -> Result<File> {
        let f = self.part.open_with(name, opts).map_err(|e| ClientError::io(op, self.temp_path(name), e))?.into_std();
        let meta = f.metadata().map_err(|e| ClientError::io("reading", self.temp_path(name), e))?;
        if !meta.is_file() {
            return Err(ClientError::UnsafeTemp { path: self.temp_path(name), reason: "it is not a regular file" });
        }
        Ok(f)
    }

    /// Write authenticated plaintext that starts at content offset `start` (blocking).
    pub fn write(&self, start: u64, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let end = start + data.len() as u64;
        let first = self.files.partition_point(|f| f.offset + f.size <= start);
        for f in &self.files[first..] {
            if f.offset >= end {
                break;
            }
            if f.size == 0 {
                continue;
            }
            let a = start.max(f.offset);
            let b = end.min(f.offset + f.size);
            let mut o = OpenOptions::new();
            no_follow(o.write(true));
            let file = self.open_temp(&f.name, &o, "opening")?;
            file.write_all_at(&data[(a - start) as usize..(b - start) as usize], a - f.offset)
                .map_err(|e| ClientError::io("writing", self.temp_path(&f.name), e))?;
        }
        Ok(())
    }

    /// Flush temporary files to disk.
    pub fn sync(&self) -> Result<()> {
        for f in &self.files {
            let mut o = OpenOptions::new();
            no_follow(o.read(true));
            let file = self.open_temp(&f.name, &o, "opening")?;
            file.sync_all().map_err(|e| ClientError::io("syncing", self.temp_path(&f.name), e))?;
        }
        Ok(())
    }

    /// Check every file's BLAKE3 against the manifest.
    pub fn verify(&self, m: &Manifest) -> Result<()> {
        for f in &self.files {
            let mut o = OpenOptions::new();
            no_follow(o.read(true));
            let file = self.open_temp(&f.name, &o, "opening")?;
            let (_, h) = hash_reader(file, &self.temp_path(&f.name))?;
            if m.entries.get(f.entry).map(|e| e.hash) != Some(h) {
                return Err(ClientError::Format(veil_format::FormatError::Malformed {
                    what: "file",
                    reason: "content hash does not match the signed manifest",
                }));
            }
        }
        Ok(())
    }

    /// Temporary path of the only file (text and stdin transfers).
    pub fn single_temp(&self) -> Option<&Path> {
        self.single.as_deref()
    }

    /// Chunk indices an earlier run of this transfer recorded as finished (resume).
    pub fn done_chunks(&self) -> Result<std::collections::HashSet<u64>> {
        let body = match self.part.read(PROGRESS) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ClientError::io("reading", self.temp_path(PROGRESS), e)),
        };
        Ok(String::from_utf8_lossy(&body).lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The progress file, opened for appending finished chunk indices (one a line).
    pub fn open_progress(&self) -> Result<File> {
        let mut o = OpenOptions::new();
        no_follow(o.append(true).create(true)).mode(0o600);
        self.open_temp(PROGRESS, &o, "writing")
    }

    /// Remove the temporary folder and everything in it (through its handle; a link put
    /// in its place is not followed).
    pub fn discard(self) {
        if let Ok(entries) = self.part.entries() {
            for e in entries.flatten() {
                let _ = self.part.remove_file(e.file_name());
            }
        }
        let _ = self.part_parent.remove_dir(&self.part_name);
    }

    /// Move everything into place: folders created (parents first, with the sent mode
    /// masked by the umask; existing folders are kept as they are), then each file given
    /// its mode and linked (or, with overwrite, renamed over an existing regular file)
    /// from the temporary folder under its final name, in one step: an entry is either
    /// fully in place or absent. Never writes through a symbolic link, never replaces a
    /// folder or anything but a regular file.
    pub fn finish(self, m: &Manifest) -> Result<Vec<PathBuf>> {
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("this transfer is not saved to an output folder".into()))?;
        let mut dirs: Vec<&Entry> = m.entries.iter().filter(|e| e.kind == EntryKind::Dir).collect();
        dirs.sort_by_key(|e| e.path.split('/').count());
        for e in dirs {
            ensure_dir(out, &self.out_dir, &e.path, Some(e.mode))?;
        }
        let mut written = Vec::new();
        let mut cached: Option<(&str, Dir)> = None;
        for f in &self.files {
            let e = m.entries.get(f.entry).ok_or_else(|| ClientError::Protocol("manifest changed".into()))?;
            let (parent_rel, name) = e.path.rsplit_once('/').unwrap_or(("", e.path.as_str()));
            let parent = if parent_rel.is_empty() {
                out
            } else {
                if cached.as_ref().is_none_or(|(p, _)| *p != parent_rel) {
                    cached = Some((parent_rel, ensure_dir(out, &self.out_dir, parent_rel, None)?));
                }
                match &cached {
                    Some((_, d)) => d,
                    None => out,
                }
            };
            self.place(parent, name, f, e)?;
            written.push(shown(&self.out_dir, &e.path));
        }
        self.discard();
        Ok(written)
    }

    /// Put one finished temporary file under its final name in `parent`.
    fn place(&self, parent: &Dir, name: &str, f: &TempFile, e: &Entry) -> Result<()> {
        let fin = shown(&self.out_dir, &e.path);
        // The mode is set before the file appears under its name, masked by the umask.
        let mut o = OpenOptions::new();
        no_follow(o.read(true));
        let tmp = self.open_temp(&f.name, &o, "opening")?;
        tmp.set_permissions(std::fs::Permissions::from_mode(e.mode & self.allowed))
            .map_err(|err| ClientError::io("setting the mode of", self.temp_path(&f.name), err))?;
        drop(tmp);
        match parent.symlink_metadata(name) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ClientError::UnsafePath { path: fin, reason: "it is a symbolic link" });
            }
            Ok(meta) if meta.is_dir() => return Err(ClientError::Exists(fin)),
            Ok(meta) if !meta.is_file() => {
                return Err(ClientError::UnsafePath { path: fin, reason: "it exists and is not a regular file" });
            }
            Ok(_) if !self.overwrite => return Err(ClientError::Exists(fin)),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(ClientError::io("reading", fin, err)),
        }
        if self.overwrite {
            // rename(2) replaces the name itself (a link swapped in is replaced, not
            // followed) and refuses to replace a folder with a file.
            self.part.rename(&f.name, parent, name).map_err(|err| match err.kind() {
                std::io::ErrorKind::IsADirectory | std::io::ErrorKind::DirectoryNotEmpty => {
                    ClientError::Exists(fin.clone())
                }
                _ => ClientError::io("renaming", fin.clone(), err),
            })
        } else {
            // link(2) never replaces anything and does not follow a link at the new name.
            // The temporary name stays until the whole transfer is placed, so a finish
            // that fails later can be retried (with overwrite) from the same folder.
            match self.part.hard_link(&f.name, parent, name) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(ClientError::Exists(fin)),
                Err(err) => Err(ClientError::io("creating", fin, err)),
            }
        }
    }
}

/// Before anything is written: refuse names that exist (unless a folder for a folder, or
/// a regular file with `overwrite`) or would go through a symbolic link or a file.
fn precheck(out: &Dir, out_dir: &Path, path: &str, kind: EntryKind, overwrite: bool) -> Result<()> {
    validate_name(path)?;
    let comps: Vec<&str> = path.split('/').collect();
    let mut cur: Option<Dir> = None;
    let mut rel = String::new();
    for (i, c) in comps.iter().enumerate() {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(c);
        let here = cur.as_ref().unwrap_or(out);
        let meta = match here.symlink_metadata(c) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ClientError::io("reading", shown(out_dir, &rel), e)),
        };
        if meta.file_type().is_symlink() {
            return Err(ClientError::UnsafePath { path: shown(out_dir, &rel), reason: "it is a symbolic link" });
        }
        if i + 1 < comps.len() {
            if !meta.is_dir() {
                return Err(ClientError::UnsafePath { path: shown(out_dir, &rel), reason: "it is not a folder" });
            }
            let next = here.open_dir_nofollow(c).map_err(|e| {
                if is_link_error(&e) {
                    ClientError::UnsafePath { path: shown(out_dir, &rel), reason: "it is a symbolic link" }
                } else {
                    ClientError::io("opening", shown(out_dir, &rel), e)
                }
            })?;
            cur = Some(next);
        } else {
            match kind {
                EntryKind::Dir if meta.is_dir() => {}
                EntryKind::File if overwrite && meta.is_file() => {}
                _ => return Err(ClientError::Exists(shown(out_dir, &rel))),
            }
        }
    }
    Ok(())
}

/// Walk `rel` below `out` one name at a time, creating missing folders (the last one with
/// `mode | 0o700` when given, others 0o777, both masked by the kernel with the umask)
/// and refusing symbolic links and non-folders. Returns the last folder's handle.
fn ensure_dir(out: &Dir, out_dir: &Path, rel: &str, mode: Option<u32>) -> Result<Dir> {
    validate_name(rel)?;
    let comps: Vec<&str> = rel.split('/').collect();
    let mut cur: Option<Dir> = None;
    let mut sofar = String::new();
    for (i, c) in comps.iter().enumerate() {
        if !sofar.is_empty() {
            sofar.push('/');
        }
        sofar.push_str(c);
        let here = cur.as_ref().unwrap_or(out);
        let last = i + 1 == comps.len();
        match here.symlink_metadata(c) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ClientError::UnsafePath { path: shown(out_dir, &sofar), reason: "it is a symbolic link" });
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(if last && mode.is_some() {
                    ClientError::Exists(shown(out_dir, &sofar))
                } else {
                    ClientError::UnsafePath { path: shown(out_dir, &sofar), reason: "it is not a folder" }
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = DirBuilder::new();
                b.mode(match mode {
                    Some(m) if last => (m | 0o700) & 0o777,
                    _ => 0o777,
                });
                match here.create_dir_with(c, &b) {
                    Ok(()) => {}
                    // Created meanwhile: checked by the no-follow open below.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(ClientError::io("creating", shown(out_dir, &sofar), e)),
                }
            }
            Err(e) => return Err(ClientError::io("reading", shown(out_dir, &sofar), e)),
        }
        let next = here.open_dir_nofollow(c).map_err(|e| {
            if is_link_error(&e) {
                ClientError::UnsafePath {
                    path: shown(out_dir, &sofar),
                    reason: "it is a symbolic link or not a folder",
                }
            } else {
                ClientError::io("opening", shown(out_dir, &sofar), e)
            }
        })?;
        cur = Some(next);
    }
    match cur {
        Some(d) => Ok(d),
        None => out.try_clone().map_err(|e| ClientError::io("opening", out_dir, e)),
    }
}
