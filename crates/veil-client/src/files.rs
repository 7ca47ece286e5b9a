//! Local files: collecting what to send, reading the concatenated content by chunk, and
//! writing received content safely (temporary files, rename only after authentication,
//! never outside the output folder, never over an existing file unless asked).

use crate::error::{ClientError, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
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
            let mut f = File::open(p).map_err(|e| ClientError::io("opening", p, e))?;
            let mut h = blake3::Hasher::new();
            let n = std::io::copy(&mut f, &mut h).map_err(|e| ClientError::io("reading", p, e))?;
            if n != e.entry.size {
                return Err(ClientError::Usage(format!("{} changed while being read", p.display())));
            }
            e.entry.hash = *h.finalize().as_bytes();
        }
    }
    Ok(())
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
#[derive(Debug)]
pub struct OutputPlan {
    /// Temporary folder (`<out>/.veil-<id>.part`).
    pub part_dir: PathBuf,
    out_dir: PathBuf,
    /// (offset, size, temp path, manifest entry index) of every file.
    files: Vec<(u64, u64, PathBuf, usize)>,
    overwrite: bool,
}

/// Join a validated relative name onto `out`, refusing to pass through symbolic links
/// that already exist there.
pub fn safe_join(out: &Path, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    let mut p = out.to_path_buf();
    let comps: Vec<&str> = name.split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        p.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.file_type().is_symlink() {
                return Err(ClientError::Usage(format!("refusing to write through the symbolic link {}", p.display())));
            }
            if i + 1 < comps.len() && !m.is_dir() {
                return Err(ClientError::Usage(format!("{} exists and is not a folder", p.display())));
            }
        }
    }
    Ok(p)
}

impl OutputPlan {
    /// Plan the output of `m` into `out_dir` with temporary files in `part_dir`.
    /// Fails before anything is written if a final name exists (and !overwrite).
    pub fn new(m: &Manifest, out_dir: &Path, part_dir: PathBuf, overwrite: bool, check_final: bool) -> Result<Self> {
        let mut files = Vec::new();
        let offsets = m.offsets();
        for (i, e) in m.entries.iter().enumerate() {
            if check_final {
                let fin = safe_join(out_dir, &e.path)?;
                if let Ok(meta) = std::fs::symlink_metadata(&fin) {
                    match e.kind {
                        EntryKind::Dir if meta.is_dir() => {}
                        EntryKind::File if overwrite && meta.is_file() => {}
                        _ => return Err(ClientError::Exists(fin)),
                    }
                }
            }
            if e.kind == EntryKind::File {
                files.push((offsets[i], e.size, part_dir.join(i.to_string()), i));
            }
        }
        crate::home::create_private_dir(&part_dir)?;
        for (_, size, tmp, _) in &files {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(tmp)
                .map_err(|e| ClientError::io("creating", tmp, e))?;
            f.set_len(*size).map_err(|e| ClientError::io("sizing", tmp, e))?;
        }
        Ok(OutputPlan { part_dir, out_dir: out_dir.to_path_buf(), files, overwrite })
    }

    /// Write authenticated plaintext that starts at content offset `start` (blocking).
    pub fn write(&self, start: u64, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let end = start + data.len() as u64;
        let first = self.files.partition_point(|(o, s, _, _)| o + s <= start);
        for (off, size, tmp, _) in &self.files[first..] {
            if *off >= end {
                break;
            }
            if *size == 0 {
                continue;
            }
            let a = start.max(*off);
            let b = end.min(off + size);
            let f =
                std::fs::OpenOptions::new().write(true).open(tmp).map_err(|e| ClientError::io("opening", tmp, e))?;
            f.write_all_at(&data[(a - start) as usize..(b - start) as usize], a - off)
                .map_err(|e| ClientError::io("writing", tmp, e))?;
        }
        Ok(())
    }

    /// Flush temporary files to disk.
    pub fn sync(&self) -> Result<()> {
        for (_, _, tmp, _) in &self.files {
            let f = File::open(tmp).map_err(|e| ClientError::io("opening", tmp, e))?;
            f.sync_all().map_err(|e| ClientError::io("syncing", tmp, e))?;
        }
        Ok(())
    }

    /// Check every file's BLAKE3 against the manifest.
    pub fn verify(&self, m: &Manifest) -> Result<()> {
        for (_, _, tmp, i) in &self.files {
            let mut f = File::open(tmp).map_err(|e| ClientError::io("opening", tmp, e))?;
            let mut h = blake3::Hasher::new();
            std::io::copy(&mut f, &mut h).map_err(|e| ClientError::io("reading", tmp, e))?;
            if *h.finalize().as_bytes() != m.entries[*i].hash {
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
        self.files.first().map(|(_, _, p, _)| p.as_path())
    }

    /// Move everything into place: folders created, files linked under their final names
    /// (never replacing an existing file unless overwrite), modes restored.
    pub fn finish(self, m: &Manifest) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for e in &m.entries {
            if e.kind == EntryKind::Dir {
                let p = safe_join(&self.out_dir, &e.path)?;
                std::fs::create_dir_all(&p).map_err(|err| ClientError::io("creating", &p, err))?;
                set_mode(&p, e.mode | 0o700);
            }
        }
        for (_, _, tmp, i) in &self.files {
            let e = &m.entries[*i];
            let fin = safe_join(&self.out_dir, &e.path)?;
            if let Some(parent) = fin.parent() {
                std::fs::create_dir_all(parent).map_err(|err| ClientError::io("creating", parent, err))?;
            }
            set_mode(tmp, e.mode & 0o777);
            if self.overwrite {
                std::fs::rename(tmp, &fin).map_err(|err| ClientError::io("renaming", &fin, err))?;
            } else {
                match std::fs::hard_link(tmp, &fin) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(tmp);
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(ClientError::Exists(fin));
                    }
                    Err(err) => return Err(ClientError::io("creating", &fin, err)),
                }
            }
            written.push(fin);
        }
        let _ = std::fs::remove_dir_all(&self.part_dir);
        Ok(written)
    }
}

fn set_mode(p: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    }
}
