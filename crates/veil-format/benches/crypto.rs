//! Criterion benchmarks of veil's crypto core.
//!
//! * `secretstream_raw`: dryoc's classic secretstream API on 1 MiB messages, the reference
//!   ceiling for one core (push into a preallocated buffer; pull from a fresh stream).
//! * `chunk_1core`: veil's chunk engine, one 1 MiB chunk (16 messages of 64 KiB) per call.
//! * `chunk_all_cores`: 256 chunks of 1 MiB (256 MiB) sealed and opened with rayon.
//! * `identity_argon2id`: deriving an identity at the default parameters (`KdfParams::V1`).
//! * `pq`: X-Wing key generation from a 32-byte subkey, encapsulation and decapsulation
//!   (identities and sealed keys); ML-KEM-768 key generation, encapsulation and
//!   decapsulation (the code-mode hybrid step); a whole version 2 sealed key, sealed and
//!   opened; a key bundle verified.
//!
//! Run with `cargo bench -p veil-benches -j2 -- --noplot`.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use dryoc::classic::crypto_secretstream_xchacha20poly1305::{
    State, crypto_secretstream_xchacha20poly1305_init_pull, crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull, crypto_secretstream_xchacha20poly1305_push,
};
use dryoc::constants::{
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_ABYTES as ABYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_HEADERBYTES as HEADERBYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_FINAL as TAG_FINAL,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_MESSAGE as TAG_MESSAGE,
};
use std::hint::black_box;
use std::time::Duration;
use veil_format::chunk::{DEFAULT_CHUNK_SIZE, open_chunk, open_chunks_parallel, seal_chunk, seal_chunks_parallel};
use veil_format::identity::{Identity, KdfParams};
use veil_format::pq::{KeyBundle, MlKemSecret, XWingSecret, mlkem_encapsulate};
use veil_format::sealed::{open_sealed, seal_to};
use veil_format::{ContentKey, SecretKey, TransferId};

const MIB: usize = 1 << 20;
const CHUNK: usize = DEFAULT_CHUNK_SIZE as usize;
const PARALLEL_CHUNKS: usize = 256;

/// Deterministic, incompressible-looking bytes.
fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn secretstream_raw(c: &mut Criterion) {
    let key = [7u8; 32];
    let msg = data(MIB);
    let mut g = c.benchmark_group("secretstream_raw");
    g.throughput(Throughput::Bytes(MIB as u64)).measurement_time(Duration::from_secs(5));

    let mut state = State::new();
    let mut header = [0u8; HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_init_push(&mut state, &mut header, &key);
    let mut ct = vec![0u8; MIB + ABYTES];
    g.bench_function("push_1MiB", |b| {
        b.iter(|| {
            let r = crypto_secretstream_xchacha20poly1305_push(&mut state, &mut ct, black_box(&msg), None, TAG_MESSAGE);
            assert!(r.is_ok());
        })
    });

    // One sealed message; each iteration opens it from a fresh pull state (HChaCha20 only).
    let mut push = State::new();
    crypto_secretstream_xchacha20poly1305_init_push(&mut push, &mut header, &key);
    let r = crypto_secretstream_xchacha20poly1305_push(&mut push, &mut ct, &msg, None, TAG_FINAL);
    assert!(r.is_ok());
    let mut out = vec![0u8; MIB];
    g.bench_function("pull_1MiB", |b| {
        b.iter(|| {
            let mut pull = State::new();
            crypto_secretstream_xchacha20poly1305_init_pull(&mut pull, &header, &key);
            let mut tag = 0u8;
            let r = crypto_secretstream_xchacha20poly1305_pull(&mut pull, &mut out, &mut tag, black_box(&ct), None);
            assert!(r.is_ok() && tag == TAG_FINAL);
        })
    });
    g.finish();
}

fn chunk_one_core(c: &mut Criterion) {
    let (key, tid) = (ContentKey::random(), TransferId::random());
    let plain = data(CHUNK);
    let sealed = seal_chunk(&key, &tid, 3, false, &plain);
    let mut g = c.benchmark_group("chunk_1core");
    g.throughput(Throughput::Bytes(CHUNK as u64)).measurement_time(Duration::from_secs(5));
    g.bench_function("seal_1MiB", |b| b.iter(|| seal_chunk(&key, &tid, 3, false, black_box(&plain))));
    g.bench_function("open_1MiB", |b| {
        b.iter(|| {
            let r = open_chunk(&key, &tid, 3, false, black_box(&sealed));
            assert!(r.is_ok());
            r
        })
    });
    g.finish();
}

fn chunk_all_cores(c: &mut Criterion) {
    let (key, tid) = (ContentKey::random(), TransferId::random());
    let plain = data(PARALLEL_CHUNKS * CHUNK);
    let last = PARALLEL_CHUNKS - 1;
    let items: Vec<(u64, bool, &[u8])> =
        plain.chunks(CHUNK).enumerate().map(|(i, p)| (i as u64, i == last, p)).collect();
    let sealed = seal_chunks_parallel(&key, &tid, &items);
    let sealed_items: Vec<(u64, bool, &[u8])> =
        sealed.iter().enumerate().map(|(i, s)| (i as u64, i == last, s.as_slice())).collect();

    let mut g = c.benchmark_group("chunk_all_cores");
    g.throughput(Throughput::Bytes(plain.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(8));
    g.bench_function(format!("seal_256MiB_{}threads", rayon::current_num_threads()), |b| {
        b.iter(|| seal_chunks_parallel(&key, &tid, black_box(&items)))
    });
    g.bench_function(format!("open_256MiB_{}threads", rayon::current_num_threads()), |b| {
        b.iter(|| {
            let r = open_chunks_parallel(&key, &tid, black_box(&sealed_items));
            assert!(r.iter().all(Result::is_ok));
            r
        })
    });
    g.finish();
}

fn identity_argon2id(c: &mut Criterion) {
    let p = KdfParams::V1;
    let mut g = c.benchmark_group("identity_argon2id");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(12));
    g.bench_function(format!("derive_v1_{}MiB_t{}_p{}", p.m_kib / 1024, p.t, p.p), |b| {
        b.iter(|| {
            let id = Identity::derive(black_box("cactus-oblong-morphing-shrank-tapioca"), "alice", p);
            assert!(id.is_ok());
            id
        })
    });
    g.finish();
}

fn pq(c: &mut Criterion) {
    let mut g = c.benchmark_group("pq");
    let sk = SecretKey::from_bytes([7; 32]);
    g.bench_function("xwing_keygen", |b| b.iter(|| XWingSecret::from_bytes(black_box(&sk)).public()));
    let xs = XWingSecret::from_bytes(&sk);
    let xp = xs.public();
    g.bench_function("xwing_encaps", |b| b.iter(|| xp.encapsulate()));
    let Ok((ct, _)) = xp.encapsulate() else { return };
    g.bench_function("xwing_decaps", |b| b.iter(|| xs.decapsulate(black_box(&ct))));
    g.bench_function("mlkem768_keygen", |b| b.iter(|| MlKemSecret::random().public()));
    let ms = MlKemSecret::random();
    let ek = ms.public();
    g.bench_function("mlkem768_encaps", |b| b.iter(|| mlkem_encapsulate(black_box(&ek))));
    let Ok((mct, _)) = mlkem_encapsulate(&ek) else { return };
    g.bench_function("mlkem768_decaps", |b| b.iter(|| ms.decapsulate(black_box(&mct))));
    let (alice, bob) = (Identity::from_seed(SecretKey::from_bytes([1; 32]), KdfParams::V1), Identity::ephemeral());
    let (tid, key) = (TransferId::random(), ContentKey::random());
    let bundle = bob.key_bundle();
    g.bench_function("sealed_v2_seal", |b| b.iter(|| seal_to(&bob.public(), &bundle, alice.signing_key(), &tid, &key)));
    let Ok(sealed) = seal_to(&bob.public(), &bundle, alice.signing_key(), &tid, &key) else { return };
    g.bench_function("sealed_v2_open", |b| b.iter(|| open_sealed(&bob, black_box(&sealed))));
    let encoded = bundle.encode();
    g.bench_function("bundle_decode_verify", |b| b.iter(|| KeyBundle::decode(black_box(&encoded))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2));
    targets = secretstream_raw, chunk_one_core, chunk_all_cores, identity_argon2id, pq
}
criterion_main!(benches);
