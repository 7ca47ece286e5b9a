// The receive page: reads the ticket from the URL fragment (never sent to any server),
// unlocks a password ticket, opens and shows the signed manifest, and hands the download
// to the service worker (sw.js), which streams the verified bytes to the browser's
// download manager.
import * as f from './format.js';
import { api, describe, downloadStream, fileName, getBytes, relayError, single } from './receive.js';

const $ = (id) => document.getElementById(id);
const STATES = ['loading', 'empty', 'locked', 'offer', 'failed'];
function show(state) {
  for (const s of STATES) $(s).hidden = s !== state;
}
function fail(message) {
  $('error').textContent = message;
  show('failed');
}

const swReady =
  'serviceWorker' in navigator
    ? navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(() => navigator.serviceWorker.ready)
    : Promise.reject(new Error('this browser has no service workers'));
swReady.catch(() => {});

export function formatSize(n) {
  const v = Number(n);
  if (v < 1000) return `${v} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let x = v;
  let i = -1;
  do {
    x /= 1000;
    i++;
  } while (x >= 1000 && i < units.length - 1);
  return `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ${units[i]}`;
}

function formatExpiry(secs) {
  const d = new Date(Date.now() + secs * 1000);
  const when = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const units = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [s, name] of units) {
    if (secs >= s) {
      const n = Math.floor(secs / s);
      return `in ${n} ${name}${n === 1 ? '' : 's'} (${when})`;
    }
  }
  return 'in less than a minute';
}

async function start() {
  show('loading');
  const fragment = location.hash.slice(1);
  if (!fragment) {
    show('empty');
    return;
  }
  let ticket;
  try {
    await f.ready();
    ticket = f.parseTicket(decodeURIComponent(fragment));
  } catch (e) {
    fail(e instanceof f.FormatError ? 'This link is not a valid veil link. Check that it was copied whole.' : String(e));
    return;
  }
  if (!ticket.password) {
    await open(ticket.tid, ticket.key);
    return;
  }
  show('locked');
  $('password').focus();
  $('password-form').onsubmit = (ev) => {
    ev.preventDefault();
    $('unlock').disabled = true;
    $('unlock').textContent = 'Unlocking…';
    $('password-error').hidden = true;
    // Let the button repaint before Argon2id (256 MiB) holds the thread for a second.
    setTimeout(async () => {
      let key;
      try {
        key = f.unwrapTicket(ticket, $('password').value);
      } catch (e) {
        $('password-error').textContent =
          e.kind === 'DecryptionFailed' ? 'Wrong password. Try again.' : e.message || String(e);
        $('password-error').hidden = false;
        $('unlock').disabled = false;
        $('unlock').textContent = 'Unlock';
        return;
      }
      show('loading');
      await open(ticket.tid, key);
    }, 30);
  };
}

async function open(tid, key) {
  const caps = f.capabilities(key);
  let status;
  let opened;
  try {
    const res = await fetch(api(tid), { headers: { 'Veil-Download': f.hex(caps.download) }, cache: 'no-store' });
    if (!res.ok) throw await relayError(res);
    status = await res.json();
    if (!status.manifest) throw new Error('The sender has not finished uploading yet. Try again in a moment.');
    opened = f.openManifest(await getBytes(`${api(tid)}/manifest`, caps.download), key, tid);
  } catch (e) {
    fail(describe(e));
    return;
  }
  render(tid, key, caps, status, opened);
}

function render(tid, key, caps, status, { manifest: m, signer, senderName }) {
  const files = m.entries.filter((e) => e.kind === 'File');
  const job = { type: 'job', tid, key, download: caps.download, receipt: caps.receipt, manifest: m };
  const name = fileName(job);
  const one = single(m);
  $('what').textContent = m.content === 'Files' ? (one ? 'A file for you' : 'Files for you') : 'A message for you';
  $('title').textContent = one ? name : name.replace(/\.zip$/, '');
  $('summary').textContent = one
    ? formatSize(m.totalSize)
    : `${files.length} file${files.length === 1 ? '' : 's'}, ${formatSize(m.totalSize)}, saved as one .zip`;
  const list = $('files');
  list.textContent = '';
  // One file: its name and size are the title already.
  list.hidden = one;
  const SHOWN = 200;
  // Names below the one top folder that holds everything (the title) are shown relative.
  const top = one ? null : name.replace(/\.zip$/, '');
  const under = top && m.entries.every((e) => e.path === top || e.path.startsWith(`${top}/`));
  const shown = under ? m.entries.filter((e) => e.path !== top) : m.entries;
  for (const e of shown.slice(0, SHOWN)) {
    const path = under ? e.path.slice(top.length + 1) : e.path;
    const li = document.createElement('li');
    li.className = e.kind === 'Dir' ? 'dir' : 'file';
    const n = document.createElement('span');
    n.className = 'name';
    n.textContent = e.kind === 'Dir' ? `${path}/` : path;
    const s = document.createElement('span');
    s.className = 'size';
    s.textContent = e.kind === 'Dir' ? '' : formatSize(e.size);
    li.append(n, s);
    list.append(li);
  }
  if (shown.length > SHOWN) {
    const li = document.createElement('li');
    li.className = 'more';
    li.textContent = `and ${shown.length - SHOWN} more`;
    list.append(li);
  }
  // The name is signed but only a claim; the key's fingerprint is what to compare.
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = senderName ? `${senderName} (as claimed)` : 'No name given';
  const fp = document.createElement('span');
  fp.className = 'fp';
  fp.title = 'Fingerprint of the key that signed this transfer';
  fp.textContent = `key ${f.fingerprint(signer)}`;
  $('sender').textContent = '';
  $('sender').append(who, fp);
  $('expires').textContent = formatExpiry(status.expires_in_secs);
  if (status.max_downloads !== null && status.max_downloads !== undefined) {
    $('limit-row').hidden = false;
    $('limit').textContent = String(Math.max(0, status.max_downloads - status.downloads));
  }
  const button = $('download');
  button.textContent = one ? `Download ${name} (${formatSize(m.totalSize)})` : `Download ${name} (${formatSize(m.totalSize)})`;
  button.onclick = () => download(job, name);
  show('offer');
}

/** The service worker controlling this page, once it does (at most 10 s). */
async function controller() {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the download helper (service worker) did not start')), 5000);
  });
  try {
    await Promise.race([swReady, late]);
    if (!navigator.serviceWorker.controller) {
      const changed = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      await Promise.race([changed, late]);
    }
    return navigator.serviceWorker.controller;
  } finally {
    clearTimeout(timer);
  }
}

/** Largest download saved through memory when no service worker can stream it. */
const MEMORY_LIMIT = 512 * 1000 * 1000;

async function download(job, name) {
  const button = $('download');
  button.disabled = true;
  $('done').hidden = true;
  const total = Number(job.manifest.totalSize);
  $('progress').hidden = false;
  $('progress-text').textContent = 'Starting…';
  const onEvent = progressHandler(name, total);
  let sw;
  try {
    sw = await controller();
  } catch (e) {
    // Service workers need a certificate the browser trusts (not one clicked through).
    if (total > MEMORY_LIMIT) {
      fail(
        `This browser cannot stream the download to disk (${e.message}), and ${formatSize(total)} is too much to ` +
          'hold in memory. Open the link on a relay with a trusted certificate, or use `veil receive` with it.',
      );
      return;
    }
    $('progress-text').textContent = 'Saving through memory (this relay\'s certificate is not trusted by the browser)…';
    try {
      const blob = await new Response(downloadStream(job, onEvent)).blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch {
      // The stream already reported the error.
    }
    return;
  }
  const id = f.hex(crypto.getRandomValues(new Uint8Array(16)));
  const channel = new MessageChannel();
  channel.port1.onmessage = (ev) => {
    const m = ev.data;
    if (m.ready) {
      // A navigation (in a hidden frame) goes through the service worker, whose answer
      // is an attachment: the browser's download manager takes it. (Chromium sends
      // `<a download>` requests past service workers.)
      const frame = document.createElement('iframe');
      frame.hidden = true;
      frame.src = `/dl/${id}/${encodeURIComponent(name)}`;
      document.body.append(frame);
    } else {
      onEvent(m);
    }
  };
  sw.postMessage({ ...job, id }, [channel.port2]);
}

/** Show the events of a download (from the service worker or the in-page fallback). */
function progressHandler(name, total) {
  const button = $('download');
  return (m) => {
    if (m.bytes !== undefined) {
      const pct = total ? Math.min(100, (100 * m.bytes) / total) : 100;
      $('bar-fill').style.width = `${pct}%`;
      $('progress-text').textContent = `Decrypting and verifying… ${formatSize(m.bytes)} of ${formatSize(total)}`;
    } else if (m.warning) {
      $('progress-text').textContent = m.warning;
    } else if (m.done) {
      $('bar-fill').style.width = '100%';
      $('progress-text').textContent = `${formatSize(total)} verified`;
      $('done').textContent =
        `Saved to your downloads as ${name}.` +
        (m.remaining === null || m.remaining === undefined ? '' : ` Downloads left: ${m.remaining}.`);
      $('done').hidden = false;
      if (m.remaining !== null && m.remaining !== undefined) $('limit').textContent = String(m.remaining);
      button.disabled = m.remaining === 0;
      button.textContent = m.remaining === 0 ? 'No downloads left' : 'Download again';
    } else if (m.error) {
      fail(m.error);
    }
  };
}

$('paste-form').onsubmit = (ev) => {
  ev.preventDefault();
  const v = $('paste').value.trim();
  const hash = v.indexOf('#');
  location.hash = hash >= 0 ? v.slice(hash + 1) : v;
};
window.addEventListener('hashchange', start);
start();
