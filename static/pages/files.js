// switchboard dashboard: the Files page: resumable uploads (tus, hashed in
// the browser and checked by the server: static/tus.js), with progress,
// speed, Pause, Resume and Cancel; the stored files listed, downloaded,
// deleted.
import { $, csrfToken, api, toast, bytes, el, live, stamp, start } from '../app.js';
import { micros, shq, pyMessagePreamble, serviceReach } from '../bscs.js';
import { Upload, keptUploads, held, discard, fingerprint } from '../tus.js';

function initFiles() {
  const list = $('#files tbody');
  const admin = $('#files').dataset.admin === 'true';
  const search = $('#files-search');
  let files = [];
  const copy = async (hash, button) => {
    try {
      await navigator.clipboard.writeText(hash);
      button.textContent = 'Copied';
    } catch (_) {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  };
  const remove = async (name) => {
    if (!window.confirm(`Delete ${name}? This cannot be undone.`)) return;
    try {
      await api('DELETE', `/api/v1/files/${encodeURIComponent(name)}`);
      toast(`${name} deleted`);
      // The live stream's file_deleted says so too; no need to wait for it.
      files = files.filter((f) => f.name !== name);
      render();
    } catch (e) {
      toast(e.message, 'error');
    }
  };
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = files.filter((f) => f.name.toLowerCase().includes(q));
    list.replaceChildren(...shown.map((f) => {
      const when = stamp(f.modified);
      const copyButton = el('button', { type: 'button', class: 'small', 'aria-label': `Copy the SHA-256 of ${f.name}` }, 'Copy');
      copyButton.addEventListener('click', () => copy(f.sha256, copyButton));
      const row = el('tr', { 'data-name': f.name },
        el('td', {}, el('a', { href: `/api/v1/files/${encodeURIComponent(f.name)}`, download: f.name }, f.name)),
        el('td', { class: 'num' }, bytes(f.size)),
        el('td', { class: 'hash-short', title: f.sha256, 'data-sha256': f.sha256 }, el('code', {}, f.sha256.slice(0, 12)), ' ', copyButton),
        el('td', { title: when.utc }, when.text));
      if (admin) {
        const del = el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${f.name}`, 'data-action': 'delete' }, 'Delete');
        del.addEventListener('click', () => remove(f.name));
        row.append(el('td', { class: 'actions-cell' }, del));
      }
      return row;
    }));
    $('#files-count').textContent = q ? `${shown.length} of ${files.length}` : `${files.length}`;
    const empty = $('#files-empty');
    empty.hidden = shown.length > 0;
    empty.textContent = files.length ? `No file name contains “${search.value.trim()}”.` : 'No files yet.';
  };
  const refresh = async () => {
    try {
      files = await api('GET', '/api/v1/files');
      render();
    } catch (e) {
      toast(e.message, 'error');
    }
  };
  search.addEventListener('input', render);
  // The list follows what happens: a file stored (by any client) or deleted.
  live({
    events: (batch) => {
      const gone = new Set(batch.filter((e) => e.type === 'file_deleted').map((e) => e.name));
      if (gone.size) { files = files.filter((f) => !gone.has(f.name)); render(); }
      if (batch.some((e) => e.type === 'file_stored')) refresh();
    },
  });
  refresh();
  initUploads(refresh, () => files);
}

/** Words for a speed in bytes per second. */
const speedText = (bps) => (bps > 0 ? `${bytes(bps)}/s` : '');

/** The uploads panel: one row per file, one upload running at a time. */
function initUploads(refresh, listed) {
  const input = $('#file-input');
  if (!input) return; // a viewer: no uploads
  const max = Number(input.dataset.max);
  const user = $('#uploads').dataset.user;
  const tbody = $('#uploads tbody');
  const said = $('#uploads-said');
  const rows = new Map(); // fingerprint -> row
  const uploads = new Map(); // fingerprint -> Upload
  const queue = [];
  let running = null;

  // Finished after all? The list (or the server's, fresh) has it by hash.
  const findStored = async (sha256, size) => {
    const match = (all) => all.find((f) => f.sha256 === sha256 && f.size === size);
    return match(listed()) || match(await api('GET', '/api/v1/files').catch(() => []));
  };

  const row = (fp, name, size) => {
    const old = rows.get(fp);
    if (old && !['verified', 'cancelled', 'refused', 'mismatch'].includes(old.tr.dataset.state)) return old;
    const r = {
      bar: el('progress', { max: 1, value: 0, 'aria-label': `Progress of ${name}` }),
      status: el('span', { class: 'status' }, 'waiting'),
      speed: el('span', { class: 'speed', 'data-field': 'speed' }),
      stored: el('td', { 'data-field': 'stored' }),
      hash: el('td', { class: 'mono hash', 'data-field': 'sha256' }),
      pause: el('button', { type: 'button', class: 'small', 'data-action': 'pause', 'aria-label': `Pause ${name}` }, 'Pause'),
      resume: el('button', { type: 'button', class: 'small', 'data-action': 'resume', 'aria-label': `Resume ${name}` }, 'Resume'),
      cancel: el('button', { type: 'button', class: 'small danger', 'data-action': 'cancel', 'aria-label': `Cancel ${name}` }, 'Cancel'),
    };
    r.tr = el('tr', { 'data-file': name, 'data-fp': fp },
      el('td', {}, name, el('span', { class: 'count' }, ` ${bytes(size)}`)),
      el('td', { class: 'progress-cell' }, r.bar, ' ', r.status, ' ', r.speed),
      r.stored, r.hash,
      el('td', { class: 'actions-cell' }, r.pause, r.resume, r.cancel));
    if (old) old.tr.replaceWith(r.tr); else tbody.append(r.tr);
    rows.set(fp, r);
    $('#uploads').hidden = false;
    return r;
  };

  // Which buttons a state offers.
  const BUTTONS = {
    waiting: ['pause', 'cancel'], hashing: ['pause', 'cancel'], sending: ['pause', 'cancel'],
    retrying: ['pause', 'cancel'], paused: ['resume', 'cancel'], held: ['cancel'], failed: ['resume', 'cancel'],
  };
  const show = (r, state, words, up) => {
    const shown = state === 'failed' && !up?.url ? [] : (BUTTONS[state] || []);
    for (const b of ['pause', 'resume', 'cancel']) r[b].hidden = !shown.includes(b);
    // The row's state for the style and for tests: the old names kept.
    r.tr.dataset.state = state === 'failed' ? 'refused' : state;
    r.status.textContent = words;
    if (!['sending', 'hashing'].includes(state)) r.speed.textContent = '';
  };
  const announce = (text) => { said.textContent = text; };

  const next = () => {
    if (running && ['hashing', 'sending', 'retrying', 'new', 'waiting'].includes(running.state)) return;
    running = queue.shift() || null;
    if (running) running.start();
  };
  const enqueue = (up) => {
    if (!queue.includes(up) && running !== up) queue.push(up);
    next();
  };

  const begin = (file) => {
    const fp = fingerprint(user, file);
    const already = uploads.get(fp);
    if (already && !['verified', 'mismatch', 'failed', 'cancelled'].includes(already.state)) {
      // The same file again: a paused one goes on, a running one is left be.
      if (already.state === 'paused') rows.get(fp).resume.click();
      return;
    }
    const r = row(fp, file.name, file.size);
    if (file.size > max) {
      show(r, 'failed', `too large: the limit is ${bytes(max)}`);
      return;
    }
    const t0 = performance.now();
    const up = new Upload({
      file, user, csrf: csrfToken(), findStored,
      on: {
        state: (state, words) => {
          show(r, state, words, up);
          if (['paused', 'verified', 'mismatch', 'failed', 'cancelled'].includes(state)) {
            announce(`${file.name}: ${words}`);
            if (running === up) { running = null; next(); }
          }
          if (state === 'verified' || state === 'mismatch') finished(r, up, t0);
          if (state === 'cancelled') { r.bar.value = 0; rows.delete(fp); }
        },
        progress: ({ phase, done, total, speed }) => {
          r.bar.value = total ? done / total : 1;
          if (phase === 'held') return; // the state's words say it
          const pct = total ? Math.floor((100 * done) / total) : 100;
          r.status.textContent = phase === 'hashing'
            ? `computing the SHA-256 in this browser: ${pct}%`
            : `${pct}% · ${bytes(done)} of ${bytes(total)}`;
          r.speed.textContent = phase === 'sending' ? speedText(speed) : '';
        },
      },
    });
    const unqueue = () => {
      const i = queue.indexOf(up);
      if (i >= 0) queue.splice(i, 1);
    };
    r.pause.onclick = () => { unqueue(); up.pause(); };
    r.resume.onclick = () => { show(r, 'waiting', 'waiting to resume', up); up.state = 'waiting'; enqueue(up); };
    r.cancel.onclick = () => { unqueue(); up.cancel(); };
    uploads.set(fp, up);
    show(r, 'waiting', up.resumed ? 'waiting to resume (the server holds part of it)' : 'waiting', up);
    up.state = 'waiting';
    enqueue(up);
  };

  const finished = async (r, up, t0) => {
    r.bar.value = 1;
    r.stored.textContent = `${up.stored} (${bytes(up.file.size)})`;
    // Short, as in the list; the whole hash on hover and in data-sha256.
    r.hash.textContent = up.sha256.slice(0, 12);
    r.hash.title = up.sha256;
    r.hash.dataset.sha256 = up.sha256;
    const ms = performance.now() - t0;
    refresh();
    const { addr, note } = await serviceReach('files');
    const name = up.file.name;
    $('#put-cli').textContent = `${note}switchboard put --resume ${addr} ${shq(name)}`;
    $('#put-python').textContent = `${note}${pyMessagePreamble(addr)}\ndata = open(${JSON.stringify(name)}, "rb").read()  # small files; stream big ones\nsend({"op": "put", "name": ${JSON.stringify(name)}, "size": len(data)}, data)\nprint(receive(body=False)[0])  # {"ok": true, "name": ..., "size": ..., "sha256": ...}: no body follows`;
    $('#put-times').textContent = `From choosing the file to stored (SHA-256 in this browser, then browser → HTTP → dashboard, tus): ${micros(ms * 1000)}, ${speedText((up.file.size * 1000) / Math.max(ms, 1))} on average.`;
    $('#put-compare').hidden = false;
  };

  // Uploads an earlier visit left unfinished: what the server holds, and a
  // way to go on (choose the file again) or to cancel.
  for (const kept of keptUploads(user)) {
    const r = row(kept.fp, kept.name, kept.size);
    show(r, 'held', 'checking what the server holds…');
    r.cancel.onclick = async () => {
      show(r, 'cancelling', 'cancelling…');
      try {
        await discard(kept, csrfToken());
        rows.delete(kept.fp);
        show(r, 'cancelled', 'cancelled: the server freed what it held');
        announce(`${kept.name}: cancelled`);
      } catch (e) {
        show(r, 'held', `could not cancel: ${e.message}`);
      }
    };
    held(kept.url, csrfToken()).then(({ offset }) => {
      if (r.tr.dataset.state !== 'held') return;
      r.bar.value = kept.size ? offset / kept.size : 0;
      show(r, 'held', `${Math.floor((100 * offset) / (kept.size || 1))}% is on the server: choose this file again to go on from there`);
    }, (e) => {
      if (r.tr.dataset.state !== 'held') return;
      if (e.gone) {
        discard(kept, csrfToken()).catch(() => {});
        r.tr.remove();
        rows.delete(kept.fp);
      } else {
        show(r, 'held', `${e.message}: choose this file again to go on`);
      }
    });
  }

  const choose = (chosen) => { for (const f of chosen) begin(f); };
  input.addEventListener('change', () => { choose(Array.from(input.files)); input.value = ''; });
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    choose(Array.from(e.dataTransfer.files));
  });
}

start(initFiles);
