//! The S3 store against a real Garage 2.5.0 on loopback: the shared conformance suite,
//! startup errors, large objects, prefixes, and a server restart.
//!
//! Needs the Garage binary (`.ci/install-garage`); each test starts its own server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use veil_store::{Store, StoreError};
use veil_store_s3::testing::{Garage, random_hex};
use veil_store_s3::{S3Credentials, S3Store};

async fn connect(garage: &Garage, prefix: &str) -> S3Store {
    S3Store::connect(garage.s3_config(prefix)).await.unwrap_or_else(|e| panic!("connect to Garage: {e}"))
}

fn message(result: Result<S3Store, StoreError>) -> String {
    let err = result.expect_err("connect must fail");
    let text = err.to_string();
    assert!(!text.contains('\n'), "error is not one line: {text:?}");
    println!("startup error: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_prefix() {
    let garage = Garage::start().await;
    let store = connect(&garage, &format!("veil-{}/", random_hex(4))).await;
    assert!(!store.conditional_writes(), "Garage 2.5.0 ignores If-None-Match; the probe must notice");
    veil_store::conformance::run_all(&store).await;
    veil_store::conformance::run_spawned(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_without_prefix() {
    let garage = Garage::start().await;
    let store = connect(&garage, "").await;
    veil_store::conformance::run_all(&store).await;
    veil_store::conformance::run_spawned(Arc::new(store)).await;
    assert!(store_is_empty(&garage).await, "the suite and the probe leave nothing behind");
}

async fn store_is_empty(garage: &Garage) -> bool {
    connect(garage, "").await.list("").await.unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_are_one_clear_line() {
    let garage = Garage::start().await;
    let endpoint = garage.endpoint();

    let mut cfg = garage.s3_config("");
    cfg.bucket = "no-such-bucket".to_owned();
    let text = message(S3Store::connect(cfg).await);
    assert!(text.contains(&format!("bucket 'no-such-bucket' does not exist at {endpoint}")), "{text}");

    let mut cfg = garage.s3_config("");
    cfg.credentials =
        Some(S3Credentials { access_key_id: garage.access_key().to_owned(), secret_access_key: random_hex(32) });
    let text = message(S3Store::connect(cfg).await);
    assert!(
        text.contains(&format!("access denied by {endpoint}: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")),
        "{text}"
    );

    let mut cfg = garage.s3_config("");
    cfg.credentials =
        Some(S3Credentials { access_key_id: format!("GK{}", random_hex(12)), secret_access_key: random_hex(32) });
    let text = message(S3Store::connect(cfg).await);
    assert!(text.contains(&format!("access denied by {endpoint}")), "unknown key id: {text}");

    let mut cfg = garage.s3_config("");
    cfg.region = "us-east-1".to_owned();
    let text = message(S3Store::connect(cfg).await);
    assert!(text.contains("region"), "wrong region: {text}");

    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = garage.s3_config("");
    cfg.endpoint = Some(format!("http://127.0.0.1:{closed}"));
    let started = std::time::Instant::now();
    let result = S3Store::connect(cfg).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    let text = message(result);
    assert!(text.contains(&format!("cannot reach http://127.0.0.1:{closed}: connection refused")), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "gave up after {:?}", started.elapsed());

    let mut cfg = garage.s3_config("");
    cfg.endpoint = Some("127.0.0.1:9".to_owned());
    let text = message(S3Store::connect(cfg).await);
    assert!(text.contains("must start with http:// or https://"), "{text}");

    let mut cfg = garage.s3_config("");
    cfg.prefix = "../x".to_owned();
    let text = message(S3Store::connect(cfg).await);
    assert!(text.contains("invalid S3 key prefix"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_round_trip_and_ranges() {
    const SIZE: usize = 16 << 20;
    let garage = Garage::start().await;
    let store = connect(&garage, "large/").await;
    let body: Bytes = (0..SIZE).map(|i| u8::try_from((i * 7 + i / 251) % 256).unwrap()).collect::<Vec<u8>>().into();
    let key = "t/0123abcd/c/00000000";
    store.put(key, body.clone()).await.unwrap();
    assert_eq!(store.head(key).await.unwrap(), Some(SIZE as u64));
    let got = store.get(key).await.unwrap().unwrap();
    assert!(got == body, "16 MiB round trip differs");
    for (start, end) in [(0, 1), (5 << 20, (5 << 20) + 12345), (SIZE - 100, SIZE + 100), (SIZE, SIZE), (1, SIZE)] {
        let got = store.get_range(key, start as u64, end as u64).await.unwrap().unwrap();
        assert!(got == body.slice(start..end.min(SIZE)), "range {start}..{end}");
    }
    assert!(matches!(store.get_range(key, SIZE as u64 + 1, SIZE as u64 + 2).await, Err(StoreError::InvalidRange)));
    store.delete(key).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_stores_sharing_a_bucket() {
    let garage = Garage::start().await;
    let a = connect(&garage, "relay-a").await;
    let b = connect(&garage, "relay-b/").await;
    let root = connect(&garage, "").await;
    assert_eq!(a.prefix(), "relay-a/");
    a.put("t/1/x", Bytes::from_static(b"a")).await.unwrap();
    b.put("t/1/x", Bytes::from_static(b"b")).await.unwrap();
    assert_eq!(a.list("").await.unwrap(), ["t/1/x"]);
    assert_eq!(b.get("t/1/x").await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(root.list("").await.unwrap(), ["relay-a/t/1/x", "relay-b/t/1/x"]);
    a.delete_prefix("").await.unwrap();
    assert!(a.list("").await.unwrap().is_empty());
    assert_eq!(b.list("t/").await.unwrap(), ["t/1/x"]);
    assert_eq!(root.list("").await.unwrap(), ["relay-b/t/1/x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_of_more_than_one_batch() {
    let garage = Garage::start().await;
    let store = Arc::new(connect(&garage, "many/").await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1100u32 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.put(&format!("t/{:04}", i), Bytes::from_static(b"x")).await });
        while tasks.len() >= 16 {
            tasks.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    assert_eq!(store.list("t/").await.unwrap().len(), 1100, "listing pages past 1000 keys");
    store.delete_prefix("t/").await.unwrap();
    assert!(store.list("t/").await.unwrap().is_empty());
    assert!(store.batch_delete(), "Garage 2.5.0 accepts DeleteObjects with the SDK's CRC32 header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let mut garage = Garage::start().await;
    let store = connect(&garage, "restart/").await;
    store.put("t/1/before", Bytes::from_static(b"kept")).await.unwrap();
    store.check().await.unwrap();

    garage.stop();
    let endpoint = garage.endpoint();
    let refused = format!("cannot reach {endpoint}: connection refused");
    let started = std::time::Instant::now();
    for (what, result) in [
        ("put", store.put("t/1/during", Bytes::from_static(b"x")).await.map(|_| ())),
        ("get", store.get("t/1/before").await.map(|_| ())),
        ("list", store.list("t/").await.map(|_| ())),
        ("check", store.check().await),
    ] {
        match result {
            Err(StoreError::Unavailable(text)) => {
                println!("while down: {text}");
                assert!(text.contains(&refused) && !text.contains('\n'), "{what}: {text}");
            }
            other => panic!("{what} while Garage is down must be Unavailable, got {other:?}"),
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "failing took {:?}", started.elapsed());

    garage.restart().await;
    store.check().await.unwrap();
    assert_eq!(store.get("t/1/before").await.unwrap().as_deref(), Some(&b"kept"[..]));
    store.put("t/1/after", Bytes::from_static(b"new")).await.unwrap();
    assert_eq!(store.list("t/").await.unwrap(), ["t/1/after", "t/1/before"]);
    assert!(store.put_new("t/1/fresh", Bytes::from_static(b"1")).await.unwrap());
    assert!(!store.put_new("t/1/fresh", Bytes::from_static(b"2")).await.unwrap());
    store.delete_prefix("").await.unwrap();
}
