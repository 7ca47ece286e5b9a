// The service worker: answers a download URL (/dl/<random id>/<name>) with the
// decrypted bytes as they are verified, so the browser's own download manager saves an
// ordinary download and nothing is built in memory. The page hands it each job (key,
// manifest, capabilities) by postMessage; they never leave the browser.
import * as f from './format.js';
import { downloadLength, downloadStream, fileName } from './receive.js';

const jobs = new Map();

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('message', (e) => {
  const job = e.data;
  if (!job || job.type !== 'job' || !e.ports[0]) return;
  const port = e.ports[0];
  jobs.set(job.id, { ...job, port });
  // A job not started within a minute is forgotten (with its key).
  setTimeout(() => jobs.delete(job.id), 60000);
  f.ready().then(
    () => port.postMessage({ ready: true, name: fileName(job) }),
    (err) => port.postMessage({ error: `could not load the decryption code: ${err}` }),
  );
});

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/dl/')) return;
  const id = url.pathname.split('/')[2];
  const job = jobs.get(id);
  jobs.delete(id);
  if (!job) {
    e.respondWith(new Response('This download link is used up: open the veil link again.', { status: 404 }));
    return;
  }
  e.respondWith(respond(job));
});

async function respond(job) {
  await f.ready();
  const name = fileName(job);
  const stream = downloadStream(job, (ev) => job.port.postMessage(ev));
  const single = name.endsWith('.zip') ? 'application/zip' : 'application/octet-stream';
  return new Response(stream, {
    headers: {
      'Content-Type': single,
      'Content-Length': String(downloadLength(job)),
      'Content-Disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
      'Cache-Control': 'no-store',
    },
  });
}
