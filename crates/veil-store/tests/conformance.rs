//! Runs the conformance suite against every local backend, plus file-system specifics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use veil_store::{FsStore, MemoryStore, Store, StoreError, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let store = MemoryStore::new();
    conformance::run_all(&store).await;
    conformance::run_spawned(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path().join("store")).unwrap();
    conformance::run_all(&store).await;
    // Twice on the same store: the suite cleans up after itself.
    conformance::run_all(&store).await;
    conformance::run_spawned(Arc::new(store.clone())).await;
    assert_eq!(all_files(store.root()), Vec::<String>::new(), "suite left files behind");
}

#[tokio::test]
async fn list_everything() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(dir.path()).unwrap();
    let stores: [&dyn Store; 2] = [&MemoryStore::new(), &fs];
    for store in stores {
        for key in ["b/1", "a", "t/00/c/1"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        assert_eq!(store.list("").await.unwrap(), ["a", "b/1", "t/00/c/1"], "{}", store.kind());
        store.delete_prefix("").await.unwrap();
        assert!(store.list("").await.unwrap().is_empty(), "{}", store.kind());
    }
}

#[tokio::test]
async fn fs_stale_temp_files_are_hidden_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store.put("t/x/obj", Bytes::from_static(b"object")).await.unwrap();
    let stale = dir.path().join("t/x/.tmp-xyz");
    std::fs::write(&stale, b"half-written").unwrap();
    std::fs::write(dir.path().join(".tmp-top"), b"half-written").unwrap();

    assert_eq!(store.list("t/").await.unwrap(), ["t/x/obj"]);
    assert_eq!(store.list("").await.unwrap(), ["t/x/obj"]);
    assert_eq!(store.remove_stale_temp_files().await.unwrap(), 2);
    assert!(!stale.exists());
    assert_eq!(store.get("t/x/obj").await.unwrap().as_deref(), Some(&b"object"[..]));
    assert_eq!(store.remove_stale_temp_files().await.unwrap(), 0);
}

#[tokio::test]
async fn fs_writes_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store.put("t/a/c/1", Bytes::from_static(b"one")).await.unwrap();
    store.put("t/a/c/1", Bytes::from_static(b"two")).await.unwrap();
    assert!(store.put_new("t/a/meta", Bytes::from_static(b"m")).await.unwrap());
    assert!(!store.put_new("t/a/meta", Bytes::from_static(b"n")).await.unwrap());
    store.check().await.unwrap();
    assert_eq!(all_files(dir.path()), ["t/a/c/1", "t/a/meta"]);
}

#[tokio::test]
async fn fs_keys_cannot_escape_the_root() {
    let outer = tempfile::tempdir().unwrap();
    let store = FsStore::open(outer.path().join("root")).unwrap();
    for key in ["../escape", "a/../../escape", "/tmp/escape", "./escape", "a\\..\\escape"] {
        let result = store.put(key, Bytes::from_static(b"x")).await;
        assert!(matches!(result, Err(StoreError::InvalidKey { .. })), "{key}: {result:?}");
    }
    for prefix in ["../", "/", "/tmp/", "../root/"] {
        assert!(matches!(store.list(prefix).await, Err(StoreError::InvalidKey { .. })), "{prefix}");
        assert!(matches!(store.delete_prefix(prefix).await, Err(StoreError::InvalidKey { .. })), "{prefix}");
    }
    assert_eq!(all_files(outer.path()), Vec::<String>::new());
}

#[tokio::test]
async fn fs_ignores_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("lost+found")).unwrap();
    std::fs::write(dir.path().join("lost+found/file"), b"x").unwrap();
    std::fs::write(dir.path().join("notes~"), b"x").unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/config"), b"x").unwrap();
    store.put("t/1", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), ["t/1"]);
    store.delete_prefix("").await.unwrap();
    assert!(dir.path().join("lost+found/file").exists());
    assert!(dir.path().join(".git/config").exists());
}

#[tokio::test]
async fn fs_delete_prunes_empty_directories_but_not_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FsStore::open(&root).unwrap();
    store.put("t/aa/c/00000001", Bytes::from_static(b"1")).await.unwrap();
    store.put("t/aa/c/00000002", Bytes::from_static(b"2")).await.unwrap();
    store.put("t/bb/meta", Bytes::from_static(b"m")).await.unwrap();
    store.delete_prefix("t/aa/").await.unwrap();
    assert!(!root.join("t/aa").exists());
    store.delete("t/bb/meta").await.unwrap();
    assert!(root.is_dir());
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "empty directories pruned");
    store.delete_prefix("").await.unwrap();
    assert!(root.is_dir());
    store.check().await.unwrap();
}

#[tokio::test]
async fn fs_key_that_is_also_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store.put("a/b/c", Bytes::from_static(b"x")).await.unwrap();
    // `a/b` is a directory here, not an object.
    assert_eq!(store.get("a/b").await.unwrap(), None);
    assert_eq!(store.head("a/b").await.unwrap(), None);
    assert_eq!(store.get_range("a/b", 0, 1).await.unwrap(), None);
    assert!(matches!(store.put("a/b", Bytes::new()).await, Err(StoreError::Io { .. })));
    assert!(matches!(store.put_new("a/b", Bytes::new()).await, Err(StoreError::Io { .. })));
    store.delete("a/b").await.unwrap();
    // And the other way round: `a/b/c` is a file, so `a/b/c/d` cannot exist.
    assert_eq!(store.get("a/b/c/d").await.unwrap(), None);
    assert!(matches!(store.put("a/b/c/d", Bytes::new()).await, Err(StoreError::Io { .. })));
    store.delete("a/b/c/d").await.unwrap();
    assert_eq!(store.list("").await.unwrap(), ["a/b/c"]);
    assert_eq!(all_files(dir.path()), ["a/b/c"], "failed writes left no temp files");
}

#[tokio::test]
async fn fs_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    FsStore::open(dir.path()).unwrap().put("t/x/manifest", Bytes::from_static(b"kept")).await.unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    assert_eq!(store.get("t/x/manifest").await.unwrap().as_deref(), Some(&b"kept"[..]));
}

#[tokio::test]
async fn fs_check_reports_a_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FsStore::open(&root).unwrap();
    store.check().await.unwrap();
    std::fs::remove_dir(&root).unwrap();
    assert!(matches!(store.check().await, Err(StoreError::Unavailable(_))));
    // Reads of a vanished root are "missing", not errors.
    assert_eq!(store.get("t/x").await.unwrap(), None);
    assert!(store.list("t/").await.unwrap().is_empty());
}

#[tokio::test]
async fn fs_open_rejects_a_file_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(FsStore::open(&file), Err(StoreError::Io { .. })));
}

#[cfg(unix)]
#[tokio::test]
async fn fs_permissions_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FsStore::open(&root).unwrap();
    store.put("t/x/c/1", Bytes::from_static(b"x")).await.unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("t/x/c")), 0o700);
    assert_eq!(mode(&root.join("t/x/c/1")), 0o600);
}

/// Every file below `root` (including hidden ones), as sorted `/`-separated paths.
fn all_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(root).unwrap().to_owned();
                files.push(rel.to_str().unwrap().replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}
