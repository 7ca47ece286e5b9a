//! Throughput of the S3 store against Garage on loopback: 256 objects of 1 MiB, put then
//! get, sequentially and with 8 requests in flight. Ignored by default; run with
//!
//! ```text
//! cargo test --release -p veil-store-s3 --test throughput -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use veil_store::Store;
use veil_store_s3::S3Store;
use veil_store_s3::testing::Garage;

const COUNT: usize = 256;
const SIZE: usize = 1 << 20;

fn body(i: usize) -> Bytes {
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect::<Vec<u8>>()
        .into()
}

fn report(what: &str, elapsed: Duration) {
    let mb = (COUNT * SIZE) as f64 / 1e6;
    println!(
        "{what:<28} {:>7.2} s  {:>7.1} MB/s  {:>6.1} ms/object",
        elapsed.as_secs_f64(),
        mb / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / COUNT as f64
    );
}

async fn run(store: &Arc<S3Store>, bodies: &Arc<Vec<Bytes>>, in_flight: usize, round: &str) {
    let key = |i: usize| format!("t/{round}/c/{i:08}");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..COUNT {
        let (store, bodies, key) = (Arc::clone(store), Arc::clone(bodies), key(i));
        tasks.spawn(async move { store.put(&key, bodies[i].clone()).await.unwrap() });
        while tasks.len() >= in_flight {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    report(&format!("put, {in_flight} in flight"), started.elapsed());

    let started = Instant::now();
    for i in 0..COUNT {
        let (store, bodies, key) = (Arc::clone(store), Arc::clone(bodies), key(i));
        tasks.spawn(async move {
            let got = store.get(&key).await.unwrap().unwrap();
            assert!(got == bodies[i], "object {i} differs");
        });
        while tasks.len() >= in_flight {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    report(&format!("get, {in_flight} in flight"), started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn put_get_256_mib() {
    let garage = Garage::start().await;
    let store = Arc::new(S3Store::connect(garage.s3_config("bench/")).await.unwrap());
    let bodies = Arc::new((0..COUNT).map(body).collect::<Vec<_>>());
    println!("{COUNT} objects of {} KiB against Garage at {}", SIZE >> 10, garage.endpoint());
    run(&store, &bodies, 1, "seq").await;
    run(&store, &bodies, 8, "par").await;
    store.delete_prefix("").await.unwrap();
}
