// Every vector file in crates/veil-format/vectors/ against the browser's format code
// (node --test). Sealing with a fixed header is not possible through libsodium.js, so
// sealed values are checked by opening them and comparing every intermediate value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as f from '../src/format.js';

const DIR = fileURLToPath(new URL('../../../crates/veil-format/vectors/', import.meta.url));
/** JSON with integers past 2^53 kept exact (as strings). */
const load = (name) =>
  JSON.parse(readFileSync(DIR + name, 'utf8').replace(/([:,[]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"')).cases;
const H = f.unhex;
const hexOf = (b) => f.hex(b);
const enc = new TextEncoder();
const sodium = await f.ready();

/** Which files this suite covers, and how (a new vector file must be added here). */
const FILES = ['chunk', 'envelope', 'identity', 'kdf', 'manifest', 'pake', 'pq', 'refused', 'sealed', 'ticket', 'words'];
test('every vector file is covered', () => {
  const present = readdirSync(DIR)
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -5))
    .sort();
  assert.deepEqual(present, FILES);
});

test('pq.json: the browser receives links only (no identity keys, sealed keys or code exchange)', (t) => {
  // X-Wing keys, key bundles, version 2 sealed keys and the code-mode ML-KEM step are
  // for the CLI; the page opens links. The file must still load.
  assert.ok(load('pq.json').length > 0);
  t.diagnostic('post-quantum vectors are not part of the browser receiver (links only)');
});

test('kdf.json', () => {
  for (const c of load('kdf.json')) {
    const i = c.in;
    if (i.kind === 'context') assert.equal(f.CONTEXTS[i.const], c.out.context, c.case);
    else if (i.kind === 'derive') assert.equal(hexOf(f.kdf(H(i.key), BigInt(i.id), i.context)), c.out.subkey, c.case);
    else if (i.kind === 'chunk_key') assert.equal(hexOf(f.chunkKey(H(i.key), BigInt(i.index))), c.out.chunk_key, c.case);
    else if (i.kind === 'capabilities') {
      const caps = f.capabilities(H(i.key));
      assert.equal(hexOf(caps.download), c.out.download);
      assert.equal(hexOf(caps.receipt), c.out.receipt);
      assert.equal(hexOf(f.ownerCapability(H(i.owner_secret))), c.out.owner);
    } else if (i.kind === 'blake2b_256') assert.equal(hexOf(f.blake2b256(...i.parts.map(H))), c.out.hash, c.case);
    else assert.fail(`unknown case kind ${i.kind}`);
  }
});

test('chunk.json', () => {
  for (const c of load('chunk.json')) {
    const i = c.in;
    if (i.kind === 'constants') {
      for (const [k, v] of Object.entries(c.out)) assert.equal(f[k], v, k);
    } else if (i.kind === 'sizes') {
      assert.equal(f.sealedLen(i.plain_len, i.message_size), c.out.sealed_len, c.case);
      assert.equal(f.chunkCount(i.total, i.chunk_size), BigInt(c.out.chunk_count), c.case);
    } else if (i.kind === 'chunk') {
      const [key, tid, idx] = [H(i.key), H(i.transfer_id), BigInt(i.index)];
      assert.equal(hexOf(f.chunkKey(key, idx)), c.out.chunk_key);
      assert.equal(hexOf(f.chunkAd(tid, idx, i.last)), c.out.ad);
      const sealed = H(c.out.sealed);
      assert.equal(sealed.length, f.sealedLen(i.plaintext.length / 2, i.message_size), c.case);
      assert.equal(hexOf(f.openChunk(key, tid, idx, i.last, sealed)), i.plaintext, c.case);
      // The wrong last flag, index or transfer id, a flipped bit, a cut or a longer chunk fail.
      const kind = (fn) => {
        try {
          fn();
        } catch (e) {
          return e.kind;
        }
        return 'accepted';
      };
      assert.equal(kind(() => f.openChunk(key, tid, idx, !i.last, sealed)), 'DecryptionFailed');
      assert.equal(kind(() => f.openChunk(key, tid, idx + 1n, i.last, sealed)), 'DecryptionFailed');
      assert.equal(kind(() => f.openChunk(key, new Uint8Array(16), idx, i.last, sealed)), 'DecryptionFailed');
      const flipped = sealed.slice();
      flipped[flipped.length - 1] ^= 1;
      assert.equal(kind(() => f.openChunk(key, tid, idx, i.last, flipped)), 'DecryptionFailed');
      assert.equal(kind(() => f.openChunk(key, tid, idx, i.last, sealed.subarray(0, sealed.length - 1))), 'ChunkTruncated');
      assert.equal(kind(() => f.openChunk(key, tid, idx, i.last, f.concat(sealed, Uint8Array.of(0)))), 'TrailingData');
      const v2 = sealed.slice();
      v2[0] = 2;
      assert.equal(kind(() => f.openChunk(key, tid, idx, i.last, v2)), 'UnsupportedVersion');
    } else assert.fail(`unknown case kind ${i.kind}`);
  }
});

test('envelope.json', () => {
  for (const c of load('envelope.json')) {
    const opened = f.envelopeOpen(H(c.in.key), H(c.in.ad), H(c.out.sealed));
    assert.equal(hexOf(opened), c.in.plaintext, c.case);
    assert.equal(H(c.out.sealed).subarray(0, 24).join(), H(c.in.header).join());
    assert.throws(() => f.envelopeOpen(H(c.in.key), enc.encode('other'), H(c.out.sealed)), { kind: 'DecryptionFailed' });
  }
});

test('manifest.json', () => {
  for (const c of load('manifest.json')) {
    const i = c.in;
    if (i.kind === 'constants') {
      assert.equal(f.MANIFEST_MAGIC, c.out.MANIFEST_MAGIC);
      assert.equal(f.MANIFEST_VERSION, c.out.MANIFEST_VERSION);
      assert.equal(f.MAX_ENTRIES, c.out.MAX_ENTRIES);
      assert.equal(f.MAX_MANIFEST_LEN, c.out.MAX_MANIFEST_LEN);
      assert.equal(f.MAX_TOTAL_SIZE, BigInt(c.out.MAX_TOTAL_SIZE));
      continue;
    }
    const [key, tid] = [H(i.content_key), H(i.transfer_id)];
    const recipient = i.recipient ? H(i.recipient) : null;
    assert.equal(hexOf(f.manifestKey(key)), c.out.manifest_key);
    const signer = sodium.crypto_sign_seed_keypair(H(i.signer_seed)).publicKey;
    assert.equal(hexOf(signer), c.out.signer);
    const sig = sodium.crypto_sign_detached(H(c.out.signed_message), sodium.crypto_sign_seed_keypair(H(i.signer_seed)).privateKey);
    assert.equal(hexOf(sig), c.out.signature, c.case);
    const { manifest: m, signer: who, senderName } = f.openManifest(H(c.out.sealed), key, tid, recipient);
    assert.equal(hexOf(who), c.out.signer);
    assert.equal(senderName, i.sender_name ?? null);
    assert.equal(m.content, i.content);
    assert.equal(m.chunkSize, i.chunk_size);
    assert.equal(m.totalSize, BigInt(i.total_size ?? c.out.total_size));
    assert.equal(m.chunkCount, BigInt(c.out.chunk_count));
    assert.deepEqual(
      m.entries.map((e) => ({ path: e.path, kind: e.kind, size: Number(e.size), mode: e.mode, hash: hexOf(e.hash) })),
      i.entries.map((e) => ({ path: e.path, kind: e.kind, size: Number(e.size), mode: e.mode, hash: e.hash })),
    );
    // Opened by someone else, or for another transfer, it fails.
    assert.throws(() => f.openManifest(H(c.out.sealed), key, tid, recipient ? null : new Uint8Array(32).fill(9)), {
      kind: 'BadSignature',
    });
    assert.throws(() => f.openManifest(H(c.out.sealed), key, new Uint8Array(16), recipient), { kind: 'DecryptionFailed' });
  }
});

test('ticket.json', () => {
  for (const c of load('ticket.json')) {
    const i = c.in;
    const t = f.parseTicket(c.out.ticket);
    assert.equal(hexOf(t.tid), i.transfer_id);
    if (i.kind === 'plain') {
      assert.equal(hexOf(t.key), i.content_key);
      assert.equal('veil1-' + f.base32Encode(f.concat(t.tid, t.key)), c.out.ticket);
      assert.equal(hexOf(f.parseTicket(`https://relay.example:8443/#${c.out.ticket}`).key), i.content_key);
      continue;
    }
    assert.equal(t.kdfVersion, i.kdf_version);
    assert.equal(hexOf(t.salt), i.salt);
    assert.equal(hexOf(t.wrapped), c.out.wrapped);
    assert.equal(hexOf(f.unwrapTicket(t, i.password)), i.content_key, c.case);
    if (i.kdf_version === 240) {
      assert.throws(() => f.unwrapTicket(t, 'wrong'), { kind: 'DecryptionFailed' });
      assert.throws(() => f.unwrapTicket(t, ' \u3000'), { kind: 'EmptyPassword' });
    }
  }
  assert.throws(() => f.parseTicket('veil2-abc'), { kind: 'UnsupportedVersion' });
  assert.throws(() => f.parseTicket('hello'), { kind: 'InvalidTicket' });
});

test('refused.json', () => {
  for (const c of load('refused.json')) {
    const i = c.in;
    let error = null;
    try {
      if (i.kind === 'manifest') {
        assert.equal(hexOf(f.envelopeOpen(f.manifestKey(H(i.content_key)), f.concat(enc.encode('VMAN'), Uint8Array.of(1), H(i.transfer_id)), H(c.out.sealed).subarray(5))), c.out.signed);
        f.openManifest(H(c.out.sealed), H(i.content_key), H(i.transfer_id));
      } else if (i.kind === 'ticket') f.parseTicket(i.text);
      else if (i.kind === 'identity') f.parseIdentity(i.text);
      else assert.fail(`unknown case kind ${i.kind}`);
    } catch (e) {
      if (!(e instanceof f.FormatError)) throw e;
      error = e.kind;
    }
    assert.equal(error !== null, c.out.refused, c.case);
    if (c.out.refused) assert.equal(error, c.out.error, c.case);
  }
});

test('identity.json', () => {
  for (const c of load('identity.json')) {
    const i = c.in;
    if (i.kind === 'kdf_params') {
      assert.deepEqual(f.KDF_PARAMS[i.kdf_version], c.out);
      continue;
    }
    const pass = f.trim(i.passphrase).normalize('NFKC');
    const handle = f.trim(i.handle).normalize('NFKC').toLowerCase();
    assert.equal(pass, c.out.normalized_passphrase);
    assert.equal(handle, c.out.normalized_handle);
    const salt = f.blake2b256(enc.encode('veil identity salt v1\0'), enc.encode(handle)).subarray(0, 16);
    assert.equal(hexOf(salt), c.out.salt);
    const seed = f.argon2id(enc.encode(pass), salt, i.kdf_version);
    assert.equal(hexOf(seed), c.out.seed, c.case);
    const ed = sodium.crypto_sign_seed_keypair(f.kdf(seed, 1, 'veilid01')).publicKey;
    const x = sodium.crypto_scalarmult_base(f.kdf(seed, 2, 'veilid01'));
    assert.equal(hexOf(ed), c.out.ed25519_public);
    assert.equal(hexOf(x), c.out.x25519_public);
    assert.equal(f.identityString(ed, x), c.out.identity);
    assert.equal(f.fingerprint(ed), c.out.fingerprint);
    assert.equal(hexOf(f.parseIdentity(c.out.identity).ed25519), c.out.ed25519_public);
  }
});

test('sealed.json (opened as an inbox receiver would)', () => {
  for (const c of load('sealed.json')) {
    const i = c.in;
    const seed = H(i.recipient_seed);
    const xSecret = f.kdf(seed, 2, 'veilid01');
    const R = sodium.crypto_scalarmult_base(xSecret);
    assert.equal(hexOf(R), c.out.recipient_x25519);
    assert.equal(hexOf(f.parseIdentity(c.out.recipient_identity).x25519), c.out.recipient_x25519);
    const sealed = H(c.out.sealed);
    const E = sealed.subarray(5, 37);
    assert.equal(hexOf(E), c.out.ephemeral_public);
    assert.equal(hexOf(sodium.crypto_scalarmult_base(H(i.ephemeral_secret))), c.out.ephemeral_public);
    const dh = sodium.crypto_scalarmult(xSecret, E);
    assert.equal(hexOf(dh), c.out.shared_secret);
    const key = f.kdf(f.blake2b256(enc.encode('veil seal v1\0'), dh, E, R), 1, 'veilsea1');
    assert.equal(hexOf(key), c.out.envelope_key);
    const ad = f.concat(enc.encode('VSEL'), Uint8Array.of(1), E, R);
    assert.equal(hexOf(ad), c.out.ad);
    const pt = f.envelopeOpen(key, ad, sealed.subarray(37));
    assert.equal(hexOf(pt), c.out.plaintext);
    const [sender, sig, tid, k] = [pt.subarray(0, 32), pt.subarray(32, 96), pt.subarray(96, 112), pt.subarray(112)];
    assert.equal(hexOf(sender), c.out.sender_ed25519);
    assert.equal(hexOf(sig), c.out.signature);
    assert.equal(hexOf(tid), i.transfer_id);
    assert.equal(hexOf(k), i.content_key);
    const msg = f.concat(enc.encode('veil seal v1\0'), E, R, tid, k);
    assert.equal(hexOf(msg), c.out.signed_message);
    assert.ok(f.validPoint(sender) && sodium.crypto_sign_verify_detached(sig, msg, sender));
  }
});

test('pake.json: the key derivation after SPAKE2 (the browser runs no code exchange)', (t) => {
  let derivations = 0;
  for (const c of load('pake.json')) {
    if (c.in.kind !== 'derivation') continue;
    derivations++;
    const kp = f.blake2b256(enc.encode('veil pake key v1\0'), H(c.in.spake2_output));
    assert.equal(hexOf(kp), c.out.pake_key);
    assert.equal(hexOf(f.kdf(kp, 1, 'veilpak1')), c.out.sender_confirmation);
    assert.equal(hexOf(f.kdf(kp, 2, 'veilpak1')), c.out.receiver_confirmation);
    const delivery = f.envelopeOpen(f.kdf(kp, 3, 'veilpak1'), enc.encode('veil key delivery v1'), H(c.out.delivery));
    assert.equal(hexOf(f.kdf(kp, 3, 'veilpak1')), c.out.delivery_key);
    assert.equal(hexOf(f.kdf(kp, 4, 'veilpak1')), c.out.verification_key);
    assert.equal(hexOf(delivery), c.out.delivery_plaintext);
  }
  assert.ok(derivations > 0);
  t.diagnostic('code parsing and SPAKE2 runs are not part of the browser receiver (links only)');
});

test('BLAKE3 (file hashes in the manifest) is the reference function', async () => {
  const { createBLAKE3 } = await import('hash-wasm');
  const h = await createBLAKE3();
  h.init();
  assert.equal(h.digest('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  h.init();
  h.update(new Uint8Array(1025).map((_, i) => i % 251));
  // The official test vector for input length 1025 (BLAKE3 test_vectors.json).
  assert.equal(h.digest('hex'), 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444');
});

test('words.json: the browser uses no word list', (t) => {
  assert.ok(load('words.json').length > 0);
  t.diagnostic('word lists are for codes and passphrases, which the browser never makes');
});
