//! The file-system backend: one file per object under a root directory.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::key::is_valid_segment;
use crate::{Store, StoreError, clamp_range, validate_key, validate_prefix};

/// Names of temporary files start with this; keys can never start a segment with `.`.
const TEMP_PREFIX: &str = ".tmp-";

/// How often a write is retried when a concurrent delete prunes the directory it just
/// created, or two random temporary names collide.
const MAX_WRITE_ATTEMPTS: usize = 32;

/// A [`Store`] keeping one file per object under a root directory.
///
/// Key `a/b/c` is the file `root/a/b/c`: key segments are directories. Writes go to a
/// temporary file `.tmp-<random hex>` in the target directory, which is fsynced, then
/// renamed (for [`Store::put`]) or hard-linked (for [`Store::put_new`], which makes
/// create-only writes atomic on POSIX) into place, and the directory is fsynced; new
/// directories are fsynced into their parents too. Deleting prunes directories left empty
/// (never the root). Directories are created `0700` and files `0600` on Unix.
///
/// Limits:
///
/// - A key cannot be both an object and a directory on the way to another key: with an
///   object at `a/b`, writing `a/b/c` fails with [`StoreError::Io`], and the other way
///   round. veil's key layout never does this.
/// - The root must be on a file system with hard links (any POSIX one: ext4, XFS, btrfs,
///   ZFS, APFS).
/// - A write whose future is dropped may still complete: the file work runs on tokio's
///   blocking pool.
/// - A crash can leave `.tmp-*` files behind; they are never listed, and
///   [`FsStore::remove_stale_temp_files`] removes them at startup.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<Path>,
}

impl FsStore {
    /// Opens the store rooted at `root`, creating the directory (mode `0700` on Unix) if
    /// needed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if the directory cannot be created or is not a directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStore, StoreError> {
        let root: PathBuf = root.into();
        let shown = root.display().to_string();
        let err = |source| StoreError::io("open", &shown, source);
        dir_builder().recursive(true).create(&root).map_err(err)?;
        if !fs::metadata(&root).map_err(err)?.is_dir() {
            return Err(err(io::Error::new(ErrorKind::NotADirectory, "the store root is not a directory")));
        }
        let root = std::path::absolute(&root).map_err(err)?;
        Ok(FsStore { root: root.into() })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Deletes every temporary `.tmp-*` file under the root, left by writes that a crash
    /// interrupted, and returns how many it deleted.
    ///
    /// Call it at startup, before serving: it would also delete the temporary file of a
    /// write in progress (which then fails cleanly with [`StoreError::Io`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if a directory cannot be read or a file cannot be removed.
    pub async fn remove_stale_temp_files(&self) -> Result<usize, StoreError> {
        self.run(|root| {
            let removed = remove_temp_files(root)
                .map_err(|e| StoreError::io("remove_stale_temp_files", &root.display().to_string(), e))?;
            if removed > 0 {
                tracing::info!(removed, root = %root.display(), "removed stale temporary files");
            }
            Ok(removed)
        })
        .await
    }

    /// Runs blocking file work on tokio's blocking pool.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, StoreError> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(|e| StoreError::Other(format!("file store task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Store for FsStore {
    fn kind(&self) -> &'static str {
        "fs"
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| write_object(root, &key, &body, Mode::Replace).map(|_| ())).await
    }

    async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| write_object(root, &key, &body, Mode::CreateOnly)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| {
            let err = |e| StoreError::io("get", &key, e);
            let Some((mut file, len)) = open_object(&object_path(root, &key)).map_err(err)? else {
                return Ok(None);
            };
            let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut buf).map_err(err)?;
            Ok(Some(Bytes::from(buf)))
        })
        .await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| {
            let err = |e| StoreError::io("get_range", &key, e);
            let Some((mut file, len)) = open_object(&object_path(root, &key)).map_err(err)? else {
                return Ok(None);
            };
            let (start, end) = clamp_range(start, end, len)?;
            let wanted = end - start;
            let mut buf = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
            if wanted > 0 {
                file.seek(SeekFrom::Start(start)).map_err(err)?;
                file.take(wanted).read_to_end(&mut buf).map_err(err)?;
            }
            Ok(Some(Bytes::from(buf)))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| match fs::metadata(object_path(root, &key)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(StoreError::io("head", &key, e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.run(move |root| {
            let walk = walk_prefix(root, &prefix).map_err(|e| StoreError::io("list", &prefix, e))?;
            let mut keys: Vec<String> = walk.files.into_iter().map(|(key, _)| key).collect();
            keys.sort_unstable();
            Ok(keys)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(move |root| delete_object(root, &key)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.run(move |root| delete_under(root, &prefix)).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(|root| {
            let unavailable =
                |what: &str, e: io::Error| StoreError::Unavailable(format!("{what} {}: {e}", root.display()));
            let meta = fs::metadata(root).map_err(|e| unavailable("cannot access the store root", e))?;
            if !meta.is_dir() {
                return Err(StoreError::Unavailable(format!("the store root {} is not a directory", root.display())));
            }
            let probe = root.join(format!("{TEMP_PREFIX}probe-{}", random_hex()?));
            write_new_file(&probe, b"veil-store readiness probe", false)
                .map_err(|e| unavailable("cannot write a probe file in", e))?;
            fs::remove_file(&probe).map_err(|e| unavailable("cannot remove a probe file from", e))
        })
        .await
    }
}

/// How [`write_object`] places the finished temporary file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Rename over whatever is there.
    Replace,
    /// Hard-link, failing if the name exists.
    CreateOnly,
}

/// Writes `body` durably and atomically under `key`; returns whether it was written.
fn write_object(root: &Path, key: &str, body: &[u8], mode: Mode) -> Result<bool, StoreError> {
    let op = match mode {
        Mode::Replace => "put",
        Mode::CreateOnly => "put_new",
    };
    let err = |e| StoreError::io(op, key, e);
    let dir_rel = key.rsplit_once('/').map(|(dir, _)| dir);
    let path = object_path(root, key);
    let (dir, tmp) = write_temp(root, dir_rel, body).map_err(err)?;
    let placed = match mode {
        Mode::Replace => fs::rename(&tmp, &path).map(|()| true),
        Mode::CreateOnly => link_new(&tmp, &path),
    };
    // After a successful rename the temporary name is gone; in every other case remove it.
    if mode == Mode::CreateOnly || placed.is_err() {
        remove_quietly(&tmp);
    }
    let written = placed.map_err(err)?;
    if written {
        // A concurrent delete may already have removed the new object and pruned its
        // directory; then there is nothing left to make durable.
        sync_dir_if_present(&dir).map_err(err)?;
    }
    Ok(written)
}

/// Hard-links `tmp` to `path` unless `path` exists; `Ok(false)` if an object exists there.
fn link_new(tmp: &Path, path: &Path) -> io::Result<bool> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                Err(io::Error::new(ErrorKind::IsADirectory, "the key names a directory holding other keys"))
            }
            _ => Ok(false),
        },
        Err(e) => Err(e),
    }
}

/// Creates the key's directory and a fsynced temporary file in it holding `body`.
/// Returns the directory and the temporary file's path.
fn write_temp(root: &Path, dir_rel: Option<&str>, body: &[u8]) -> io::Result<(PathBuf, PathBuf)> {
    let mut attempt = 1;
    loop {
        let result = ensure_dir(root, dir_rel).and_then(|(dir, created_in)| {
            let name = random_hex().map_err(io::Error::other)?;
            let tmp = dir.join(format!("{TEMP_PREFIX}{name}"));
            write_new_file(&tmp, body, true)?;
            // The temporary file now keeps its directories from being pruned, so the new
            // ones can be made durable without racing a concurrent delete.
            if let Err(e) = created_in.iter().try_for_each(|parent| sync_dir(parent)) {
                remove_quietly(&tmp);
                return Err(e);
            }
            Ok((dir, tmp))
        });
        match result {
            // A concurrent delete pruned a directory we had just created before the
            // temporary file was in it (NotFound), or two random names collided
            // (AlreadyExists): try again.
            Err(e)
                if attempt < MAX_WRITE_ATTEMPTS
                    && matches!(e.kind(), ErrorKind::NotFound | ErrorKind::AlreadyExists) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Creates `root/dir_rel` and any missing parents. Returns the directory's path and the
/// directories in which it created a new one (to be fsynced by the caller).
fn ensure_dir(root: &Path, dir_rel: Option<&str>) -> io::Result<(PathBuf, Vec<PathBuf>)> {
    let mut dir = root.to_path_buf();
    let mut created_in = Vec::new();
    let Some(rel) = dir_rel else {
        return Ok((dir, created_in));
    };
    let full = object_path(root, rel);
    if fs::symlink_metadata(&full).is_ok_and(|meta| meta.is_dir()) {
        return Ok((full, created_in));
    }
    for segment in rel.split('/') {
        let parent = dir.clone();
        dir.push(segment);
        match dir_builder().create(&dir) {
            Ok(()) => created_in.push(parent),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok((dir, created_in))
}

/// Creates `path` (which must not exist) holding `body`, optionally fsynced. Removes the
/// file again if writing fails.
fn write_new_file(path: &Path, body: &[u8], sync: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(body).and_then(|()| if sync { file.sync_all() } else { Ok(()) });
    if written.is_err() {
        drop(file);
        remove_quietly(path);
    }
    written
}

/// Deletes the object under `key` and prunes directories left empty.
fn delete_object(root: &Path, key: &str) -> Result<(), StoreError> {
    let err = |e| StoreError::io("delete", key, e);
    let path = object_path(root, key);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if is_missing(&e) => return Ok(()),
        // A directory holding other keys is not an object.
        Err(_) if fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir()) => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    let Some((dir_rel, _)) = key.rsplit_once('/') else {
        return sync_dir(root).map_err(err);
    };
    let dir = object_path(root, dir_rel);
    let depth = dir_rel.split('/').count();
    let surviving = prune_upwards(dir.clone(), depth).unwrap_or(dir);
    sync_dir_if_present(&surviving).map_err(err)
}

/// Deletes every object under `prefix` and prunes directories left empty (never the root).
fn delete_under(root: &Path, prefix: &str) -> Result<(), StoreError> {
    let err = |e| StoreError::io("delete_prefix", prefix, e);
    let walk = walk_prefix(root, prefix).map_err(err)?;
    let mut touched = BTreeSet::new();
    for (_, path) in &walk.files {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(err(e)),
        }
        if let Some(parent) = path.parent() {
            touched.insert(parent.to_path_buf());
        }
    }
    // Children were found after their parents, so reverse order removes children first.
    for dir in walk.dirs.iter().rev() {
        if fs::remove_dir(dir).is_ok() {
            touched.remove(dir);
            if let Some(parent) = dir.parent() {
                touched.insert(parent.to_path_buf());
            }
        }
    }
    if let Some(surviving) = prune_upwards(walk.start.clone(), walk.depth) {
        touched.insert(surviving);
    }
    for dir in &touched {
        sync_dir_if_present(dir).map_err(err)?;
    }
    Ok(())
}

/// Removes `dir` and then its parents while they are empty, at most `depth` levels (so
/// never the store root). Returns the closest surviving parent if anything was removed.
fn prune_upwards(mut dir: PathBuf, depth: usize) -> Option<PathBuf> {
    let mut removed_any = false;
    for _ in 0..depth {
        if fs::remove_dir(&dir).is_err() {
            break;
        }
        removed_any = true;
        if !dir.pop() {
            break;
        }
    }
    removed_any.then_some(dir)
}

/// Files and directories found under a prefix.
struct Walk {
    /// The deepest directory named in full by the prefix.
    start: PathBuf,
    /// How many directories `start` lies below the root.
    depth: usize,
    /// Matching objects: key and path, unsorted.
    files: Vec<(String, PathBuf)>,
    /// Matching directories below `start`, each listed before its children.
    dirs: Vec<PathBuf>,
}

/// Finds every object whose key starts with `prefix` (a valid prefix). Skips names that
/// are not valid key segments: temporary files, probe files, foreign files such as
/// `lost+found`, and symbolic links.
fn walk_prefix(root: &Path, prefix: &str) -> io::Result<Walk> {
    let (dir_rel, partial) = match prefix.rsplit_once('/') {
        Some((dir, partial)) => (Some(dir), partial),
        None => (None, prefix),
    };
    let mut start = root.to_path_buf();
    let mut base = String::new();
    let mut depth = 0;
    for segment in dir_rel.into_iter().flat_map(|dir| dir.split('/')) {
        start.push(segment);
        base.push_str(segment);
        base.push('/');
        depth += 1;
    }
    let mut walk = Walk { start: start.clone(), depth, files: Vec::new(), dirs: Vec::new() };
    let mut stack = vec![(start, base, true)];
    while let Some((dir, base, top)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e),
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_valid_segment(name) || (top && !name.starts_with(partial)) {
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e),
            };
            let key = format!("{base}{name}");
            if file_type.is_dir() {
                if key.len() < crate::MAX_KEY_LEN {
                    walk.dirs.push(entry.path());
                    stack.push((entry.path(), key + "/", false));
                }
            } else if file_type.is_file() && key.starts_with(prefix) && validate_key(&key).is_ok() {
                walk.files.push((key, entry.path()));
            }
        }
    }
    Ok(walk)
}

/// Deletes every `.tmp-*` file under `root`; returns how many.
fn remove_temp_files(root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let file_type = entry.file_type()?;
            if file_type.is_dir() && is_valid_segment(name) {
                stack.push(entry.path());
            } else if file_type.is_file() && name.starts_with(TEMP_PREFIX) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if is_missing(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
}

/// Opens the object file at `path`: `None` if there is none (missing, or a directory).
fn open_object(path: &Path) -> io::Result<Option<(File, u64)>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    Ok(meta.is_file().then_some((file, meta.len())))
}

/// `root/<key segments>`; `key` must be valid, so it stays below `root`.
fn object_path(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    path
}

/// Whether an error means "no such object": the file or one of its directories is missing,
/// or a parent is a file.
fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn dir_builder() -> DirBuilder {
    #[allow(unused_mut)]
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
}

/// Makes changes to the entries of `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing elsewhere; NTFS journals metadata.
        let _ = dir;
        Ok(())
    }
}

fn sync_dir_if_present(dir: &Path) -> io::Result<()> {
    match sync_dir(dir) {
        Err(e) if is_missing(&e) => Ok(()),
        other => other,
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary file");
    }
}

/// 128 random bits as 32 lowercase hex digits.
fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Other(format!("the system random number generator failed: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
