#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Chunk engine: round trips at the edges and property tests for every kind of tampering.

use proptest::prelude::*;
use veil_format::chunk::*;
use veil_format::{ContentKey, FormatError, TransferId};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

/// Split `plain` into chunks of `cs`, seal each, and open them back in order.
fn roundtrip(total: usize, cs: usize) {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let plain = data(total);
    let count = chunk_count(total as u64, cs as u32) as usize;
    let mut out = Vec::new();
    for i in 0..count {
        let piece = &plain[(i * cs).min(total)..((i + 1) * cs).min(total)];
        let last = i + 1 == count;
        let sealed = seal_chunk(&key, &tid, i as u64, last, piece);
        assert_eq!(sealed.len(), sealed_len(piece.len(), FILE_MESSAGE_SIZE));
        out.extend(open_chunk(&key, &tid, i as u64, last, &sealed).unwrap());
    }
    assert_eq!(out, plain, "total {total} chunk size {cs}");
}

#[test]
fn roundtrip_sizes() {
    let cs = 256 * 1024;
    for total in [0, 1, cs - 1, cs, cs + 1, 3 * cs + 17, FILE_MESSAGE_SIZE, FILE_MESSAGE_SIZE + 1] {
        roundtrip(total, cs);
    }
    roundtrip(5 * 1024 * 1024 + 3, DEFAULT_CHUNK_SIZE as usize);
}

#[test]
fn incremental_opener_any_split() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let plain = data(300_000);
    let sealed = seal_chunk_with(&key, &tid, 4, false, &plain, 10_000, [7u8; 24]);
    for step in [1usize, 3, 4, 25, 26, 1000, 10_021, 65_536] {
        let mut o = ChunkOpener::new(&key, &tid, 4, false);
        let mut out = Vec::new();
        for piece in sealed.chunks(step) {
            o.feed(piece, &mut out).unwrap();
        }
        o.finish().unwrap();
        assert_eq!(out, plain, "split {step}");
    }
}

#[test]
fn streaming_sealer_matches_opener() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let (mut s, prefix) = ChunkSealer::new(&key, &tid, 9, false);
    let mut wire = prefix.to_vec();
    for m in [&b"a"[..], b"", b"hello world"] {
        wire.extend(s.push(m, false).unwrap());
    }
    wire.extend(s.push(b"end", true).unwrap());
    assert!(s.push(b"x", false).is_err(), "nothing after the final message");
    let out = open_chunk(&key, &tid, 9, false, &wire).unwrap();
    assert_eq!(out, b"ahello worldend");
}

#[test]
fn truncated_chunk_is_rejected() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let sealed = seal_chunk_with(&key, &tid, 0, true, &data(50_000), 10_000, [1u8; 24]);
    // Cut exactly at a message boundary: every message authenticates, but FINAL is missing.
    let cut = CHUNK_PREFIX_LEN + 4 * (10_000 + MESSAGE_OVERHEAD);
    assert_eq!(open_chunk(&key, &tid, 0, true, &sealed[..cut]), Err(FormatError::ChunkTruncated { index: 0 }));
    // Cut inside a message.
    assert!(open_chunk(&key, &tid, 0, true, &sealed[..cut + 10]).is_err());
    // Empty input and a bare header.
    assert!(open_chunk(&key, &tid, 0, true, &[]).is_err());
    assert!(open_chunk(&key, &tid, 0, true, &sealed[..CHUNK_PREFIX_LEN]).is_err());
}

#[test]
fn trailing_and_unknown_version() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let mut sealed = seal_chunk(&key, &tid, 0, true, b"abc");
    sealed.push(0);
    assert_eq!(open_chunk(&key, &tid, 0, true, &sealed), Err(FormatError::TrailingData { index: 0 }));
    sealed.pop();
    sealed[0] = 2;
    assert_eq!(
        open_chunk(&key, &tid, 0, true, &sealed),
        Err(FormatError::UnsupportedVersion { what: "chunk", version: 2 })
    );
}

#[test]
fn oversized_declared_length_is_rejected_without_allocating() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let mut sealed = seal_chunk(&key, &tid, 0, true, b"abc");
    sealed[CHUNK_PREFIX_LEN..CHUNK_PREFIX_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(open_chunk(&key, &tid, 0, true, &sealed), Err(FormatError::TooLarge { .. })));
    sealed[CHUNK_PREFIX_LEN..CHUNK_PREFIX_LEN + 4].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(open_chunk(&key, &tid, 0, true, &sealed), Err(FormatError::Malformed { .. })));
}

#[test]
fn parallel_paths_agree() {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let chunks: Vec<Vec<u8>> = (0..8).map(|i| data(100_000 + i)).collect();
    let items: Vec<(u64, bool, &[u8])> =
        chunks.iter().enumerate().map(|(i, c)| (i as u64, i == 7, c.as_slice())).collect();
    let sealed = seal_chunks_parallel(&key, &tid, &items);
    let opened: Vec<(u64, bool, &[u8])> =
        sealed.iter().enumerate().map(|(i, c)| (i as u64, i == 7, c.as_slice())).collect();
    for (i, r) in open_chunks_parallel(&key, &tid, &opened).into_iter().enumerate() {
        assert_eq!(r.unwrap(), chunks[i]);
    }
}

#[test]
fn envelope_roundtrip_and_tamper() {
    let key = veil_format::SecretKey::random();
    let e = envelope_seal(&key, b"ad", b"secret");
    assert_eq!(envelope_open(&key, b"ad", &e).unwrap(), b"secret");
    assert_eq!(envelope_open(&key, b"other", &e), Err(FormatError::DecryptionFailed));
    let mut t = e.clone();
    t[30] ^= 1;
    assert_eq!(envelope_open(&key, b"ad", &t), Err(FormatError::DecryptionFailed));
    assert!(envelope_open(&key, b"ad", &e[..20]).is_err());
}

/// A small transfer: 4 chunks of 1000 bytes (messages of 300), sealed once per case.
struct Fixture {
    key: ContentKey,
    tid: TransferId,
    chunks: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let key = ContentKey::random();
    let tid = TransferId::random();
    let plain = data(3500);
    let chunks = plain
        .chunks(1000)
        .enumerate()
        .map(|(i, p)| seal_chunk_with(&key, &tid, i as u64, i == 3, p, 300, [i as u8; 24]))
        .collect();
    Fixture { key, tid, chunks }
}

/// Open a sequence of sealed chunks as a receiver that knows the chunk count.
fn receive(f: &Fixture, key: &ContentKey, tid: &TransferId, chunks: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    if chunks.len() != 4 {
        return Err(FormatError::Malformed { what: "transfer", reason: "wrong chunk count" });
    }
    let _ = f;
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        out.extend(open_chunk(key, tid, i as u64, i == 3, c)?);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bit_flip_is_rejected(chunk in 0usize..4, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = fixture();
        let mut chunks = f.chunks.clone();
        let p = pos.index(chunks[chunk].len());
        chunks[chunk][p] ^= 1 << bit;
        prop_assert!(receive(&f, &f.key, &f.tid, &chunks).is_err());
    }

    #[test]
    fn reordering_is_rejected(a in 0usize..4, b in 0usize..4) {
        prop_assume!(a != b);
        let f = fixture();
        let mut chunks = f.chunks.clone();
        chunks.swap(a, b);
        prop_assert!(receive(&f, &f.key, &f.tid, &chunks).is_err());
    }

    #[test]
    fn duplicated_chunk_is_rejected(src in 0usize..4, dst in 0usize..4) {
        prop_assume!(src != dst);
        let f = fixture();
        let mut chunks = f.chunks.clone();
        chunks[dst] = chunks[src].clone();
        prop_assert!(receive(&f, &f.key, &f.tid, &chunks).is_err());
    }

    #[test]
    fn dropped_chunk_is_rejected(drop in 0usize..4) {
        let f = fixture();
        let mut chunks = f.chunks.clone();
        chunks.remove(drop);
        // Even a receiver that only counts to what it got: the new last chunk is not
        // sealed as last, and later chunks sit at the wrong index.
        let mut out = Ok(());
        for (i, c) in chunks.iter().enumerate() {
            if let Err(e) = open_chunk(&f.key, &f.tid, i as u64, i + 1 == chunks.len(), c) {
                out = Err(e);
            }
        }
        prop_assert!(out.is_err());
    }

    #[test]
    fn chunk_from_another_transfer_or_key_is_rejected(idx in 0usize..4, other_tid in any::<bool>()) {
        let f = fixture();
        let g = fixture();
        let mut chunks = f.chunks.clone();
        chunks[idx] = if other_tid {
            // Same key, another transfer id: the AD differs.
            seal_chunk(&f.key, &g.tid, idx as u64, idx == 3, b"spliced")
        } else {
            g.chunks[idx].clone()
        };
        prop_assert!(receive(&f, &f.key, &f.tid, &chunks).is_err());
    }

    #[test]
    fn truncation_anywhere_is_rejected(chunk in 0usize..4, cut in any::<prop::sample::Index>()) {
        let f = fixture();
        let mut chunks = f.chunks.clone();
        let len = chunks[chunk].len();
        chunks[chunk].truncate(cut.index(len));
        prop_assert!(receive(&f, &f.key, &f.tid, &chunks).is_err());
    }

    #[test]
    fn opener_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let key = ContentKey::random();
        let tid = TransferId::random();
        let _ = open_chunk(&key, &tid, 0, true, &bytes);
        let _ = envelope_open(&key, b"", &bytes);
    }
}
