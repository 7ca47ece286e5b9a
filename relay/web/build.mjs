// Bundle the receive page into dist/ (committed, embedded in veil-relay by include_bytes!,
// so building the relay never needs npm). `node build.mjs --check` rebuilds into a
// temporary folder and fails if dist/ differs (CI: the committed bundle is the source's).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'veil-web-')) : 'dist';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, format: 'iife', target: 'es2022', legalComments: 'none', logLevel: 'warning' };
await build({ ...common, entryPoints: ['src/app.js'], outfile: join(out, 'app.js') });
await build({ ...common, entryPoints: ['src/sw.js'], outfile: join(out, 'sw.js') });
for (const f of ['index.html', 'style.css', 'favicon.svg']) copyFileSync(join('src', f), join(out, f));

if (check) {
  const names = (d) => readdirSync(d).sort();
  const same =
    JSON.stringify(names(out)) === JSON.stringify(names('dist')) &&
    names(out).every((n) => readFileSync(join(out, n)).equals(readFileSync(join('dist', n))));
  rmSync(out, { recursive: true, force: true });
  if (!same) {
    console.error('relay/web/dist is out of date: run `npm run build` in relay/web and commit dist/');
    process.exit(1);
  }
  console.log('relay/web/dist matches the sources');
}
