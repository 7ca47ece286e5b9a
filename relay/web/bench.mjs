// Browser receive benchmark: `node bench.mjs [MiB]` (default 200) in relay/web, after
// `cargo build -p veil-cli -p veil-relay` (VEIL_BIN_DIR to use other binaries). Sends a
// random file with `veil send --link`, downloads it through the page in headless
// Chromium, compares the bytes, and prints the time and the summed RSS of Chromium's
// processes before the click and at the peak (sampled every 200 ms; every Chromium on
// the machine counts, so run it with no other Chromium open).
import { spawn, spawnSync, execSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
const BIN = process.env.VEIL_BIN_DIR || fileURLToPath(new URL('../../target/debug', import.meta.url));
const MB = Number(process.argv[2] || 200);
const dir = mkdtempSync(join(tmpdir(), 'veil-web-bench-'));
const relay = spawn(BIN+'/veil-relay', ['--listen','127.0.0.1:0','--http','127.0.0.1:0','--web','127.0.0.1:0','--data',dir+'/relay'], {stdio:['ignore','pipe','ignore']});
let env;
for await (const l of createInterface({input: relay.stdout})) { const m=l.match(/^clients: VEIL_RELAY=(\S+)/); if (m) { env=m[1]; break; } }
execSync(`head -c ${MB}M /dev/urandom > ${dir}/big.bin`);
let t=Date.now();
const r = spawnSync(BIN+'/veil', ['send','--link','--json',dir+'/big.bin'], {env:{...process.env, VEIL_HOME: dir+'/h', VEIL_RELAY: env}, encoding:'utf8'});
console.log('upload ms', Date.now()-t);
const ev = JSON.parse(r.stdout.split('\n')[0]);
const b = await chromium.launch({executablePath: process.env.VEIL_CHROMIUM || '/usr/bin/chromium', headless:true, args:['--no-sandbox','--ignore-certificate-errors','--disable-gpu','--disable-quic']});
const ctx = await b.newContext({acceptDownloads:true, ignoreHTTPSErrors:true});
const p = await ctx.newPage();
await p.goto(ev.url);
const btn = p.getByRole('button', {name:/Download/}); await btn.waitFor();
let peak = 0;
const rss = () => execSync(`ps -C chromium,chrome,headless_shell -o rss= 2>/dev/null || true`).toString().trim().split(/\s+/).filter(Boolean).map(Number).reduce((a,b)=>a+b,0);
const base = rss();
const sample = setInterval(() => {
  const out = execSync(`ps -C chromium,chrome,headless_shell -o rss= 2>/dev/null || true`).toString();
  const pids = out.trim().split(/\s+/).filter(Boolean).map(Number);
  const sum = pids.reduce((a,b)=>a+b,0); if (sum>peak) peak=sum;
}, 200);
t=Date.now();
const [d] = await Promise.all([p.waitForEvent('download'), btn.click()]);
const path = await d.path();
const ms = Date.now()-t;
clearInterval(sample);
console.log(`download ${MB} MiB in ${ms} ms = ${(MB*1.048576/(ms/1000)).toFixed(1)} MB/s; chromium total RSS before ${(base/1024).toFixed(0)} MiB, peak ${(peak/1024).toFixed(0)} MiB; failure=${await d.failure()}`);
console.log(execSync(`cmp ${path} ${dir}/big.bin && echo same`).toString());
await b.close(); relay.kill();
execSync(`rm -rf ${dir}`);
