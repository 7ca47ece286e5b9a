//! The chunk engine: each chunk is an independent XChaCha20-Poly1305 secretstream under
//! its own key `K_i = KDF(K, i, "veilchk1")`.
//!
//! Sealed chunk layout (see FORMAT.md):
//!
//! ```text
//! version (1 byte, 0x01) || secretstream header (24 bytes) || message*
//! message = ciphertext length (u32 little endian) || ciphertext (plaintext + 17 bytes)
//! ```
//!
//! Every message carries the associated data `transfer id (16) || chunk index (u64 LE) ||
//! last-chunk flag (1 byte)`; the last message of a chunk is tagged `TAG_FINAL` and no
//! message follows it. Reordering is caught by the per-index key and AD, splicing from
//! another transfer by the transfer id in the AD (and the key), truncation inside a chunk
//! by the missing `TAG_FINAL`, and a dropped last chunk by the last-chunk flag plus the
//! chunk count in the signed manifest.

use crate::error::{FormatError, Result};
use crate::kdf::{CTX_CHUNK, derive};
use crate::secret::{ContentKey, SecretKey, TransferId};
use dryoc::classic::crypto_secretstream_xchacha20poly1305::{
    Header, State, crypto_secretstream_xchacha20poly1305_init_pull, crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
};
use dryoc::constants::{
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_ABYTES as ABYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_HEADERBYTES as HEADERBYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_FINAL as TAG_FINAL,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_MESSAGE as TAG_MESSAGE,
};
use rayon::prelude::*;

/// Version byte at the start of every sealed chunk.
pub const CHUNK_VERSION: u8 = 1;
/// Bytes before the first message: version + secretstream header.
pub const CHUNK_PREFIX_LEN: usize = 1 + HEADERBYTES;
/// Per-message overhead: length prefix + secretstream tag byte + Poly1305 MAC.
pub const MESSAGE_OVERHEAD: usize = 4 + ABYTES;
/// Plaintext bytes per message when sealing a whole chunk of a file.
pub const FILE_MESSAGE_SIZE: usize = 64 * 1024;
/// Default chunk size for files.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;
/// Largest chunk size a manifest may declare.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Largest single message ciphertext an opener accepts.
pub const MAX_MESSAGE_CIPHERTEXT: usize = MAX_CHUNK_SIZE as usize + ABYTES;
/// Length of the associated data of a chunk message.
pub const CHUNK_AD_LEN: usize = 16 + 8 + 1;

/// The key of chunk `index`.
pub fn chunk_key(key: &ContentKey, index: u64) -> SecretKey {
    derive(key, index, CTX_CHUNK)
}

/// The associated data bound to every message of a chunk.
pub fn chunk_ad(tid: &TransferId, index: u64, last: bool) -> [u8; CHUNK_AD_LEN] {
    let mut ad = [0u8; CHUNK_AD_LEN];
    ad[..16].copy_from_slice(&tid.0);
    ad[16..24].copy_from_slice(&index.to_le_bytes());
    ad[24] = u8::from(last);
    ad
}

/// Size of a sealed chunk holding `plain_len` bytes, cut into messages of `message_size`.
pub fn sealed_len(plain_len: usize, message_size: usize) -> usize {
    let messages = plain_len.div_ceil(message_size.max(1)).max(1);
    CHUNK_PREFIX_LEN + plain_len + messages * MESSAGE_OVERHEAD
}

/// Number of chunks for `total` plaintext bytes (at least one: an empty transfer still
/// has a final chunk).
pub fn chunk_count(total: u64, chunk_size: u32) -> u64 {
    total.div_ceil(u64::from(chunk_size.max(1))).max(1)
}

fn random_header() -> Header {
    let mut h = [0u8; HEADERBYTES];
    crate::random_bytes(&mut h);
    h
}

fn init(key: &SecretKey, header: &Header) -> State {
    let mut state = State::new();
    // Pushing from a chosen header is exactly libsodium's init_push without its
    // random draw; used for reproducible test vectors.
    crypto_secretstream_xchacha20poly1305_init_pull(&mut state, header, key.expose());
    state
}

/// Seal one whole chunk of a file (messages of [`FILE_MESSAGE_SIZE`]).
pub fn seal_chunk(key: &ContentKey, tid: &TransferId, index: u64, last: bool, plain: &[u8]) -> Vec<u8> {
    seal_chunk_with(key, tid, index, last, plain, FILE_MESSAGE_SIZE, random_header())
}

/// Seal with an explicit message size and header. The header must be random in real
/// use; fixed headers exist for test vectors.
pub fn seal_chunk_with(
    key: &ContentKey,
    tid: &TransferId,
    index: u64,
    last: bool,
    plain: &[u8],
    message_size: usize,
    header: Header,
) -> Vec<u8> {
    let message_size = message_size.max(1);
    let ck = chunk_key(key, index);
    let ad = chunk_ad(tid, index, last);
    let mut state = init(&ck, &header);
    let mut out = vec![0u8; sealed_len(plain.len(), message_size)];
    out[0] = CHUNK_VERSION;
    out[1..CHUNK_PREFIX_LEN].copy_from_slice(&header);
    let mut pos = CHUNK_PREFIX_LEN;
    let mut pieces = plain.chunks(message_size).peekable();
    if pieces.peek().is_none() {
        push_into(&mut state, &mut out[pos..], &[], &ad, TAG_FINAL);
        return out;
    }
    while let Some(piece) = pieces.next() {
        let tag = if pieces.peek().is_none() { TAG_FINAL } else { TAG_MESSAGE };
        pos += push_into(&mut state, &mut out[pos..], piece, &ad, tag);
    }
    out
}

/// Encrypt one message into `out` (length prefix + ciphertext); returns bytes written.
fn push_into(state: &mut State, out: &mut [u8], msg: &[u8], ad: &[u8], tag: u8) -> usize {
    let ct_len = msg.len() + ABYTES;
    let total = 4 + ct_len;
    // ct_len fits in u32: messages are bounded by MAX_CHUNK_SIZE.
    out[..4].copy_from_slice(&(ct_len as u32).to_le_bytes());
    // Fails only when the output length is not message + ABYTES, which we computed.
    let _ = crypto_secretstream_xchacha20poly1305_push(state, &mut out[4..total], msg, Some(ad), tag);
    total
}

/// Open one whole sealed chunk. `last` must be what the manifest says about this index.
pub fn open_chunk(key: &ContentKey, tid: &TransferId, index: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>> {
    let mut opener = ChunkOpener::new(key, tid, index, last);
    let mut plain = Vec::with_capacity(sealed.len().saturating_sub(CHUNK_PREFIX_LEN));
    opener.feed(sealed, &mut plain)?;
    opener.finish()?;
    Ok(plain)
}

/// Seal many chunks on all cores. Each item is `(index, last, plaintext)`.
pub fn seal_chunks_parallel(key: &ContentKey, tid: &TransferId, chunks: &[(u64, bool, &[u8])]) -> Vec<Vec<u8>> {
    chunks.par_iter().map(|(i, last, p)| seal_chunk(key, tid, *i, *last, p)).collect()
}

/// Open many chunks on all cores. Each item is `(index, last, sealed)`.
pub fn open_chunks_parallel(key: &ContentKey, tid: &TransferId, chunks: &[(u64, bool, &[u8])]) -> Vec<Result<Vec<u8>>> {
    chunks.par_iter().map(|(i, last, s)| open_chunk(key, tid, *i, *last, s)).collect()
}

/// Streaming sealer: one chunk whose messages are pushed as data arrives (live streams).
pub struct ChunkSealer {
    state: State,
    ad: [u8; CHUNK_AD_LEN],
    index: u64,
    finished: bool,
}

impl std::fmt::Debug for ChunkSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSealer").field("index", &self.index).field("finished", &self.finished).finish()
    }
}

impl ChunkSealer {
    /// Start chunk `index`; returns the sealer and the chunk prefix (version + header)
    /// that must precede its messages.
    pub fn new(key: &ContentKey, tid: &TransferId, index: u64, last: bool) -> (Self, [u8; CHUNK_PREFIX_LEN]) {
        let header = random_header();
        let ck = chunk_key(key, index);
        let state = init(&ck, &header);
        let mut prefix = [0u8; CHUNK_PREFIX_LEN];
        prefix[0] = CHUNK_VERSION;
        prefix[1..].copy_from_slice(&header);
        (Self { state, ad: chunk_ad(tid, index, last), index, finished: false }, prefix)
    }

    /// Seal one message (length-prefixed). `final_message` closes the chunk.
    pub fn push(&mut self, msg: &[u8], final_message: bool) -> Result<Vec<u8>> {
        if self.finished {
            return Err(FormatError::TrailingData { index: self.index });
        }
        if msg.len() > MAX_CHUNK_SIZE as usize {
            return Err(FormatError::TooLarge {
                what: "message",
                size: msg.len() as u64,
                limit: u64::from(MAX_CHUNK_SIZE),
            });
        }
        let mut out = vec![0u8; 4 + msg.len() + ABYTES];
        let tag = if final_message { TAG_FINAL } else { TAG_MESSAGE };
        push_into(&mut self.state, &mut out, msg, &self.ad, tag);
        self.finished = final_message;
        Ok(out)
    }

    /// Whether the final message was pushed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Incremental opener: feed sealed bytes in any split; plaintext comes out message by
/// message. Call [`ChunkOpener::finish`] at the end: a chunk without its final message
/// is an error.
pub struct ChunkOpener {
    key: SecretKey,
    ad: [u8; CHUNK_AD_LEN],
    index: u64,
    state: Option<State>,
    buf: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for ChunkOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkOpener").field("index", &self.index).field("finished", &self.finished).finish()
    }
}

impl ChunkOpener {
    /// Open chunk `index` of transfer `tid` under content key `key`.
    pub fn new(key: &ContentKey, tid: &TransferId, index: u64, last: bool) -> Self {
        Self {
            key: chunk_key(key, index),
            ad: chunk_ad(tid, index, last),
            index,
            state: None,
            buf: Vec::new(),
            finished: false,
        }
    }

    /// Feed sealed bytes; appends every completed message's plaintext to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.buf.is_empty() {
            let used = self.drain(data, out)?;
            self.buf.extend_from_slice(&data[used..]);
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        let used = self.drain(&buf, out)?;
        buf.drain(..used);
        self.buf = buf;
        Ok(())
    }

    /// Open every complete unit at the start of `data`; returns bytes consumed.
    fn drain(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let mut pos = 0;
        loop {
            if self.finished {
                if pos < data.len() {
                    return Err(FormatError::TrailingData { index: self.index });
                }
                return Ok(pos);
            }
            let n = self.step(&data[pos..], out)?;
            if n == 0 {
                return Ok(pos);
            }
            pos += n;
        }
    }

    /// Process one complete unit at the start of `data`; returns bytes consumed (0 if incomplete).
    fn step(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        match &mut self.state {
            None => {
                if data.len() < CHUNK_PREFIX_LEN {
                    return Ok(0);
                }
                if data[0] != CHUNK_VERSION {
                    return Err(FormatError::UnsupportedVersion { what: "chunk", version: data[0] });
                }
                let mut header = [0u8; HEADERBYTES];
                header.copy_from_slice(&data[1..CHUNK_PREFIX_LEN]);
                self.state = Some(init(&self.key, &header));
                Ok(CHUNK_PREFIX_LEN)
            }
            Some(state) => {
                if data.len() < 4 {
                    return Ok(0);
                }
                let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
                if len < ABYTES {
                    return Err(FormatError::Malformed { what: "chunk message", reason: "shorter than its tag" });
                }
                if len > MAX_MESSAGE_CIPHERTEXT {
                    return Err(FormatError::TooLarge {
                        what: "message",
                        size: len as u64,
                        limit: MAX_MESSAGE_CIPHERTEXT as u64,
                    });
                }
                if data.len() < 4 + len {
                    return Ok(0);
                }
                let ct = &data[4..4 + len];
                let mlen = len - ABYTES;
                let start = out.len();
                out.resize(start + mlen, 0);
                let mut tag = 0u8;
                let res =
                    crypto_secretstream_xchacha20poly1305_pull(state, &mut out[start..], &mut tag, ct, Some(&self.ad));
                if res.is_err() {
                    out.truncate(start);
                    return Err(FormatError::DecryptionFailed);
                }
                match tag {
                    TAG_FINAL => self.finished = true,
                    TAG_MESSAGE => {}
                    _ => {
                        out.truncate(start);
                        return Err(FormatError::Malformed {
                            what: "chunk message",
                            reason: "unexpected secretstream tag",
                        });
                    }
                }
                Ok(4 + len)
            }
        }
    }

    /// End of input: succeeds only if the final message was seen and nothing is left over.
    pub fn finish(self) -> Result<()> {
        if !self.finished {
            return Err(FormatError::ChunkTruncated { index: self.index });
        }
        if !self.buf.is_empty() {
            return Err(FormatError::TrailingData { index: self.index });
        }
        Ok(())
    }

    /// Whether the final message has been opened.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// A single-message secretstream envelope (`header || ciphertext`, tagged FINAL) used for
/// manifests, key delivery, ticket wraps and sealed boxes.
pub fn envelope_seal(key: &SecretKey, ad: &[u8], plain: &[u8]) -> Vec<u8> {
    envelope_seal_with(key, ad, plain, random_header())
}

/// [`envelope_seal`] with a chosen header (test vectors only).
pub fn envelope_seal_with(key: &SecretKey, ad: &[u8], plain: &[u8], header: Header) -> Vec<u8> {
    let mut state = init(key, &header);
    let mut out = vec![0u8; HEADERBYTES + plain.len() + ABYTES];
    out[..HEADERBYTES].copy_from_slice(&header);
    // Output length is exactly message + ABYTES.
    let _ = crypto_secretstream_xchacha20poly1305_push(&mut state, &mut out[HEADERBYTES..], plain, Some(ad), TAG_FINAL);
    out
}

/// Open an envelope made by [`envelope_seal`].
pub fn envelope_open(key: &SecretKey, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < HEADERBYTES + ABYTES {
        return Err(FormatError::Truncated { what: "envelope", need: HEADERBYTES + ABYTES, have: sealed.len() });
    }
    let mut header = [0u8; HEADERBYTES];
    header.copy_from_slice(&sealed[..HEADERBYTES]);
    let mut state = init(key, &header);
    let ct = &sealed[HEADERBYTES..];
    let mut out = vec![0u8; ct.len() - ABYTES];
    let mut tag = 0u8;
    crypto_secretstream_xchacha20poly1305_pull(&mut state, &mut out, &mut tag, ct, Some(ad))
        .map_err(|_| FormatError::DecryptionFailed)?;
    if tag != TAG_FINAL {
        return Err(FormatError::DecryptionFailed);
    }
    Ok(out)
}
