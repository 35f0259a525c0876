// switchboard dashboard: resumable uploads from the browser, over tus 1.0.0
// (tus.io) at /api/v1/uploads/. One Upload is one file: it hashes the file
// with SHA-256 first (in a worker, static/sha256_worker.js) and declares
// that hash when it creates the upload, so the server stores the file
// under its name only if what arrived hashes the same; then it sends the
// file in parts from the offset the server says it holds, and on a lost
// connection, a server that restarted or a reload of the page, asks again
// and goes on from there. The upload's address is kept in localStorage
// under the file's fingerprint (account, name, size, last modified), so
// choosing the same file again after the tab was closed resumes it.
//
// Our own small client rather than tus-js-client: its browser build is a
// UMD bundle, not an ES module, and it neither declares a whole-file
// SHA-256 nor sends our CSRF header by itself; what the page needs is
// creation, HEAD, PATCH and DELETE, which are a few requests each.
// tests/tus.rs proves the server against tus-js-client itself.
// Not here: the page (static/pages/files.js); creation-with-upload,
// per-part checksums (a cut part would then be dropped whole, while without
// one the server keeps every byte that arrived), parallel parts.

const ENDPOINT = '/api/v1/uploads/';
const TUS = '1.0.0';
/** The largest part sent in one PATCH: a part ends, and its bytes are
 *  synced, at least this often. */
export const PART = 64 * 1024 * 1024;
/** Waits between attempts after a failure, in seconds (the last repeats). */
const RETRY_S = [1, 2, 4, 8, 15, 30];
const STORE_KEY = 'switchboard.uploads';

/** A failed request: `retry` when trying again later may succeed. */
export class UploadError extends Error {
  constructor(message, { status = 0, retry = false, gone = false } = {}) {
    super(message);
    this.status = status;
    this.retry = retry;
    this.gone = gone;
  }
}

/** What a failed tus request means, in plain words. */
function failure(status, text) {
  const said = (text || '').trim();
  const because = said ? `: ${said}` : '';
  switch (status) {
    case 0: return new UploadError('the connection to switchboard was lost', { retry: true });
    case 401: return new UploadError('you are signed out: sign in again, then choose the file again to continue', { status });
    case 403: return new UploadError(`switchboard refused the upload (reload the page and try again)${because}`, { status });
    case 404: return new UploadError('the server no longer holds this upload (it expired, was cancelled, or was finished)', { status, gone: true });
    case 408: return new UploadError('the connection stalled', { status, retry: true });
    case 409: return new UploadError('the server holds a different amount than expected; asking again', { status, retry: true });
    case 413: return new UploadError(`too large${because}`, { status });
    case 423: return new UploadError('the server is still finishing the previous part', { status, retry: true });
    case 429: return new UploadError(said || 'too many unfinished uploads on this account: finish or cancel one', { status });
    case 460: return new UploadError(`what arrived is not this file${because}. Was the file changed while it was sent? Choose it again to start over`, { status });
    case 507: return new UploadError(`the server has no room for it${because}`, { status });
    default:
      return new UploadError(`switchboard answered ${status}${because}`, { status, retry: status >= 500 });
  }
}

function headers(csrf, extra = {}) {
  return { 'Tus-Resumable': TUS, 'X-CSRF-Token': csrf, ...extra };
}

async function call(method, url, init) {
  let res;
  try {
    res = await fetch(url, { method, credentials: 'same-origin', cache: 'no-store', ...init });
  } catch (_) {
    throw failure(0);
  }
  if (!res.ok) throw failure(res.status, await res.text().catch(() => ''));
  return res;
}

const b64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

// ---- what the browser keeps: the upload's address per file fingerprint --

function readAll() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || '{}') || {};
  } catch (_) {
    return {};
  }
}
function writeAll(all) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(all));
  } catch (_) { /* storage off or full: this upload just won't outlive the tab */ }
}
/** A file's fingerprint for `user`: what identifies it across a reload. */
export const fingerprint = (user, file) => JSON.stringify([user, file.name, file.size, file.lastModified]);
/** The kept uploads of `user`: [{ fp, url, sha256, name, size, modified }]. */
export function keptUploads(user) {
  return Object.entries(readAll())
    .map(([fp, e]) => ({ fp, ...e }))
    .filter((e) => { try { return JSON.parse(e.fp)[0] === user; } catch (_) { return false; } });
}
function keep(fp, entry) {
  const all = readAll();
  all[fp] = entry;
  writeAll(all);
}
function forget(fp) {
  const all = readAll();
  delete all[fp];
  writeAll(all);
}

/** How much the server holds of the upload at `url`: { offset, length }. */
export async function held(url, csrf) {
  const res = await call('HEAD', url, { headers: headers(csrf) });
  return { offset: Number(res.headers.get('Upload-Offset')), length: Number(res.headers.get('Upload-Length')) };
}

/** Ends the upload at `url` on the server (its space is freed at once). */
export async function terminate(url, csrf) {
  try {
    await call('DELETE', url, { headers: headers(csrf) });
  } catch (e) {
    if (!e.gone) throw e;
  }
}

/** Forgets a kept upload and ends it on the server. */
export async function discard(kept, csrf) {
  await terminate(kept.url, csrf);
  forget(kept.fp);
}

/** One PATCH of `blob` at `offset`; `progress(sentInThisPart)` as it goes;
 *  `hold(abort)` receives the way to cut it (Pause, Cancel). */
function patch(url, offset, blob, csrf, progress, hold) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PATCH', url);
    const h = headers(csrf, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' });
    for (const [k, v] of Object.entries(h)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => progress(e.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status !== 204) {
        reject(failure(xhr.status, xhr.responseText));
        return;
      }
      const name = xhr.getResponseHeader('Upload-Stored-Name');
      resolve({
        offset: Number(xhr.getResponseHeader('Upload-Offset')),
        stored: name === null ? null : decodeURIComponent(name),
        sha256: xhr.getResponseHeader('Upload-Sha256'),
      });
    });
    xhr.addEventListener('error', () => reject(failure(0)));
    xhr.addEventListener('abort', () => reject(new UploadError('stopped')));
    hold(() => xhr.abort());
    xhr.send(blob);
  });
}

/** SHA-256 of `file` in a worker; `progress(done)` as it goes; `hold(stop)`. */
function hashFile(file, progress, hold) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sha256_worker.js', import.meta.url), { type: 'module' });
    const stop = (e) => { worker.terminate(); reject(e); };
    hold(() => stop(new UploadError('stopped')));
    worker.onmessage = ({ data }) => {
      if (data.sha256) { worker.terminate(); resolve(data.sha256); }
      else if (data.error) stop(new UploadError(data.error));
      else progress(data.done);
    };
    worker.onerror = (e) => stop(new UploadError(`this browser could not hash the file (${e.message || 'worker failed'})`));
    worker.postMessage(file);
  });
}

/**
 * One file's resumable upload. `on.state(state, words)` hears every change
 * (`hashing`, `sending`, `retrying`, `paused`, `verified`, `failed`,
 * `cancelled`); `on.progress({ phase, done, total, speed })` the bytes.
 */
export class Upload {
  constructor({ file, user, csrf, on, findStored }) {
    this.file = file;
    this.csrf = csrf;
    this.on = on;
    this.findStored = findStored;
    this.fp = fingerprint(user, file);
    const kept = readAll()[this.fp];
    this.url = kept?.url || null;
    this.sha256 = kept?.sha256 || null;
    this.resumed = Boolean(this.url);
    this.run = 0; // each start() gets a number; pause/cancel end the current one
    this.stop = null;
    this.state = 'new';
  }

  set(state, words) {
    this.state = state;
    this.on.state(state, words);
  }

  /** Starts, or resumes after a pause. */
  start() {
    const run = ++this.run;
    this.go(run).catch((e) => {
      if (run !== this.run) return;
      if (e.status === 460) {
        // The server discarded it; trying again starts over, hash and all.
        forget(this.fp);
        this.url = null;
        this.sha256 = null;
      }
      this.set('failed', e.message);
    });
  }

  /** Stops sending; the server keeps what it has. */
  pause() {
    const run = ++this.run;
    this.halt();
    this.set('paused', 'paused: the server keeps what it has; Resume goes on from there');
    // What the browser handed to its socket is more than the server has:
    // the bar shows what the server says it holds.
    if (this.url) {
      held(this.url, this.csrf).then(({ offset }) => {
        if (run !== this.run) return;
        const size = this.file.size;
        this.on.progress({ phase: 'held', done: offset, total: size });
        this.set('paused', `paused at ${Math.floor((100 * offset) / (size || 1))}%: the server keeps what it has; Resume goes on from there`);
      }, () => {});
    }
  }

  /** Stops and ends the upload on the server, which frees its space. */
  async cancel() {
    this.run++;
    this.halt();
    this.set('cancelling', 'cancelling…');
    try {
      if (this.url) await terminate(this.url, this.csrf);
      forget(this.fp);
      this.set('cancelled', 'cancelled: the server freed what it held');
    } catch (e) {
      this.set('failed', `could not cancel: ${e.message}`);
    }
  }

  halt() {
    const stop = this.stop;
    this.stop = null;
    if (stop) stop();
  }

  hold(run) {
    return (stop) => {
      if (run === this.run) this.stop = stop; else stop();
    };
  }

  async go(run) {
    const live = () => run === this.run;
    const size = this.file.size;
    if (!this.sha256) {
      this.set('hashing', 'computing the SHA-256 in this browser');
      this.on.progress({ phase: 'hashing', done: 0, total: size });
      this.sha256 = await hashFile(this.file, (done) => {
        if (live()) this.on.progress({ phase: 'hashing', done, total: size });
      }, this.hold(run));
      if (!live()) return;
    }
    for (let attempt = 0; live();) {
      try {
        await this.send(run);
        return;
      } catch (e) {
        if (!live()) return;
        if (!e.retry) throw e;
        const wait = RETRY_S[Math.min(attempt, RETRY_S.length - 1)];
        attempt = e.status === 409 ? attempt : attempt + 1;
        this.set('retrying', `${e.message}; trying again in ${wait} s`);
        await this.sleep(wait * 1000, run);
      }
    }
  }

  /** Waits `ms`, less if the browser comes back online; ends with a pause. */
  sleep(ms, run) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); window.removeEventListener('online', done); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener('online', done);
      this.hold(run)(done);
    });
  }

  async create() {
    const meta = `filename ${b64(this.file.name)},sha256 ${b64(this.sha256)}`;
    const res = await call('POST', ENDPOINT, {
      headers: headers(this.csrf, { 'Upload-Length': String(this.file.size), 'Upload-Metadata': meta }),
    });
    this.url = new URL(res.headers.get('Location'), location.href).pathname;
    keep(this.fp, { url: this.url, sha256: this.sha256, name: this.file.name, size: this.file.size, modified: this.file.lastModified });
  }

  /** Sends what the server lacks, part by part, until it stores the file. */
  async send(run) {
    const size = this.file.size;
    if (!this.url) await this.create();
    let offset;
    try {
      ({ offset } = await held(this.url, this.csrf));
    } catch (e) {
      if (!e.gone) throw e;
      // Finished after all (its last answer was lost)? Else start again.
      const stored = await this.findStored(this.sha256, size);
      if (stored) return this.done({ stored: stored.name, sha256: stored.sha256 });
      forget(this.fp);
      this.url = null;
      this.set('retrying', `${e.message}; starting again from the beginning`);
      await this.create();
      offset = 0;
    }
    if (run !== this.run) return undefined;
    this.set('sending', offset > 0 ? `resuming from ${Math.floor((100 * offset) / size)}%` : 'sending');
    const samples = [[performance.now(), offset]];
    for (;;) {
      const end = Math.min(size, offset + PART);
      const from = offset;
      const r = await patch(this.url, from, this.file.slice(from, end), this.csrf, (sent) => {
        if (run !== this.run) return;
        const now = performance.now();
        samples.push([now, from + sent]);
        while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
        const [t0, b0] = samples[0];
        const speed = now > t0 ? ((from + sent - b0) * 1000) / (now - t0) : 0;
        this.on.progress({ phase: 'sending', done: from + sent, total: size, speed });
      }, this.hold(run));
      offset = r.offset;
      if (r.stored || offset >= size) return this.done(r);
      if (run !== this.run) return undefined;
    }
  }

  done(r) {
    forget(this.fp);
    this.stored = r.stored || this.file.name;
    if (r.sha256 && r.sha256 !== this.sha256) {
      this.set('mismatch', 'stored, but the server reports another SHA-256 than this browser’s!');
      return;
    }
    this.set('verified', 'stored ✓ the server checked its SHA-256 against this browser’s');
  }
}
