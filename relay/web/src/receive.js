// Fetch, open and verify a transfer as one stream of bytes: the decrypted file for a
// single file, a stored (uncompressed) zip for several files or a folder. Nothing is
// held beyond a few chunks in flight, so any size streams to disk. Used by the service
// worker (sw.js); the API it talks to is veil-relay's web side (relay/src/web.rs).
import { createBLAKE3 } from 'hash-wasm';
import { makeZip, predictLength } from 'client-zip';
import * as f from './format.js';

/** Chunks fetched ahead of the one being decrypted. */
const AHEAD = 4;
const RETRIES = 3;

export const api = (tid) => `/v1/transfers/${f.hex(tid)}`;

/** A failed request to the relay, with its JSON error when it sent one. */
export class RelayError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function relayError(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    // Not JSON: keep the status.
  }
  return new RelayError(res.status, body.code || 'Http', body.message || `the relay answered ${res.status}`);
}

/**
 * GET with the download capability in a header (never in the URL). A body cut off
 * midway is resumed with a Range request from the bytes already received.
 */
export async function getBytes(url, download) {
  const parts = [];
  let got = 0;
  let last;
  for (let attempt = 0; attempt < RETRIES; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 300 * attempt));
    const headers = { 'Veil-Download': f.hex(download) };
    if (got > 0) headers.Range = `bytes=${got}-`;
    let res;
    try {
      res = await fetch(url, { headers, cache: 'no-store' });
    } catch (e) {
      last = e;
      continue;
    }
    if (!res.ok) {
      last = await relayError(res);
      if (res.status < 500) break;
      continue;
    }
    if (got > 0 && res.status !== 206) {
      // The whole body again: start over.
      parts.length = 0;
      got = 0;
    }
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return parts.length === 1 ? parts[0] : f.concat(...parts);
        parts.push(value);
        got += value.length;
      }
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** What the page hands the service worker for one download. */
export function fileName(job) {
  const files = job.manifest.entries;
  if (single(job.manifest)) return files.find((e) => e.kind === 'File').path.split('/').pop();
  const tops = new Set(files.map((e) => e.path.split('/')[0]));
  const top = [...tops][0];
  return (tops.size === 1 && files.some((e) => e.path.includes('/')) ? top : `veil-${f.hex(job.tid).slice(0, 8)}`) + '.zip';
}

/** A single file saves as itself; anything else as a zip. */
export function single(m) {
  return m.entries.length === 1 && m.entries[0].kind === 'File';
}

/** Decrypted chunks in order, each checked against the size the manifest implies. */
async function* chunks(job, progress) {
  const m = job.manifest;
  const count = Number(m.chunkCount);
  const pending = [];
  let next = 0;
  const fill = () => {
    while (next < count && pending.length < AHEAD) {
      const p = getBytes(`${api(job.tid)}/chunks/${next}`, job.download);
      p.catch(() => {}); // observed when its turn comes
      pending.push(p);
      next++;
    }
  };
  for (let i = 0; i < count; i++) {
    fill();
    const sealed = await pending.shift();
    const last = i === count - 1;
    const plain = f.openChunk(job.key, job.tid, BigInt(i), last, sealed);
    const expect = last ? m.totalSize - BigInt(i) * BigInt(m.chunkSize) : BigInt(m.chunkSize);
    if (BigInt(plain.length) !== expect) throw new f.FormatError('Malformed', `chunk ${i} has the wrong size`);
    progress(sealed.length, plain.length);
    yield plain;
  }
}

/** Reads exactly `n` bytes at a time from the chunk stream. */
class Source {
  constructor(it) {
    this.it = it;
    this.buf = new Uint8Array(0);
  }
  async take(max) {
    if (this.buf.length === 0) {
      const r = await this.it.next();
      if (r.done) throw new f.FormatError('ChunkTruncated', 'the transfer ended early');
      this.buf = r.value;
    }
    const out = this.buf.subarray(0, Math.min(max, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Every chunk was read (an empty transfer still has its one empty chunk) and used. */
  async end() {
    for (;;) {
      if (this.buf.length !== 0) throw new f.FormatError('TrailingData', 'more data than the manifest lists');
      const r = await this.it.next();
      if (r.done) return;
      this.buf = r.value;
    }
  }
}

/** The bytes of one file entry, checked against its BLAKE3 hash before the last byte. */
async function* fileBytes(src, entry) {
  const h = await createBLAKE3();
  h.init();
  let left = entry.size;
  let held = null;
  while (left > 0n) {
    const part = await src.take(Number(left < 1048576n ? left : 1048576n));
    left -= BigInt(part.length);
    h.update(part);
    if (held) yield held;
    held = part;
  }
  const got = h.digest('binary');
  if (f.hex(got) !== f.hex(entry.hash)) throw new f.FormatError('HashMismatch', `${entry.path} does not match its hash`);
  if (held) yield held;
}

/**
 * The download as a ReadableStream. `events` gets { bytes, total } while it runs,
 * { done, remaining } after the receipt, or { error }. The stream errors (so the
 * browser's download fails and no file completes) on any failure.
 */
export function downloadStream(job, events) {
  const m = job.manifest;
  let got = 0;
  const total = Number(m.totalSize);
  const it = chunks(job, (_, n) => {
    got += n;
    events({ bytes: got, total });
  });
  const src = new Source(it);
  const when = new Date();
  let body;
  if (single(m)) {
    body = fileBytes(src, m.entries[0]);
  } else {
    const entries = async function* () {
      for (const e of m.entries) {
        if (e.kind === 'Dir') yield { name: e.path + '/', lastModified: when, mode: e.mode };
        else yield { name: e.path, lastModified: when, size: e.size, mode: e.mode, input: iterStream(fileBytes(src, e)) };
      }
    };
    const zip = makeZip(entries());
    body = iterStream(zip);
  }
  const finish = async () => {
    await src.end();
    let remaining = null;
    try {
      const res = await fetch(`${api(job.tid)}/receipt`, {
        method: 'POST',
        headers: { 'Veil-Receipt': f.hex(job.receipt) },
        cache: 'no-store',
      });
      if (!res.ok) throw await relayError(res);
      remaining = (await res.json()).remaining ?? null;
    } catch (e) {
      events({ warning: `the download is complete, but the relay did not count it: ${e.message}` });
    }
    events({ done: true, remaining });
  };
  const reader = body[Symbol.asyncIterator] ? body[Symbol.asyncIterator]() : body;
  return new ReadableStream(
    {
      async pull(controller) {
        try {
          const r = await reader.next();
          if (r.done) {
            await finish();
            controller.close();
          } else {
            controller.enqueue(r.value);
          }
        } catch (e) {
          events({ error: describe(e) });
          controller.error(e);
        }
      },
      cancel() {
        events({ error: 'The download was cancelled.' });
      },
    },
    { highWaterMark: 2 },
  );
}

/** Content-Length of the download, when it can be known in advance. */
export function downloadLength(job) {
  const m = job.manifest;
  if (single(m)) return m.totalSize;
  return predictLength(
    m.entries.map((e) => (e.kind === 'Dir' ? { name: e.path + '/' } : { name: e.path, size: e.size })),
  );
}

async function* iterStream(s) {
  if (s[Symbol.asyncIterator] && !(s instanceof ReadableStream)) {
    yield* s;
    return;
  }
  const r = s.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) return;
    yield value;
  }
}

/** A sentence for the person at the page. */
export function describe(e) {
  if (e instanceof f.FormatError) {
    if (['DecryptionFailed', 'HashMismatch', 'ChunkTruncated', 'TrailingData', 'Malformed'].includes(e.kind)) {
      return 'The data from the relay failed verification: it was changed or damaged after it was sent. Nothing was saved.';
    }
    return e.message;
  }
  if (e instanceof RelayError) {
    const known = {
      NotFound: 'This link leads nowhere: the transfer does not exist, or it expired and was deleted.',
      Expired: 'This link has expired.',
      DownloadLimit: 'This link was already downloaded as many times as the sender allowed.',
      Forbidden: 'The relay refused this link (it does not match the transfer).',
    };
    return known[e.code] || `The relay answered: ${e.message}`;
  }
  return `Download failed: ${e && e.message ? e.message : e}`;
}
