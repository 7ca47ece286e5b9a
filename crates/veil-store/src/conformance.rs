//! The conformance suite every [`Store`] backend must pass.
//!
//! Test support: each check panics with a message naming the backend, the case and the
//! broken rule. Every case works under its own random key prefix and cleans up after
//! itself, so the suite can run against a shared store (a real bucket) and run again.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = veil_store::MemoryStore::new();
//! veil_store::conformance::run_all(&store).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;

use crate::{MAX_KEY_LEN, Store, StoreError, validate_key};

/// Runs every case against `store`, panicking on the first violation.
///
/// Concurrency cases run many operations of one task at once; [`run_spawned`] adds the
/// same checks from separate tokio tasks.
pub async fn run_all(store: &dyn Store) {
    let run = format!("conformance/{}", random_hex());
    let case = |name: &'static str| Case { store, name, prefix: format!("{run}/{name}") };
    round_trip(&case("round-trip")).await;
    empty_object(&case("empty-object")).await;
    overwrite(&case("overwrite")).await;
    put_new(&case("put-new")).await;
    missing(&case("missing")).await;
    ranges(&case("ranges")).await;
    list(&case("list")).await;
    delete(&case("delete")).await;
    delete_prefix(&case("delete-prefix")).await;
    invalid_keys(&case("invalid-keys")).await;
    longest_key(&case("longest-key")).await;
    large_object(&case("large-object")).await;
    concurrent_puts(&case("concurrent-puts")).await;
    put_new_race(&case("put-new-race")).await;
    atomic_overwrite(&case("atomic-overwrite")).await;
    put_during_delete_prefix(&case("put-during-delete-prefix")).await;
    check(&case("check")).await;

    let all = case("cleanup");
    let leftover = all.list(&format!("{run}/")).await;
    assert!(leftover.is_empty(), "{all}: cases left objects behind: {leftover:?}");
}

/// Concurrency checks from 32 separate tokio tasks: puts of different keys (in shared,
/// new directories) all visible afterwards, and exactly one winner of a `put_new` race.
pub async fn run_spawned(store: Arc<dyn Store>) {
    let prefix = format!("conformance/{}/spawned", random_hex());
    let c = Case { store: store.as_ref(), name: "spawned-tasks", prefix: prefix.clone() };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u8 {
        let store = Arc::clone(&store);
        let key = format!("{prefix}/d{}/k{i:02}", i % 4);
        tasks.spawn(async move { (i, store.put(&key, body_of(i, 1000)).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("put task panicked");
        c.ok(&format!("put #{i}"), result);
    }
    let mut expected: Vec<String> = (0..32u8).map(|i| format!("{prefix}/d{}/k{i:02}", i % 4)).collect();
    expected.sort();
    assert_eq!(c.list(&format!("{prefix}/")).await, expected, "{c}: list after spawned puts");
    for (i, key) in (0..32u8).map(|i| (i, format!("{prefix}/d{}/k{i:02}", i % 4))) {
        assert_eq!(c.get(&key).await, Some(body_of(i, 1000)), "{c}: body of {key}");
    }

    let race = format!("{prefix}/race/obj");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u8 {
        let store = Arc::clone(&store);
        let key = race.clone();
        tasks.spawn(async move { (i, store.put_new(&key, body_of(i, 4096)).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("put_new task panicked");
        if c.ok(&format!("put_new #{i}"), result) {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{c}: put_new race must have exactly one winner, got {winners:?}");
    assert_eq!(c.get(&race).await, Some(body_of(winners[0], 4096)), "{c}: the winner's body");
    c.delete_prefix(&format!("{prefix}/")).await;
    assert!(c.list(&format!("{prefix}/")).await.is_empty(), "{c}: cleanup");
}

/// One case: the store, the case name for messages, and its private key prefix.
struct Case<'a> {
    store: &'a dyn Store,
    name: &'static str,
    prefix: String,
}

impl fmt::Display for Case<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} store] {}", self.store.kind(), self.name)
    }
}

impl Case<'_> {
    /// `<prefix>/<rel>`.
    fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.prefix)
    }

    /// `<prefix>/`, which holds every key of this case.
    fn dir(&self) -> String {
        format!("{}/", self.prefix)
    }

    fn ok<T>(&self, what: &str, result: Result<T, StoreError>) -> T {
        result.unwrap_or_else(|e| panic!("{self}: {what} failed: {e} ({e:?})"))
    }

    fn invalid_key<T: fmt::Debug>(&self, what: &str, result: Result<T, StoreError>) {
        assert!(
            matches!(result, Err(StoreError::InvalidKey { .. })),
            "{self}: {what} must fail with InvalidKey, got {result:?}"
        );
    }

    async fn put(&self, key: &str, body: impl Into<Bytes>) {
        self.ok(&format!("put {key:?}"), self.store.put(key, body.into()).await);
    }

    async fn put_new(&self, key: &str, body: impl Into<Bytes>) -> bool {
        self.ok(&format!("put_new {key:?}"), self.store.put_new(key, body.into()).await)
    }

    async fn get(&self, key: &str) -> Option<Bytes> {
        self.ok(&format!("get {key:?}"), self.store.get(key).await)
    }

    async fn range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        self.store.get_range(key, start, end).await
    }

    async fn head(&self, key: &str) -> Option<u64> {
        self.ok(&format!("head {key:?}"), self.store.head(key).await)
    }

    async fn list(&self, prefix: &str) -> Vec<String> {
        let keys = self.ok(&format!("list {prefix:?}"), self.store.list(prefix).await);
        assert!(keys.is_sorted(), "{self}: list {prefix:?} is not sorted: {keys:?}");
        assert!(
            keys.iter().all(|key| key.starts_with(prefix) && validate_key(key).is_ok()),
            "{self}: list {prefix:?} returned keys outside the prefix or invalid: {keys:?}"
        );
        keys
    }

    async fn delete(&self, key: &str) {
        self.ok(&format!("delete {key:?}"), self.store.delete(key).await);
    }

    async fn delete_prefix(&self, prefix: &str) {
        self.ok(&format!("delete_prefix {prefix:?}"), self.store.delete_prefix(prefix).await);
    }

    async fn cleanup(&self) {
        self.delete_prefix(&self.dir()).await;
        assert!(self.list(&self.dir()).await.is_empty(), "{self}: cleanup left objects");
    }
}

async fn round_trip(c: &Case<'_>) {
    let key = c.key("obj");
    let body: Vec<u8> = (0..=255u8).cycle().take(3 * 256 + 7).collect();
    c.put(&key, body.clone()).await;
    assert_eq!(c.get(&key).await.as_deref(), Some(&body[..]), "{c}: get after put");
    assert_eq!(c.head(&key).await, Some(len(&body)), "{c}: head after put");

    let odd = c.key("A-z_0.9/x..y/v1.2-");
    c.put(&odd, Bytes::from_static(b"odd but valid")).await;
    assert_eq!(c.get(&odd).await.as_deref(), Some(&b"odd but valid"[..]), "{c}: odd valid key");
    assert_eq!(c.list(&c.dir()).await, sorted([odd, key]), "{c}: list");
    c.cleanup().await;
}

async fn empty_object(c: &Case<'_>) {
    let key = c.key("empty");
    c.put(&key, Bytes::new()).await;
    assert_eq!(c.get(&key).await, Some(Bytes::new()), "{c}: get of an empty object");
    assert_eq!(c.head(&key).await, Some(0), "{c}: head of an empty object");
    for (start, end) in [(0, 0), (0, 10)] {
        assert_eq!(
            c.ok("get_range", c.range(&key, start, end).await),
            Some(Bytes::new()),
            "{c}: get_range({start}, {end}) of an empty object"
        );
    }
    assert!(
        matches!(c.range(&key, 1, 2).await, Err(StoreError::InvalidRange)),
        "{c}: get_range(1, 2) of an empty object must be InvalidRange"
    );
    assert_eq!(c.list(&c.dir()).await, std::slice::from_ref(&key), "{c}: an empty object is listed");
    c.cleanup().await;
}

async fn overwrite(c: &Case<'_>) {
    let key = c.key("obj");
    c.put(&key, Bytes::from_static(b"the first, longer body")).await;
    c.put(&key, Bytes::from_static(b"second")).await;
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"second"[..]), "{c}: put replaces");
    assert_eq!(c.head(&key).await, Some(6), "{c}: head after a shorter overwrite");
    c.put(&key, Bytes::from_static(b"third, longer than the second")).await;
    assert_eq!(
        c.get(&key).await.as_deref(),
        Some(&b"third, longer than the second"[..]),
        "{c}: put replaces with a longer body"
    );
    assert_eq!(c.list(&c.dir()).await, [key], "{c}: one object after overwrites");
    c.cleanup().await;
}

async fn put_new(c: &Case<'_>) {
    let key = c.key("obj");
    assert!(c.put_new(&key, Bytes::from_static(b"one")).await, "{c}: put_new on a missing key writes");
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"one"[..]), "{c}: get after put_new");
    assert!(!c.put_new(&key, Bytes::from_static(b"two!")).await, "{c}: put_new on an existing key");
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"one"[..]), "{c}: put_new left the old body");
    assert_eq!(c.head(&key).await, Some(3), "{c}: put_new left the old size");
    c.delete(&key).await;
    assert!(c.put_new(&key, Bytes::from_static(b"three")).await, "{c}: put_new after delete");
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"three"[..]), "{c}: get after put_new");
    c.put(&key, Bytes::from_static(b"four")).await;
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"four"[..]), "{c}: put over put_new");
    assert!(c.put_new(&c.key("nested/deeper/obj"), Bytes::new()).await, "{c}: put_new in new directories");
    assert_eq!(c.list(&c.dir()).await.len(), 2, "{c}: put_new leaves nothing else listed");
    c.cleanup().await;
}

async fn missing(c: &Case<'_>) {
    for key in [c.key("nothing"), c.key("no/such/dir/obj")] {
        assert_eq!(c.get(&key).await, None, "{c}: get of a missing key");
        assert_eq!(c.head(&key).await, None, "{c}: head of a missing key");
        for (start, end) in [(0, 10), (u64::MAX, u64::MAX)] {
            assert_eq!(
                c.ok("get_range", c.range(&key, start, end).await),
                None,
                "{c}: get_range({start}, {end}) of a missing key"
            );
        }
    }
    assert!(c.list(&c.dir()).await.is_empty(), "{c}: list of an empty prefix");
    assert!(c.list(&c.key("no/")).await.is_empty(), "{c}: list of a missing directory");
}

async fn ranges(c: &Case<'_>) {
    let key = c.key("obj");
    let body = pseudo_random(1000, 1);
    c.put(&key, body.clone()).await;
    let checks: [(u64, u64, std::ops::Range<usize>); 9] = [
        (0, 10, 0..10),
        (500, 600, 500..600),
        (990, 1000, 990..1000),
        (990, 5000, 990..1000),
        (0, u64::MAX, 0..1000),
        (0, 1000, 0..1000),
        (10, 10, 10..10),
        (1000, 1000, 1000..1000),
        (1000, 2000, 1000..1000),
    ];
    for (start, end, want) in checks {
        let got = c.ok("get_range", c.range(&key, start, end).await);
        assert_eq!(got.as_deref(), Some(&body[want]), "{c}: get_range({start}, {end})");
    }
    for (start, end) in [(1001, 1002), (1001, 0), (u64::MAX, u64::MAX), (20, 10)] {
        let got = c.range(&key, start, end).await;
        assert!(
            matches!(got, Err(StoreError::InvalidRange)),
            "{c}: get_range({start}, {end}) must be InvalidRange, got {got:?}"
        );
    }
    c.cleanup().await;
}

async fn list(c: &Case<'_>) {
    let rels = ["a", "b/1", "b/10", "b/2", "b/sub/x", "bx", "c.d"];
    for rel in rels {
        c.put(&c.key(rel), Bytes::from(rel)).await;
    }
    // Shares the case's prefix as a string but not as a directory.
    let sibling = format!("{}-other/x", c.prefix);
    c.put(&sibling, Bytes::from_static(b"sibling")).await;
    let keys = |rels: &[&str]| sorted(rels.iter().map(|rel| c.key(rel)));

    assert_eq!(c.list(&c.dir()).await, keys(&rels), "{c}: list of the whole case");
    assert_eq!(
        c.list(&c.key("b/")).await,
        keys(&["b/1", "b/10", "b/2", "b/sub/x"]),
        "{c}: list of a directory (byte order: 1 < 10 < 2)"
    );
    assert_eq!(
        c.list(&c.key("b")).await,
        keys(&["b/1", "b/10", "b/2", "b/sub/x", "bx"]),
        "{c}: list of a partial name"
    );
    assert_eq!(c.list(&c.key("a")).await, keys(&["a"]), "{c}: list of a full key");
    assert_eq!(c.list(&c.key("b/sub/")).await, keys(&["b/sub/x"]), "{c}: list nested");
    assert!(c.list(&c.key("zz/")).await.is_empty(), "{c}: list of a missing directory");
    assert!(c.list(&c.key("zz")).await.is_empty(), "{c}: list of a missing name");
    assert!(c.list(&c.key("a/")).await.is_empty(), "{c}: list below an object");
    let mut with_sibling = keys(&rels);
    with_sibling.push(sibling.clone());
    with_sibling.sort();
    assert_eq!(c.list(&c.prefix).await, with_sibling, "{c}: list without a trailing slash");

    c.delete(&sibling).await;
    c.cleanup().await;
}

async fn delete(c: &Case<'_>) {
    let (a, b) = (c.key("dir/a"), c.key("dir/b"));
    c.put(&a, Bytes::from_static(b"a")).await;
    c.put(&b, Bytes::from_static(b"b")).await;
    c.delete(&a).await;
    assert_eq!(c.get(&a).await, None, "{c}: get after delete");
    assert_eq!(c.head(&a).await, None, "{c}: head after delete");
    assert_eq!(c.get(&b).await.as_deref(), Some(&b"b"[..]), "{c}: delete kept the sibling");
    c.delete(&a).await;
    c.delete(&c.key("never/existed")).await;
    assert_eq!(c.list(&c.dir()).await, std::slice::from_ref(&b), "{c}: list after delete");
    c.delete(&b).await;
    assert!(c.list(&c.dir()).await.is_empty(), "{c}: list after deleting everything");
    c.put(&a, Bytes::from_static(b"again")).await;
    assert_eq!(c.get(&a).await.as_deref(), Some(&b"again"[..]), "{c}: put after delete");
    c.cleanup().await;
}

async fn delete_prefix(c: &Case<'_>) {
    for rel in ["x/1", "x/2", "x/sub/3", "xy/1", "y/1"] {
        c.put(&c.key(rel), Bytes::from(rel)).await;
    }
    let keys = |rels: &[&str]| sorted(rels.iter().map(|rel| c.key(rel)));
    c.delete_prefix(&c.key("x/")).await;
    assert_eq!(c.list(&c.dir()).await, keys(&["xy/1", "y/1"]), "{c}: delete_prefix of a directory");
    c.delete_prefix(&c.key("nothing/")).await;
    c.delete_prefix(&c.key("none")).await;
    assert_eq!(c.list(&c.dir()).await, keys(&["xy/1", "y/1"]), "{c}: delete_prefix of nothing");
    c.delete_prefix(&c.key("y")).await;
    assert_eq!(c.list(&c.dir()).await, keys(&["xy/1"]), "{c}: delete_prefix of a partial name");
    c.delete_prefix(&c.dir()).await;
    assert!(c.list(&c.dir()).await.is_empty(), "{c}: delete_prefix of everything");
    c.put(&c.key("x/1"), Bytes::from_static(b"again")).await;
    assert_eq!(c.get(&c.key("x/1")).await.as_deref(), Some(&b"again"[..]), "{c}: put after delete_prefix");
    c.cleanup().await;
}

async fn invalid_keys(c: &Case<'_>) {
    let too_long = c.key(&"a/".repeat(MAX_KEY_LEN / 2)) + "a";
    let long_segment = c.key(&"a".repeat(256));
    let bad = [
        "../x".to_owned(),
        "/abs".to_owned(),
        "a//b".to_owned(),
        "a/./b".to_owned(),
        ".hidden".to_owned(),
        String::new(),
        "a\\b".to_owned(),
        "a\0b".to_owned(),
        "a b".to_owned(),
        "C:/x".to_owned(),
        "ünicode".to_owned(),
        c.key("../../escape"),
        c.key("a/.."),
        c.key(".tmp-1234"),
        c.key("trailing/"),
        c.dir(),
        too_long,
        long_segment,
    ];
    for key in &bad {
        let s = c.store;
        c.invalid_key(&format!("put {key:?}"), s.put(key, Bytes::from_static(b"x")).await);
        c.invalid_key(&format!("put_new {key:?}"), s.put_new(key, Bytes::from_static(b"x")).await);
        c.invalid_key(&format!("get {key:?}"), s.get(key).await);
        c.invalid_key(&format!("get_range {key:?}"), s.get_range(key, 0, 1).await);
        c.invalid_key(&format!("head {key:?}"), s.head(key).await);
        c.invalid_key(&format!("delete {key:?}"), s.delete(key).await);
    }
    for prefix in ["../", "/", "/abs/", "a//", "a/../", "a/./", ".hidden/", "a\\b", "a\0", "x//"] {
        let s = c.store;
        c.invalid_key(&format!("list {prefix:?}"), s.list(prefix).await);
        c.invalid_key(&format!("delete_prefix {prefix:?}"), s.delete_prefix(prefix).await);
    }
    assert!(c.list(&c.dir()).await.is_empty(), "{c}: rejected writes stored nothing");
}

async fn longest_key(c: &Case<'_>) {
    // Fill up to exactly MAX_KEY_LEN bytes with segments of at most 200 bytes.
    let room = MAX_KEY_LEN - c.prefix.len();
    let segments = room.div_ceil(201);
    let letters = room - segments;
    let mut key = c.prefix.clone();
    for i in 0..segments {
        let n = letters / segments + usize::from(i < letters % segments);
        key.push('/');
        key.push_str(&"k".repeat(n));
    }
    assert_eq!(key.len(), MAX_KEY_LEN, "{c}: test setup");
    assert!(validate_key(&key).is_ok(), "{c}: test setup: {key}");
    c.put(&key, Bytes::from_static(b"long")).await;
    assert_eq!(c.get(&key).await.as_deref(), Some(&b"long"[..]), "{c}: the longest key round trip");
    assert_eq!(c.list(&c.dir()).await, [key.clone()], "{c}: the longest key is listed");
    c.invalid_key("put of a key one byte too long", c.store.put(&(key + "k"), Bytes::new()).await);
    c.cleanup().await;
}

async fn large_object(c: &Case<'_>) {
    const SIZE: usize = 8 << 20;
    let key = c.key("large");
    let body = Bytes::from(pseudo_random(SIZE, 2));
    c.put(&key, body.clone()).await;
    assert_eq!(c.head(&key).await, Some(len(&body)), "{c}: head of 8 MiB");
    let got = c.get(&key).await.expect("8 MiB object is missing");
    assert!(got == body, "{c}: 8 MiB round trip differs");
    let mid = SIZE / 2;
    let checks = [(mid - 3, mid + 5), (0, 1 << 20), (SIZE - 10, SIZE + 10), (1, SIZE)];
    for (start, end) in checks {
        let got = c.ok("get_range", c.range(&key, u64_of(start), u64_of(end)).await);
        let want = body.slice(start..end.min(SIZE));
        assert!(got.as_ref() == Some(&want), "{c}: get_range({start}, {end}) of 8 MiB differs");
    }
    c.cleanup().await;
}

async fn concurrent_puts(c: &Case<'_>) {
    let key = |i: u8| c.key(&format!("d{}/k{i:02}", i % 4));
    let puts = (0..32u8).map(|i| async move { c.put(&key(i), body_of(i, 1000 + usize::from(i))).await });
    join_all(puts.collect()).await;
    assert_eq!(c.list(&c.dir()).await, sorted((0..32).map(key)), "{c}: all concurrent puts listed");
    for i in 0..32u8 {
        assert_eq!(c.get(&key(i)).await, Some(body_of(i, 1000 + usize::from(i))), "{c}: body of concurrent put #{i}");
    }
    c.cleanup().await;
}

async fn put_new_race(c: &Case<'_>) {
    let key = c.key("contested/obj");
    let racers = (0..16u8).map(|i| {
        let key = key.clone();
        async move { (i, c.put_new(&key, body_of(i, 4096)).await) }
    });
    let winners: Vec<u8> =
        join_all(racers.collect()).await.into_iter().filter_map(|(i, won)| won.then_some(i)).collect();
    assert_eq!(winners.len(), 1, "{c}: put_new race must have exactly one winner, got {winners:?}");
    assert_eq!(c.get(&key).await, Some(body_of(winners[0], 4096)), "{c}: the winner's body");
    c.cleanup().await;
}

async fn atomic_overwrite(c: &Case<'_>) {
    // Body `i` is `i` repeated `size(i)` times, so a torn read is easy to spot.
    let size = |i: u8| (256 << 10) + usize::from(i) * 1000;
    let key = c.key("obj");
    c.put(&key, body_of(0, size(0))).await;
    let writers = (1..=8u8).map(Op::Write);
    let readers = (0..8).map(|_| Op::Read);
    let key = &key;
    let ops = writers.chain(readers).map(|op| async move {
        match op {
            Op::Write(i) => c.put(key, body_of(i, size(i))).await,
            Op::Read => {
                for _ in 0..16 {
                    let got = c.get(key).await.expect("object vanished during overwrites");
                    let first = got.first().copied().unwrap_or(0);
                    assert!(
                        got.len() == size(first) && got.iter().all(|&b| b == first),
                        "{c}: a reader saw a partial or mixed object ({} bytes)",
                        got.len()
                    );
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    join_all(ops.collect()).await;
    let last = c.get(key).await.expect("object missing after overwrites");
    let first = last.first().copied().unwrap_or(0);
    assert!(
        (1..=8).contains(&first) && last == body_of(first, size(first)),
        "{c}: the final object must be one writer's whole body"
    );
    c.cleanup().await;
}

#[derive(Clone, Copy)]
enum Op {
    Write(u8),
    Read,
}

async fn put_during_delete_prefix(c: &Case<'_>) {
    // Deleting prunes empty directories; puts into those directories must not fail.
    let area = c.key("area/");
    let ops = (0..5u8).map(|worker| {
        let area = area.clone();
        async move {
            for round in 0..20u8 {
                if worker == 0 {
                    c.delete_prefix(&area).await;
                } else {
                    let key = format!("{area}w{worker}/sub/r{round}");
                    c.put(&key, body_of(round, 100)).await;
                    if round % 3 == 0 {
                        c.delete(&key).await;
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    });
    join_all(ops.collect()).await;
    c.cleanup().await;
}

async fn check(c: &Case<'_>) {
    c.ok("check", c.store.check().await);
    assert!(c.list(&c.dir()).await.is_empty(), "{c}: check leaves nothing listed");
}

/// Polls every future of one task concurrently until all are done.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future completed")).collect()
}

fn body_of(byte: u8, size: usize) -> Bytes {
    Bytes::from(vec![byte; size])
}

/// Deterministic bytes without a short period (xorshift64).
fn pseudo_random(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn sorted(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort();
    keys
}

fn len(body: &[u8]) -> u64 {
    u64_of(body.len())
}

fn u64_of(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64")
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("system random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
