// switchboard dashboard: the Files page: upload (hashed in the browser), list, download, delete.
import { $, csrfToken, api, toast, bytes, el, live, stamp, start, request } from '../app.js';
import { micros, shq, pyMessagePreamble, serviceAddr } from '../bscs.js';

const BROWSER_HASH_LIMIT = 256 * 1024 * 1024;

async function browserSha256(file) {
  if (!window.crypto?.subtle) return { note: 'this page is not a secure context: no hashing here' };
  if (file.size > BROWSER_HASH_LIMIT) return { note: 'too large to hash in the browser' };
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return { hex: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('') };
}

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

  const input = $('#file-input');
  if (!input) return; // a viewer: no uploads
  const max = Number(input.dataset.max);
  const uploads = $('#uploads tbody');
  let queue = Promise.resolve();

  const upload = (file) => {
    const bar = el('progress', { max: 1, value: 0 });
    const status = el('span', { class: 'status' }, 'waiting');
    const stored = el('td', { 'data-field': 'stored' });
    const hash = el('td', { class: 'mono hash', 'data-field': 'sha256' });
    const row = el('tr', { 'data-file': file.name },
      el('td', {}, file.name, el('span', { class: 'count' }, ` ${bytes(file.size)}`)),
      el('td', {}, bar, ' ', status), stored, hash);
    uploads.append(row);
    $('#uploads').hidden = false;
    if (file.size > max) {
      status.textContent = `too large: the limit is ${bytes(max)}`;
      row.dataset.state = 'refused';
      return Promise.resolve();
    }
    const ours = browserSha256(file).catch((e) => ({ note: e.message }));
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const t0 = performance.now();
      xhr.open('PUT', `/api/v1/files/${encodeURIComponent(file.name)}`);
      xhr.setRequestHeader('X-CSRF-Token', csrfToken());
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) {
          bar.value = e.loaded / e.total;
          status.textContent = `${Math.floor((100 * e.loaded) / e.total)}%`;
        }
      });
      xhr.addEventListener('load', async () => {
        const bs = (performance.now() - t0) * 1000;
        let r = {};
        try { r = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status !== 200) {
          status.textContent = r.error || `${xhr.status} ${xhr.statusText}`;
          row.dataset.state = 'refused';
          resolve();
          return;
        }
        bar.value = 1;
        stored.textContent = `${r.name} (${bytes(r.size)})`;
        // Short, as in the list; the whole hash on hover and in data-sha256.
        hash.textContent = r.sha256.slice(0, 12);
        hash.title = r.sha256;
        hash.dataset.sha256 = r.sha256;
        const mine = await ours;
        if (mine.hex) {
          const same = mine.hex === r.sha256;
          status.textContent = same ? 'stored ✓ SHA-256 matches this browser' : 'stored, but the SHA-256 differs from this browser’s!';
          row.dataset.state = same ? 'verified' : 'mismatch';
        } else {
          status.textContent = `stored (${mine.note})`;
          row.dataset.state = 'stored';
        }
        const addr = await serviceAddr('files');
        $('#put-cli').textContent = `switchboard put ${addr} ${shq(file.name)}`;
        $('#put-python').textContent = `${pyMessagePreamble(addr)}\ndata = open(${JSON.stringify(file.name)}, "rb").read()  # small files; stream big ones\nsend({"op": "put", "name": ${JSON.stringify(file.name)}, "size": len(data)}, data)\nprint(receive(body=False)[0])  # {"ok": true, "name": ..., "size": ..., "sha256": ...}: no body follows`;
        $('#put-times').textContent = `B/S (browser → HTTP → dashboard → files): ${micros(bs)}; C/S leg (dashboard’s files client → files service, hashed and synced): ${micros(r.relay_us)}`;
        $('#put-compare').hidden = false;
        refresh();
        resolve();
      });
      xhr.addEventListener('error', () => {
        status.textContent = 'the upload failed (connection lost)';
        // The server gone altogether? Then the page says so, as every page does.
        request('/healthz', { cache: 'no-store' }).catch(() => {});
        row.dataset.state = 'refused';
        resolve();
      });
      status.textContent = 'sending';
      xhr.send(file);
    });
  };

  const enqueue = (files) => {
    for (const f of files) queue = queue.then(() => upload(f));
  };
  input.addEventListener('change', () => { enqueue(Array.from(input.files)); input.value = ''; });
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    enqueue(Array.from(e.dataTransfer.files));
  });
}

start(initFiles);
