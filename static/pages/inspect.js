// switchboard dashboard: the Inspect page (wire inspector): one connection's captured segments, polled with a `since` cursor, and replay.
import { start, request, loginHref } from '../app.js';

function initInspect() {
  if (document.body.dataset.page !== 'inspect') return;
  const list = document.getElementById('inspect-segments');
  if (!list) return; // no capture: the page says why
  const id = list.dataset.id;
  const status = document.getElementById('inspect-status');
  const stateEl = document.getElementById('inspect-state');
  const search = document.getElementById('inspect-search');
  const pause = document.getElementById('inspect-pause');
  // The page keeps at most this many blocks; older ones leave the page
  // (the capture and the pcapng still have them while held).
  const MAX_BLOCKS = 2000;
  const POLL_MS = 1000;
  let since = 0;
  let paused = false;
  let done = false;
  let timer = null;
  let shown = 0;
  const total = { in: 0, out: 0 };

  const node = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const unhex = (h) => {
    const out = new Uint8Array(h.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = parseInt(h.substr(i * 2, 2), 16);
    return out;
  };
  const printable = (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.');
  const ms = (us) => (us / 1000).toFixed(3);

  // A block shows this many bytes at first; a button shows the rest.
  const FIRST_BYTES = 1024;

  /** Rows of 16 bytes as hex and as text. */
  function rows(bytes) {
    const hexRows = [];
    const textRows = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = bytes.slice(i, i + 16);
      hexRows.push(Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' '));
      textRows.push(Array.from(row, printable).join(''));
    }
    return [hexRows.join('\n'), textRows.join('\n')];
  }

  /** One segment's block: a header line, then 16-byte rows of hex and text. */
  function block(s) {
    const bytes = unhex(s.hex);
    const [hex, text] = rows(bytes.slice(0, FIRST_BYTES));
    const who = s.dir === 'in' ? 'client → server' : 'server → client';
    const hexPre = node('pre', { class: 'seg-hex', 'data-field': 'hex' }, hex);
    const textPre = node('pre', { class: 'seg-text', 'data-field': 'text' }, text);
    const li = node('li', { class: 'seg', 'data-dir': s.dir, 'data-seq': s.seq },
      node('p', { class: 'seg-head' },
        node('span', { class: 'seg-dir' }, who), ' ',
        node('span', { 'data-field': 'len' }, `${s.len} B`), ' at ',
        node('span', { 'data-field': 't' }, `+${ms(s.t_us)} ms`), ' · offset ', String(s.offset)),
      node('div', { class: 'seg-body' }, hexPre, textPre));
    if (bytes.length > FIRST_BYTES) {
      const more = node('button', { type: 'button', class: 'small seg-more' },
        `Show all ${bytes.length} bytes`);
      more.addEventListener('click', () => {
        const [allHex, allText] = rows(bytes);
        hexPre.textContent = allHex;
        textPre.textContent = allText;
        more.remove();
      });
      li.append(more);
    }
    // What search matches: the text as is, and the hex without spaces.
    li.dataset.text = Array.from(bytes, (b) => String.fromCharCode(b)).join('').toLowerCase();
    li.dataset.hex = s.hex;
    return li;
  }

  function gap(s) {
    const who = s.dir === 'in' ? 'client' : 'server';
    return node('li', { class: 'seg-gap', 'data-dir': s.dir },
      `${s.gap_before} earlier bytes from the ${who} were not captured (dropped by capture_bytes or the total budget)`);
  }

  function matches(li, q) {
    if (!q) return true;
    if (!li.classList.contains('seg')) return false;
    const hexq = q.replace(/\s+/g, '').toLowerCase();
    return li.dataset.text.includes(q.toLowerCase())
      || (/^[0-9a-f]+$/.test(hexq) && hexq.length % 2 === 0 && li.dataset.hex.includes(hexq));
  }

  function applySearch() {
    const q = search.value.trim();
    let hits = 0;
    for (const li of list.children) {
      const hit = matches(li, q);
      li.hidden = !hit;
      if (hit && q) hits += 1;
    }
    say(q ? `${hits} segment(s) match` : null);
  }

  function say(extra) {
    const parts = [`${shown} segment(s)`, `${total.in} B from the client`, `${total.out} B from the server`];
    if (paused) parts.push('paused');
    else if (done) parts.push('closed: nothing more will come');
    if (extra) parts.push(extra);
    status.textContent = parts.join(' · ');
  }

  async function poll() {
    timer = null;
    if (paused) return;
    let data;
    try {
      const res = await request(`/api/v1/connections/${id}/capture?since=${since}`, { credentials: 'same-origin' });
      if (res.status === 401) { location.href = loginHref(); return; }
      data = await res.json();
      if (!res.ok) throw new Error(data.error || `${res.status}`);
    } catch (e) {
      say(`error: ${e.message}`);
      timer = setTimeout(poll, POLL_MS * 3);
      return;
    }
    const atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    const q = search.value.trim();
    for (const s of data.segments) {
      if (s.gap_before > 0) list.append(gap(s));
      const li = block(s);
      li.hidden = !matches(li, q);
      list.append(li);
      shown += 1;
      total[s.dir] += s.len;
    }
    while (list.children.length > MAX_BLOCKS) list.firstElementChild.remove();
    since = data.next;
    done = !data.open && !data.more;
    if (stateEl) stateEl.textContent = data.open ? 'open' : 'closed';
    list.dataset.next = String(since);
    list.dataset.done = String(done);
    say(q ? `${[...list.children].filter((li) => !li.hidden).length} segment(s) match` : null);
    // Following the end, as a terminal does, unless the reader scrolled up.
    if (atEnd && data.segments.length > 0) list.lastElementChild?.scrollIntoView({ block: 'end' });
    if (!done) timer = setTimeout(poll, data.more ? 0 : POLL_MS);
  }

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    say(null);
    if (!paused && !timer && !done) poll();
  });
  search.addEventListener('input', applySearch);
  document.getElementById('inspect-top').addEventListener('click', () => {
    const first = [...list.children].find((li) => !li.hidden);
    (first || list).scrollIntoView({ block: 'start' });
  });
  document.getElementById('inspect-bottom').addEventListener('click', () => {
    const last = [...list.children].reverse().find((li) => !li.hidden);
    (last || list).scrollIntoView({ block: 'end' });
  });
  // Replay: the capture's client side sent again to an instance of ours;
  // the new replies beside the recorded ones.
  const replayForm = document.getElementById('replay-form');
  if (replayForm) {
    const summary = document.getElementById('replay-summary');
    const run = document.getElementById('replay-run');
    const show = (key, chunks) => {
      document.getElementById(key).textContent = chunks.map((c) => c.text).join('\n');
    };
    replayForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      run.disabled = true;
      summary.textContent = 'replaying…';
      try {
        const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';
        const res = await request(`/api/v1/connections/${id}/replay`, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
          body: JSON.stringify({
            target: document.getElementById('replay-target').value,
            timing: document.getElementById('replay-timing').checked,
          }),
        });
        const out = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(out.error || `${res.status} ${res.statusText}`);
        show('replay-sent', out.sent);
        show('replay-recorded', out.recorded);
        show('replay-replies', out.replies);
        document.getElementById('replay-result').hidden = false;
        const d = out.diff;
        summary.textContent = d.equal
          ? `${out.sent.length} segments sent to ${out.target}: the replies equal the recorded ones (${d.replied_bytes} bytes).`
          : `${out.sent.length} segments sent to ${out.target}: the replies differ` +
            (d.first_difference ? ` from byte ${d.first_difference.offset}` : '') +
            ` (${d.recorded_bytes} bytes recorded, ${d.replied_bytes} now).`;
        summary.dataset.equal = String(d.equal);
      } catch (e) {
        summary.textContent = `Replay failed: ${e.message}`;
        summary.dataset.equal = '';
      } finally {
        run.disabled = false;
      }
    });
  }
  poll();
}

start();
initInspect();
