// The download stream (receive.js) against a fake relay (a stubbed fetch): a manifest
// built and signed here (postcard by hand, as FORMAT.md lays it out) for one 2.5 MiB file
// in three chunks, and chunks sealed here. An intact transfer completes and sends one
// receipt; every damaged one fails before the last byte, without a receipt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBLAKE3 } from 'hash-wasm';
import { randomBytes } from 'node:crypto';
import * as f from '../src/format.js';
import { describe, downloadStream } from '../src/receive.js';

const sodium = await f.ready();
const enc = new TextEncoder();
const key = sodium.randombytes_buf(32);
const tid = sodium.randombytes_buf(16);
const signer = sodium.crypto_sign_seed_keypair(sodium.randombytes_buf(32));
const CHUNK = 1 << 20;
const plain = new Uint8Array(randomBytes(2.5 * CHUNK));

function varint(n) {
  let v = BigInt(n);
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
}
const bytes = (b) => f.concat(varint(b.length), b);

async function sealManifest(hash) {
  const path = enc.encode('data.bin');
  const body = f.concat(
    tid,
    varint(0), // Files
    varint(CHUNK),
    varint(plain.length),
    varint(3),
    varint(1),
    bytes(path),
    varint(0), // File
    varint(plain.length),
    varint(0o644),
    hash,
  );
  const message = f.concat(enc.encode('veil manifest v1\0'), tid, new Uint8Array(32), Uint8Array.of(0), body);
  const sig = sodium.crypto_sign_detached(message, signer.privateKey);
  const signed = f.concat(signer.publicKey, Uint8Array.of(0), varint(64), sig, bytes(body), Uint8Array.of(0));
  const ad = f.concat(enc.encode('VMAN'), Uint8Array.of(1), tid);
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(f.manifestKey(key));
  const c = sodium.crypto_secretstream_xchacha20poly1305_push(state, signed, ad, 3);
  return f.openManifest(f.concat(enc.encode('VMAN'), Uint8Array.of(1), header, c), key, tid).manifest;
}

const h = await createBLAKE3();
h.init();
h.update(plain);
const manifest = await sealManifest(h.digest('binary'));
const total = plain.length;

function seal(index, last, part) {
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(f.chunkKey(key, BigInt(index)));
  const ad = f.chunkAd(tid, BigInt(index), last);
  const parts = [Uint8Array.of(1), header];
  for (let o = 0; ; o += 65536) {
    const end = Math.min(o + 65536, part.length);
    const m = sodium.crypto_secretstream_xchacha20poly1305_push(state, part.subarray(o, end), ad, end === part.length ? 3 : 0);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, m.length, true);
    parts.push(len, m);
    if (end === part.length) break;
  }
  return f.concat(...parts);
}
const piece = (i) => plain.subarray(i * CHUNK, Math.min((i + 1) * CHUNK, total));
const chunks = [0, 1, 2].map((i) => seal(i, i === 2, piece(i)));

/** Run a download against `serve(index) -> bytes | null (404)`; what happened. */
async function run(serve, m = manifest) {
  const seen = [];
  let receipts = 0;
  globalThis.fetch = async (url, init) => {
    if (init?.method === 'POST') {
      receipts++;
      return new Response('{"remaining":null}', { status: 200 });
    }
    const i = Number(String(url).split('/chunks/')[1]);
    const body = serve(i);
    return body ? new Response(body) : new Response('{"code":"NotFound","message":"no"}', { status: 404 });
  };
  const job = { tid, key, manifest: m, download: new Uint8Array(32), receipt: new Uint8Array(32) };
  const stream = downloadStream(job, (e) => seen.push(e));
  let bytes = 0;
  let error = null;
  try {
    for await (const part of stream) bytes += part.length;
  } catch (e) {
    error = e;
  }
  return { bytes, error, receipts, events: seen };
}

test('an intact transfer completes byte for byte and sends one receipt', async () => {
  const r = await run((i) => chunks[i]);
  assert.equal(r.error, null);
  assert.equal(r.bytes, total);
  assert.equal(r.receipts, 1);
  assert.ok(r.events.some((e) => e.done));
});

test('a manifest hash that does not match stops before the last byte, no receipt', async () => {
  const wrong = await sealManifest(new Uint8Array(32).fill(7));
  const r = await run((i) => chunks[i], wrong);
  assert.equal(r.error?.kind, 'HashMismatch');
  assert.ok(r.bytes < total, `${r.bytes} of ${total} bytes given out`);
  assert.equal(r.receipts, 0);
  assert.match(describe(r.error), /failed verification/);
  assert.ok(r.events.some((e) => e.error) && !r.events.some((e) => e.done));
});

test('a chunk served under another index fails to open', async () => {
  const r = await run((i) => chunks[i === 1 ? 0 : i]);
  assert.equal(r.error?.kind, 'DecryptionFailed');
  assert.equal(r.receipts, 0);
});

test('a missing last chunk fails (no truncated success)', async () => {
  const r = await run((i) => (i === 2 ? null : chunks[i]));
  assert.equal(r.error?.code, 'NotFound');
  assert.ok(r.bytes < total);
  assert.equal(r.receipts, 0);
});

test('a last chunk sealed as not-last fails', async () => {
  const r = await run((i) => (i === 2 ? seal(2, false, piece(2)) : chunks[i]));
  assert.equal(r.error?.kind, 'DecryptionFailed');
  assert.equal(r.receipts, 0);
});

test('a chunk cut short fails', async () => {
  const r = await run((i) => (i === 1 ? chunks[1].subarray(0, chunks[1].length - 10) : chunks[i]));
  assert.equal(r.error?.kind, 'ChunkTruncated');
  assert.equal(r.receipts, 0);
});

test('a chunk of the wrong size fails', async () => {
  const r = await run((i) => (i === 0 ? seal(0, false, piece(0).subarray(1)) : chunks[i]));
  assert.equal(r.error?.kind, 'Malformed');
  assert.equal(r.receipts, 0);
});
