// The receiver's half of veil's format (crates/veil-format/FORMAT.md): tickets,
// capabilities, the manifest (open, signature check, invariants) and chunks. Primitives
// come from libsodium (secretstream, KDF's BLAKE2b, Ed25519, Argon2id; BLAKE3 of the
// files is hash-wasm's, in receive.js); only base32 and postcard decoding are written
// here, pinned by the vectors.
import sodiumModule from 'libsodium-wrappers-sumo';

let sodium = null;

/** Load libsodium once; every other function needs it. */
export async function ready() {
  if (!sodium) {
    await sodiumModule.ready;
    sodium = sodiumModule;
  }
  return sodium;
}

/** A format error: `kind` is the FormatError variant name of the Rust crate. */
export class FormatError extends Error {
  constructor(kind, message) {
    super(message || kind);
    this.kind = kind;
  }
}
const fail = (kind, message) => {
  throw new FormatError(kind, message);
};

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export const CHUNK_VERSION = 1;
export const CHUNK_PREFIX_LEN = 25;
export const CHUNK_AD_LEN = 25;
export const MESSAGE_OVERHEAD = 21;
export const FILE_MESSAGE_SIZE = 65536;
export const DEFAULT_CHUNK_SIZE = 1048576;
export const MAX_CHUNK_SIZE = 16777216;
export const MAX_MESSAGE_CIPHERTEXT = MAX_CHUNK_SIZE + 17;
export const MANIFEST_MAGIC = 'VMAN';
export const MANIFEST_VERSION = 1;
export const MAX_MANIFEST_LEN = 64 * 1024 * 1024;
export const MAX_ENTRIES = 1000000;
export const MAX_TOTAL_SIZE = 2n ** 50n;
export const TICKET_PREFIX = 'veil1-';
export const TICKET_PASSWORD_PREFIX = 'veil1p-';
export const IDENTITY_PREFIX = 'veilid1';
export const IDENTITY_PREFIX_V2 = 'veilid2';
export const CONTEXTS = {
  CTX_CHUNK: 'veilchk1',
  CTX_MANIFEST: 'veilman1',
  CTX_CAPABILITY: 'veilcap1',
  CTX_IDENTITY: 'veilid01',
  CTX_PAKE: 'veilpak1',
  CTX_TICKET: 'veiltkt1',
  CTX_SEAL: 'veilsea1',
};
/** Argon2id parameters by kdf version byte. */
export const KDF_PARAMS = {
  1: { m_kib: 262144, t: 3, p: 1 },
  240: { m_kib: 8192, t: 1, p: 1 },
};

// ---------------------------------------------------------------- bytes

export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
export function unhex(s) {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error('bad hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function u64le(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---------------------------------------------------------------- base32 (RFC 4648, lowercase, unpadded, canonical)

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
export function base32Encode(bytes) {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}
/** Canonical decode (the input must be lowercase already); null if not canonical. */
export function base32Decode(s) {
  if ([1, 3, 6].includes(s.length % 8)) return null;
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const c of s) {
    const v = B32.indexOf(c);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out[o++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return base32Encode(out) === s ? out : null;
}

// White space as Rust's char::is_whitespace (the Unicode White_Space property).
const WHITE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/gu;
/** Remove white space anywhere, fold only ASCII A-Z. */
function squash(text) {
  return text.replace(WHITE, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}
/** Rust's str::trim. */
export const trim = (s) => s.replace(new RegExp(`^${WHITE.source}+|${WHITE.source}+$`, 'gu'), '');

// ---------------------------------------------------------------- KDF and hashes

/** libsodium crypto_kdf_derive_from_key with 32-byte output; `id` may be a BigInt. */
export function kdf(main, id, ctx) {
  const salt = concat(u64le(id), new Uint8Array(8));
  const personal = concat(enc.encode(ctx), new Uint8Array(8));
  return sodium.crypto_generichash_blake2b_salt_personal(32, main, salt, personal);
}
export const blake2b256 = (...parts) => sodium.crypto_generichash(32, concat(...parts), null);
export const chunkKey = (key, index) => kdf(key, index, CONTEXTS.CTX_CHUNK);
export const manifestKey = (key) => kdf(key, 0, CONTEXTS.CTX_MANIFEST);
/** The capabilities a receiver can derive from K (the owner one needs the owner secret). */
export function capabilities(key) {
  return { download: kdf(key, 1, CONTEXTS.CTX_CAPABILITY), receipt: kdf(key, 3, CONTEXTS.CTX_CAPABILITY) };
}
export const ownerCapability = (ownerSecret) => kdf(ownerSecret, 2, CONTEXTS.CTX_CAPABILITY);

/** Argon2id v1.3 with the parameters of `version`, 32-byte output. */
export function argon2id(password, salt, version) {
  const p = KDF_PARAMS[version];
  if (!p) fail('UnsupportedVersion', 'unknown key-derivation version');
  return sodium.crypto_pwhash(32, password, salt, p.t, p.m_kib * 1024, sodium.crypto_pwhash_ALG_ARGON2ID13);
}

// ---------------------------------------------------------------- secretstream

const TAG_MESSAGE = 0;
const TAG_FINAL = 3;

/** Open an envelope: header (24) || one TAG_FINAL message. */
export function envelopeOpen(key, ad, sealed) {
  if (sealed.length < 24 + 17) fail('DecryptionFailed', 'decryption failed');
  const st = sodium.crypto_secretstream_xchacha20poly1305_init_pull(sealed.subarray(0, 24), key);
  const r = pull(st, sealed.subarray(24), ad);
  if (r.tag !== TAG_FINAL) fail('DecryptionFailed', 'decryption failed');
  return r.message;
}

function pull(state, c, ad) {
  let r;
  try {
    r = sodium.crypto_secretstream_xchacha20poly1305_pull(state, c, ad.length ? ad : null);
  } catch {
    r = false;
  }
  if (!r) fail('DecryptionFailed', 'decryption failed');
  return r;
}

/** The associated data of chunk `index`. */
export const chunkAd = (tid, index, last) => concat(tid, u64le(index), Uint8Array.of(last ? 1 : 0));

/**
 * Open one sealed chunk (the whole chunk in memory: at most 16 MiB plus overhead), given
 * the last flag the manifest implies. Returns the plaintext.
 */
export function openChunk(key, tid, index, last, sealed) {
  if (sealed.length < 1) fail('ChunkTruncated', 'chunk truncated');
  if (sealed[0] !== CHUNK_VERSION) fail('UnsupportedVersion', 'unsupported chunk version');
  if (sealed.length < CHUNK_PREFIX_LEN) fail('ChunkTruncated', 'chunk truncated');
  const st = sodium.crypto_secretstream_xchacha20poly1305_init_pull(sealed.subarray(1, 25), chunkKey(key, index));
  const ad = chunkAd(tid, index, last);
  const parts = [];
  const view = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  let o = CHUNK_PREFIX_LEN;
  for (;;) {
    if (o + 4 > sealed.length) fail('ChunkTruncated', 'chunk truncated');
    const len = view.getUint32(o, true);
    o += 4;
    if (len < 17 || len > MAX_MESSAGE_CIPHERTEXT) fail('Malformed', 'bad message length');
    if (o + len > sealed.length) fail('ChunkTruncated', 'chunk truncated');
    const r = pull(st, sealed.subarray(o, o + len), ad);
    o += len;
    parts.push(r.message);
    if (r.tag === TAG_FINAL) break;
    if (r.tag !== TAG_MESSAGE) fail('DecryptionFailed', 'decryption failed');
  }
  if (o !== sealed.length) fail('TrailingData', 'bytes after the final message');
  return parts.length === 1 ? parts[0] : concat(...parts);
}

/** Size of a sealed chunk of `n` plaintext bytes in messages of `m` bytes. */
export const sealedLen = (n, m) => CHUNK_PREFIX_LEN + n + MESSAGE_OVERHEAD * Math.max(1, Math.ceil(n / m));
/** Chunks of a transfer of `total` bytes (BigInt-safe). */
export function chunkCount(total, chunkSize) {
  const t = BigInt(total);
  const c = BigInt(chunkSize);
  return t === 0n ? 1n : (t + c - 1n) / c;
}

// ---------------------------------------------------------------- tickets

/** Parse a ticket (or a URL whose fragment is one). */
export function parseTicket(text) {
  let s = String(text);
  const hash = s.indexOf('#');
  if (/^https?:\/\//i.test(trim(s)) && hash >= 0) s = s.slice(hash + 1);
  s = squash(s);
  if (/[^\x00-\x7f]/.test(s)) fail('InvalidTicket', 'not a veil ticket');
  let body;
  let password = false;
  if (s.startsWith(TICKET_PASSWORD_PREFIX)) {
    body = s.slice(TICKET_PASSWORD_PREFIX.length);
    password = true;
  } else if (s.startsWith(TICKET_PREFIX)) {
    body = s.slice(TICKET_PREFIX.length);
  } else if (s.startsWith('veil')) {
    fail('UnsupportedVersion', 'this ticket is from a newer veil');
  } else {
    fail('InvalidTicket', 'not a veil ticket');
  }
  const bytes = base32Decode(body);
  if (!bytes || bytes.length !== (password ? 106 : 48)) fail('InvalidTicket', 'not a veil ticket');
  const tid = bytes.slice(0, 16);
  if (!password) return { tid, key: bytes.slice(16, 48), password: false };
  return { tid, salt: bytes.slice(16, 32), kdfVersion: bytes[32], wrapped: bytes.slice(33), password: true };
}

/** The content key of a password ticket (wrong password: DecryptionFailed). */
export function unwrapTicket(ticket, password) {
  const pw = trim(password).normalize('NFKC');
  if (!pw) fail('EmptyPassword', 'the password is empty');
  const wrap = kdf(argon2id(enc.encode(pw), ticket.salt, ticket.kdfVersion), 1, CONTEXTS.CTX_TICKET);
  const key = envelopeOpen(wrap, concat(enc.encode('veil ticket v1'), ticket.tid), ticket.wrapped);
  if (key.length !== 32) fail('DecryptionFailed', 'decryption failed');
  return key;
}

// ---------------------------------------------------------------- identities (display)

/** Fingerprint of an Ed25519 key: 80 bits in five groups of four hex digits. */
export function fingerprint(ed25519) {
  const h = hex(blake2b256(enc.encode('veil fingerprint v1\0'), ed25519).subarray(0, 10));
  return h.match(/.{4}/g).join('-');
}

/** A valid Ed25519 point in FORMAT.md's strict sense (canonical, prime order, not identity). */
export const validPoint = (p) => p.length === 32 && sodium.crypto_core_ed25519_is_valid_point(p);

/** Decode a public identity string; returns { ed25519, x25519 }. */
/** A `veilid2` string (with the X-Wing key commitment `C`) or an old `veilid1` one. */
export function parseIdentity(text) {
  const s = squash(String(text));
  if (/[^\x00-\x7f]/.test(s)) fail('InvalidIdentity', 'not an identity');
  const v2 = s.startsWith(IDENTITY_PREFIX_V2);
  if (!v2 && !s.startsWith(IDENTITY_PREFIX)) fail('InvalidIdentity', 'not an identity');
  const b = base32Decode(s.slice(IDENTITY_PREFIX.length));
  if (!b || b.length !== (v2 ? 100 : 68)) fail('InvalidIdentity', 'not an identity');
  const ed = b.slice(0, 32);
  const x = b.slice(32, 64);
  const commitment = v2 ? b.slice(64, 96) : null;
  const sum = v2
    ? blake2b256(enc.encode('veil identity checksum v2\0'), ed, x, commitment).subarray(0, 4)
    : blake2b256(enc.encode('veil identity checksum v1\0'), ed, x).subarray(0, 4);
  if (!equal(sum, b.subarray(v2 ? 96 : 64))) fail('InvalidIdentity', 'identity checksum mismatch');
  if (!validPoint(ed)) fail('InvalidIdentity', 'not a valid Ed25519 key');
  return { ed25519: ed, x25519: x, commitment };
}

export function identityString(ed, x) {
  const sum = blake2b256(enc.encode('veil identity checksum v1\0'), ed, x).subarray(0, 4);
  return IDENTITY_PREFIX + base32Encode(concat(ed, x, sum));
}

// ---------------------------------------------------------------- postcard

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.o = 0;
  }
  byte() {
    if (this.o >= this.b.length) fail('Malformed', 'truncated');
    return this.b[this.o++];
  }
  bytes(n) {
    if (n > this.b.length - this.o) fail('Malformed', 'truncated');
    const out = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return out;
  }
  /** Unsigned LEB128, canonical (no overlong encoding), at most `maxBits` bits. */
  varint(maxBits) {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = this.byte();
      if (shift >= BigInt(maxBits)) fail('Malformed', 'varint too long');
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        if (b === 0 && shift > 0n) fail('Malformed', 'overlong varint');
        break;
      }
    }
    if (v >= 1n << BigInt(maxBits)) fail('Malformed', 'varint out of range');
    return v;
  }
  u32() {
    return Number(this.varint(32));
  }
  u64() {
    return this.varint(64);
  }
  usize() {
    const v = this.varint(64);
    if (v > BigInt(this.b.length)) fail('Malformed', 'length out of range');
    return Number(v);
  }
  option(f) {
    const t = this.byte();
    if (t === 0) return null;
    if (t === 1) return f();
    return fail('Malformed', 'bad option tag');
  }
  string() {
    try {
      return dec.decode(this.bytes(this.usize()));
    } catch (e) {
      if (e instanceof FormatError) throw e;
      return fail('Malformed', 'not UTF-8');
    }
  }
  end() {
    if (this.o !== this.b.length) fail('Malformed', 'trailing bytes');
  }
}

const CONTENT = ['Files', 'Text', 'Stdin'];
const KIND = ['File', 'Dir'];

function decodeBody(bytes) {
  const r = new Reader(bytes);
  const m = { transferId: r.bytes(16).slice() };
  const content = r.u32();
  if (content >= CONTENT.length) fail('Malformed', 'unknown content kind');
  m.content = CONTENT[content];
  m.chunkSize = r.u32();
  m.totalSize = r.u64();
  m.chunkCount = r.u64();
  const n = r.usize();
  if (n > MAX_ENTRIES) fail('Malformed', 'too many entries');
  m.entries = [];
  for (let i = 0; i < n; i++) {
    const path = r.string();
    const kind = r.u32();
    if (kind >= KIND.length) fail('Malformed', 'unknown entry kind');
    const size = r.u64();
    const mode = r.u32();
    const hash = r.bytes(32).slice();
    m.entries.push({ path, kind: KIND[kind], size, mode, hash });
  }
  r.end();
  return m;
}

function decodeSigned(bytes) {
  const r = new Reader(bytes);
  const signer = r.bytes(32).slice();
  const recipient = r.option(() => r.bytes(32).slice());
  if (r.usize() !== 64) fail('Malformed', 'bad signature length');
  const signature = r.bytes(64).slice();
  const body = r.bytes(r.usize()).slice();
  const senderName = r.option(() => r.string());
  r.end();
  return { signer, recipient, signature, body, senderName };
}

function encodeVarint(v) {
  let n = BigInt(v);
  const out = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Uint8Array.from(out);
}
function encodeOptionString(s) {
  if (s === null) return Uint8Array.of(0);
  const b = enc.encode(s);
  return concat(Uint8Array.of(1), encodeVarint(b.length), b);
}

// ---------------------------------------------------------------- manifest

// Control characters (Cc) and bidirectional formatting characters.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/u;

/** Whether a manifest path is acceptable (FORMAT.md, Manifest). */
export function validPath(path) {
  const bytes = enc.encode(path).length;
  if (bytes === 0 || bytes > 4096 || path.startsWith('/')) return false;
  if (/[\\:]/.test(path) || CONTROL.test(path) || BIDI.test(path)) return false;
  for (const c of path.split('/')) {
    const n = enc.encode(c).length;
    if (n === 0 || n > 255 || c === '.' || c === '..' || c.endsWith('.') || c.endsWith(' ')) return false;
    const stem = c.toLowerCase().split('.')[0].replace(/ +$/u, '');
    if (DEVICE.test(stem)) return false;
  }
  return true;
}

function checkInvariants(m) {
  if (m.chunkSize < 1 || m.chunkSize > MAX_CHUNK_SIZE) fail('Malformed', 'bad chunk size');
  if (m.totalSize > MAX_TOTAL_SIZE) fail('Malformed', 'too large');
  const seen = new Set();
  const files = new Set();
  let sum = 0n;
  let fileCount = 0;
  for (const e of m.entries) {
    if (e.mode > 0o777) fail('Malformed', 'bad mode');
    if (!validPath(e.path)) fail('Malformed', 'bad path');
    const low = e.path.toLowerCase();
    if (seen.has(low)) fail('Malformed', 'duplicate path');
    seen.add(low);
    if (e.kind === 'Dir' && e.size !== 0n) fail('Malformed', 'folder with a size');
    if (e.kind === 'File') {
      files.add(low);
      fileCount++;
    }
    sum += e.size;
  }
  for (const p of seen) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (files.has(parts.slice(0, i).join('/'))) fail('Malformed', 'entry below a file');
    }
  }
  if (sum !== m.totalSize) fail('Malformed', 'sizes do not add up');
  if (m.chunkCount !== chunkCount(m.totalSize, m.chunkSize)) fail('Malformed', 'wrong chunk count');
  if (m.content !== 'Files' && fileCount !== 1) fail('Malformed', 'text needs exactly one file');
}

/**
 * Open a stored manifest (FORMAT.md, Manifest): decrypt, decode strictly, check the
 * recipient (none: a link) and the signature, and the invariants. Returns
 * { manifest, signer, senderName }.
 */
export function openManifest(stored, key, tid, recipient = null) {
  if (stored.length > MAX_MANIFEST_LEN) fail('Malformed', 'manifest too large');
  if (stored.length < 5 || !equal(stored.subarray(0, 4), enc.encode(MANIFEST_MAGIC))) fail('Malformed', 'not a manifest');
  if (stored[4] !== MANIFEST_VERSION) fail('UnsupportedVersion', 'manifest from a newer veil');
  const ad = concat(enc.encode(MANIFEST_MAGIC), Uint8Array.of(MANIFEST_VERSION), tid);
  const signedBytes = envelopeOpen(manifestKey(key), ad, stored.subarray(5));
  const s = decodeSigned(signedBytes);
  const same = s.recipient === null ? recipient === null : recipient !== null && equal(s.recipient, recipient);
  if (!same) fail('BadSignature', 'this manifest is for another recipient');
  const message = concat(
    enc.encode('veil manifest v1\0'),
    tid,
    recipient ?? new Uint8Array(32),
    encodeOptionString(s.senderName),
    s.body,
  );
  if (!validPoint(s.signer) || !sodium.crypto_sign_verify_detached(s.signature, message, s.signer)) {
    fail('BadSignature', 'bad manifest signature');
  }
  const m = decodeBody(s.body);
  if (!equal(m.transferId, tid)) fail('Malformed', 'manifest of another transfer');
  checkInvariants(m);
  if (s.senderName !== null) {
    const n = enc.encode(s.senderName).length;
    if (n < 1 || n > 128 || CONTROL.test(s.senderName)) fail('Malformed', 'bad sender name');
  }
  return { manifest: m, signer: s.signer, senderName: s.senderName };
}
