// End-to-end in headless Chromium: the real relay (with --web) and the real CLI send
// links; the page opens them through the printed URL, downloads through its service
// worker and the browser's download manager, and the bytes are compared. Run by
// tests/tests/browser.rs (so by tests/run.sh), which builds the binaries and sets
// VEIL_BIN_DIR; VEIL_SCREENSHOTS=DIR keeps screenshots of the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import * as f from '../src/format.js';

const BIN = process.env.VEIL_BIN_DIR || fileURLToPath(new URL('../../../target/debug', import.meta.url));
const CHROMIUM = process.env.VEIL_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.VEIL_SCREENSHOTS || null;
const dir = mkdtempSync(join(tmpdir(), 'veil-browser-'));
const secrets = []; // every ticket, key and URL fragment made here: none may reach a log or a request
const requests = []; // every request Chromium reported

let relay;
let relayLog = '';
let relayEnv;
let webUrl;
let httpAddr;
let browser;

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

before(async () => {
  await f.ready();
  relay = spawn(join(BIN, 'veil-relay'), ['--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--web', '127.0.0.1:0', '--data', join(dir, 'relay')], {
    env: { ...process.env, VEIL_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  relay.stderr.on('data', (d) => {
    relayLog += d;
  });
  const lines = createInterface({ input: relay.stdout });
  for await (const line of lines) {
    relayLog += `${line}\n`;
    const http = line.match(/http on (\S+)/);
    if (http) httpAddr = http[1];
    const web = line.match(/links open at (\S+)#<ticket>/);
    if (web) webUrl = web[1];
    const c = line.match(/^clients: VEIL_RELAY=(\S+)/);
    if (c) {
      relayEnv = c[1];
      break;
    }
  }
  lines.on('line', (l) => {
    relayLog += `${l}\n`;
  });
  assert.ok(webUrl && relayEnv, `relay did not start: ${relayLog}`);
  assert.match(webUrl, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  // Report the service worker's own requests (chunks, receipt) as well as the page's.
  process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = '1';
  // The relay's certificate is self-signed. ignoreHTTPSErrors alone lets pages load but
  // not register a service worker (Chromium refuses one from a certificate it does not
  // trust), so the whole browser ignores certificate errors, as a trusted certificate
  // would let it; the no-service-worker path has its own test below.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--ignore-certificate-errors', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  relay?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Run `veil send ... --link --json`; resolves with the first JSON object and the exit. */
function sendLink(args, env = {}) {
  const home = mkdtempSync(join(dir, 'home-'));
  const child = spawn(join(BIN, 'veil'), ['send', '--link', '--json', ...args], {
    env: { ...process.env, VEIL_HOME: home, VEIL_RELAY: relayEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exit = new Promise((resolve) => child.on('exit', (code) => resolve({ code, err })));
  const first = new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (l) => resolve(JSON.parse(l)));
    child.on('exit', () => reject(new Error(`veil send printed nothing: ${err}`)));
  });
  return { first, exit };
}

async function newPage(width = 1280, height = 860, options = {}) {
  const context = await browser.newContext({
    ...options,
    acceptDownloads: true,
    ignoreHTTPSErrors: true,
    viewport: { width, height },
    deviceScaleFactor: 1,
  });
  // The headers as sent (allHeaders), not Playwright's provisional view.
  // A request still finishing when the context closes has only its provisional headers.
  context.on('requestfinished', async (r) => requests.push({ url: r.url(), headers: await r.allHeaders().catch(() => r.headers()), body: r.postData() }));
  context.on('requestfailed', async (r) => requests.push({ url: r.url(), headers: await r.allHeaders().catch(() => r.headers()), body: r.postData() }));
  const page = await context.newPage();
  return { context, page };
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Remember what must never leave the browser. */
function secret(ticketEvent) {
  secrets.push(ticketEvent.ticket, ticketEvent.url.split('#')[1]);
  // The key itself, in hex (the ticket's base32 carries it too, covered above).
  const t = f.parseTicket(ticketEvent.ticket);
  if (!t.password) secrets.push(f.hex(t.key));
}

test('a 20 MiB file sent with --link downloads through the printed URL', async () => {
  const src = join(dir, 'report-2026.bin');
  writeFileSync(src, randomBytes(20 << 20));
  const { first, exit } = sendLink([src, '--max-downloads', '3']);
  const ev = await first;
  assert.equal(ev.event, 'ticket');
  assert.match(ev.url, /^https:\/\/127\.0\.0\.1:\d+\/#veil1-/);
  assert.equal(ev.url, `${webUrl}#${ev.ticket}`);
  secret(ev);
  assert.equal((await exit).code, 0, (await exit).err);

  const { context, page } = await newPage();
  await page.goto(ev.url);
  await page.getByRole('button', { name: /Download/ }).waitFor();
  const body = await page.textContent('body');
  assert.match(body, /report-2026\.bin/);
  assert.match(body, /21\.0 MB/);
  assert.match(body, /[0-9a-f]{4}(-[0-9a-f]{4}){4}/, 'the sender fingerprint is shown');
  assert.match(body, /Expires/);
  assert.match(body, /in \d+ (day|hour)s?/);
  await shot(page, 'desktop-file');
  const t0 = Date.now();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Download/ }).click()]);
  assert.equal(download.suggestedFilename(), 'report-2026.bin');
  const path = await download.path();
  assert.equal(await download.failure(), null);
  console.log(`# 20 MiB through the browser in ${Date.now() - t0} ms`);
  assert.equal(sha256(path), sha256(src));
  await page.getByText(/Saved to your downloads/).waitFor();
  assert.match(await page.textContent('#done'), /Downloads left: 2/, 'the receipt was counted');
  await shot(page, 'desktop-done');
  await context.close();

  // The same page at phone width.
  const phone = await newPage(390, 844);
  await phone.page.goto(ev.url);
  await phone.page.getByRole('button', { name: /Download/ }).waitFor();
  await shot(phone.page, 'phone-file');
  await phone.context.close();
});

/** The entries of a stored zip: name -> bytes (central directory, no Zip64 needed here). */
function readZip(buf) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'zip: no end of central directory');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    assert.equal(buf.readUInt16LE(p + 10), 0, 'zip: stored, not compressed');
    const size = buf.readUInt32LE(p + 20);
    const [n, x, c] = [buf.readUInt16LE(p + 28), buf.readUInt16LE(p + 30), buf.readUInt16LE(p + 32)];
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + n).toString('utf8');
    const data = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    out.set(name, buf.subarray(data, data + size));
    p += 46 + n + x + c;
  }
  return out;
}

test('a folder downloads as one zip; the printed URL also works with veil receive', async () => {
  const root = join(dir, 'holiday');
  mkdirSync(join(root, 'photos/raw'), { recursive: true });
  mkdirSync(join(root, 'empty'), { recursive: true });
  const files = {
    'holiday/notes.txt': Buffer.from('sea, sun, süßes\n'),
    'holiday/photos/a.jpg': randomBytes(1500000),
    'holiday/photos/raw/b.raw': randomBytes(700001),
    'holiday/zero.bin': Buffer.alloc(0),
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  const { first, exit } = sendLink([root]);
  const ev = await first;
  secret(ev);
  assert.equal((await exit).code, 0);

  const { context, page } = await newPage();
  await page.goto(ev.url);
  const button = page.getByRole('button', { name: /Download/ });
  await button.waitFor();
  assert.match(await page.textContent('#files'), /photos\/raw\/b\.raw/);
  await shot(page, 'desktop-folder');
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  assert.equal(download.suggestedFilename(), 'holiday.zip');
  const zip = readZip(readFileSync(await download.path()));
  for (const [name, bytes] of Object.entries(files)) assert.ok(zip.get(name)?.equals(bytes), `${name} in the zip`);
  assert.ok(zip.has('holiday/empty/'), 'the empty folder is in the zip');
  await page.getByText(/Saved to your downloads/).waitFor();
  await context.close();

  // The URL, pasted into the CLI, is the ticket.
  const out = join(dir, 'cli-out');
  const r = spawnSync(join(BIN, 'veil'), ['receive', ev.url, '--yes', '--out', out], {
    env: { ...process.env, VEIL_HOME: mkdtempSync(join(dir, 'home-')), VEIL_RELAY: relayEnv },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  for (const [name, bytes] of Object.entries(files)) assert.ok(readFileSync(join(out, name)).equals(bytes), name);
});

test('a password ticket asks for the password (Argon2id in the browser)', async () => {
  const src = join(dir, 'secret-plan.txt');
  writeFileSync(src, 'meet at noon\n'.repeat(1000));
  const { first, exit } = sendLink([src, '--password'], { VEIL_PASSWORD: 'correct horse battery staple' });
  const ev = await first;
  assert.match(ev.ticket, /^veil1p-/);
  secret(ev);
  secrets.push('correct horse battery staple');
  assert.equal((await exit).code, 0);

  const { context, page } = await newPage(390, 844);
  await page.goto(ev.url);
  await page.getByLabel('Password').fill('wrong password');
  await shot(page, 'phone-password');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.getByText('Wrong password').waitFor({ timeout: 20000 });
  await page.getByLabel('Password').fill('correct horse battery staple');
  await page.getByRole('button', { name: 'Unlock' }).click();
  const button = page.getByRole('button', { name: /Download/ });
  await button.waitFor({ timeout: 20000 });
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  assert.equal(sha256(await download.path()), sha256(src));
  await context.close();
});

test('without a service worker (an untrusted certificate) a small download goes through memory', async () => {
  const src = join(dir, 'small.pdf');
  writeFileSync(src, randomBytes(2500000));
  const { first, exit } = sendLink([src]);
  const ev = await first;
  secret(ev);
  assert.equal((await exit).code, 0);
  const { context, page } = await newPage(1280, 860, { serviceWorkers: 'block' });
  await page.goto(ev.url);
  const button = page.getByRole('button', { name: /Download/ });
  await button.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  assert.equal(download.suggestedFilename(), 'small.pdf');
  assert.equal(sha256(await download.path()), sha256(src));
  await page.getByText(/Saved to your downloads/).waitFor();
  await context.close();
});

test('an empty file downloads as an empty file', async () => {
  const src = join(dir, 'empty.txt');
  writeFileSync(src, '');
  const { first, exit } = sendLink([src]);
  const ev = await first;
  secret(ev);
  assert.equal((await exit).code, 0);
  const { context, page } = await newPage();
  await page.goto(ev.url);
  const button = page.getByRole('button', { name: /Download/ });
  await button.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  assert.equal(download.suggestedFilename(), 'empty.txt');
  assert.equal(readFileSync(await download.path()).length, 0);
  await page.getByText(/Saved to your downloads/).waitFor();
  await context.close();
});

function storeChunk(tidHex, index) {
  const base = join(dir, 'relay/store/t', tidHex, 'c');
  const name = index.toString(16).padStart(16, '0');
  const path = join(base, name);
  assert.ok(existsSync(path), `chunk file ${path}`);
  return path;
}

test('a tampered chunk shows an error and no file completes', async () => {
  const src = join(dir, 'tampered.bin');
  writeFileSync(src, randomBytes(3 << 20));
  const { first, exit } = sendLink([src]);
  const ev = await first;
  secret(ev);
  assert.equal((await exit).code, 0);
  const tidHex = f.hex(f.parseTicket(ev.ticket).tid);
  const chunk = storeChunk(tidHex, 2);
  const bytes = readFileSync(chunk);
  bytes[bytes.length - 100] ^= 0x01;
  writeFileSync(chunk, bytes);

  const downloads = join(dir, 'downloads');
  const { context, page } = await newPage();
  await page.goto(ev.url);
  const button = page.getByRole('button', { name: /Download/ });
  await button.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  assert.notEqual(await download.failure(), null, 'the download must fail');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /failed verification/);
  await shot(page, 'desktop-tampered');
  // Nothing to save: the browser holds no completed file under any name.
  await assert.rejects(download.saveAs(join(downloads, 'tampered.bin')));
  assert.ok(!existsSync(join(downloads, 'tampered.bin')));
  await context.close();
});

test('ciphertext endpoints: capability, ranges, download limit, metrics', async () => {
  const src = join(dir, 'once.txt');
  writeFileSync(src, 'only once\n');
  const { first, exit } = sendLink([src, '--max-downloads', '1']);
  const ev = await first;
  secret(ev);
  assert.equal((await exit).code, 0);
  const t = f.parseTicket(ev.ticket);
  const caps = f.capabilities(t.key);
  const base = `${webUrl}v1/transfers/${f.hex(t.tid)}`;
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const get = (path, headers) => ctx.request.get(base + path, { headers });
  const dl = { 'Veil-Download': f.hex(caps.download) };
  assert.equal((await get('/chunks/0', {})).status(), 403, 'no capability');
  assert.equal((await get('/chunks/0', { 'Veil-Download': f.hex(caps.receipt) })).status(), 403, 'wrong capability');
  assert.equal((await get('/chunks/0', { 'Veil-Download': 'zz' })).status(), 403, 'malformed capability');
  const whole = await get('/chunks/0', dl);
  assert.equal(whole.status(), 200);
  const sealed = await whole.body();
  assert.equal(f.hex(f.openChunk(t.key, t.tid, 0n, true, new Uint8Array(sealed))), Buffer.from('only once\n').toString('hex'));
  const part = await get('/chunks/0', { ...dl, Range: 'bytes=10-19' });
  assert.equal(part.status(), 206);
  assert.equal(part.headers()['content-range'], `bytes 10-19/${sealed.length}`);
  assert.ok((await part.body()).equals(sealed.subarray(10, 20)));
  assert.equal((await get('/chunks/0', { ...dl, Range: `bytes=${sealed.length}-` })).status(), 416);
  assert.equal((await get('/chunks/zz', dl)).status(), 404);
  assert.equal((await ctx.request.get(`${webUrl}v1/transfers/nothex/manifest`, { headers: dl })).status(), 404);
  const receipt = (cap) => ctx.request.post(`${base}/receipt`, { headers: { 'Veil-Receipt': f.hex(cap) } });
  assert.equal((await receipt(caps.download)).status(), 403, 'the download capability is not a receipt');
  const counted = await receipt(caps.receipt);
  assert.equal(counted.status(), 200);
  assert.deepEqual(await counted.json(), { remaining: 0 });
  const gone = await get('/chunks/0', dl);
  assert.equal(gone.status(), 410, 'the download limit holds on the web side');
  assert.equal((await gone.json()).code, 'DownloadLimit');
  await ctx.close();
  const metrics = await (await fetch(`http://${httpAddr}/metrics`)).text();
  assert.match(metrics, /veil_relay_downloads_completed_total [1-9]/);
  assert.match(metrics, /veil_relay_bytes_out_total [1-9]/);
  assert.match(metrics, /reason="download_limit"/);
});

test('security headers', async () => {
  const res = await fetchInsecure(webUrl);
  assert.match(res.headers['content-security-policy'], /script-src 'self' 'wasm-unsafe-eval';/);
  assert.doesNotMatch(res.headers['content-security-policy'], /unsafe-inline/);
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.doesNotMatch(res.body, /<script>|<script [^>]*>[^<]/, 'no inline script');
});

// Last: every secret made above is known by now.
test('neither the relay log nor any request the browser made holds a key or a fragment', () => {
  assert.ok(secrets.length >= 8, 'secrets were collected');
  const webLines = relayLog.split('\n').filter((l) => l.includes('web request'));
  assert.ok(webLines.some((l) => l.includes('/chunks/')), `the access log shows chunk requests:\n${relayLog.slice(0, 2000)}`);
  for (const s of secrets) {
    assert.ok(!relayLog.includes(s), 'a secret is in the relay log');
    assert.ok(!relayLog.toLowerCase().includes(s.toLowerCase()), 'a secret is in the relay log (any case)');
  }
  assert.ok(requests.some((r) => r.url.includes('/chunks/')), 'the service worker\'s chunk requests were recorded');
  assert.ok(requests.some((r) => r.url.includes('/receipt')), 'the receipts were recorded');
  for (const r of requests) {
    const seen = JSON.stringify(r).toLowerCase();
    for (const s of secrets) assert.ok(!seen.includes(s.toLowerCase()), `request ${r.url} carries a secret`);
    assert.ok(!r.url.includes('#'), `request ${r.url} carries a fragment`);
    assert.ok(!('referer' in r.headers), `request ${r.url} sends a Referer: ${r.headers.referer}`);
  }
});

async function fetchInsecure(url) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const r = await ctx.request.get(url);
  const out = { headers: r.headers(), body: await r.text() };
  await ctx.close();
  return out;
}
