//! `chunk::open_chunk` and the incremental `ChunkOpener` on attacker-chosen chunk bytes
//! (from the relay or the bucket). Key and transfer id of vectors/chunk.json.
//!
//! Input: one control byte (bit 0: last-chunk flag; bits 1-2: chunk index from
//! `CHUNK_INDICES`; bits 3-7: where to split the input for the incremental opener), then
//! the sealed chunk.
//!
//! Properties: no panic; feeding the opener in three pieces gives exactly what opening
//! the whole chunk gives (same plaintext, or an error for both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_format::chunk::{ChunkOpener, open_chunk};
use veil_fuzz::{CHUNK_INDICES, chunk_key};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, sealed)) = data.split_first() else { return };
    let (key, tid) = chunk_key();
    let last = ctl & 1 == 1;
    let index = CHUNK_INDICES[usize::from((ctl >> 1) & 3)];
    let whole = open_chunk(&key, &tid, index, last, sealed);

    let a = sealed.len() * usize::from(ctl >> 3) / 32;
    let b = a + (sealed.len() - a) / 2;
    let mut opener = ChunkOpener::new(&key, &tid, index, last);
    let mut plain = Vec::new();
    let split = (|| {
        opener.feed(&sealed[..a], &mut plain)?;
        opener.feed(&sealed[a..b], &mut plain)?;
        opener.feed(&sealed[b..], &mut plain)?;
        opener.finish()
    })();
    match (&whole, split) {
        (Ok(p), Ok(())) => assert_eq!(p, &plain),
        (Err(_), Err(_)) => {}
        (w, s) => panic!("whole and split opening disagree: {w:?} vs {s:?}"),
    }
});
