// switchboard dashboard: the Inspect page (wire inspector). One connection's captured segments as a follow-stream transcript: polled with a `since` cursor, pinned to the end until the reader scrolls up, client and server told apart by colour and by a marker, either direction hideable, search that highlights every match with next/previous, hex/text/both; the decoded messages beside it (inspect_decoded.js) and replay.
import { start, request, loginHref } from '../app.js';
import { initDecoded } from './inspect_decoded.js';

// The page keeps at most this many blocks; older ones leave the page
// (the capture and the pcapng still have them while held).
const MAX_BLOCKS = 2000;
const POLL_MS = 1000;
// A block shows this many bytes at first; a button shows the rest.
const FIRST_BYTES = 1024;
// Search stops marking past this many matches (the count says so).
const MAX_MATCHES = 5000;
// Within this many pixels of the end counts as "at the end".
const PIN_SLACK = 8;

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
/** Who sent a direction's bytes, with a marker that is not colour alone. */
export const WHO = { in: '▶ client → server', out: '◀ server → client' };

/** The bytes as text: UTF-8 where it is valid, `.` for other bytes and
 *  controls (newlines and tabs kept); and, for each byte, the span of the
 *  text it became, so a match on bytes can be marked in the text. */
function textOf(bytes) {
  const n = bytes.length;
  const from = new Int32Array(n);
  const to = new Int32Array(n);
  const parts = [];
  let at = 0;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    let len = 1;
    let ch = '.';
    if (b === 0x0a || b === 0x09 || (b >= 0x20 && b < 0x7f)) ch = String.fromCharCode(b);
    else if (b >= 0xc2 && b <= 0xf4) {
      const want = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
      let cp = b & (0xff >> (want + 1));
      let ok = i + want <= n;
      for (let k = 1; ok && k < want; k += 1) {
        const c = bytes[i + k];
        ok = (c & 0xc0) === 0x80;
        cp = (cp << 6) | (c & 0x3f);
      }
      const min = [0, 0, 0x80, 0x800, 0x10000][want];
      if (ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp >= 0xa0) {
        ch = String.fromCodePoint(cp);
        len = want;
      }
    }
    for (let k = 0; k < len; k += 1) { from[i + k] = at; to[i + k] = at + ch.length; }
    parts.push(ch);
    at += ch.length;
    i += len;
  }
  return { text: parts.join(''), from, to };
}

/** Every place `needle` occurs in `bytes` (ASCII letters in either case). */
function find(bytes, needle, out) {
  const low = (b) => (b >= 0x41 && b <= 0x5a ? b + 32 : b);
  const m = needle.length;
  if (!m) return;
  for (let i = 0; i + m <= bytes.length && out.length < MAX_MATCHES; i += 1) {
    let k = 0;
    while (k < m && low(bytes[i + k]) === needle[k]) k += 1;
    if (k === m) { out.push([i, i + m]); i += m - 1; }
  }
}

/** What a query looks for: its text as bytes, and its bytes when it reads
 *  as hex (`0d0a`, `0d 0a`). */
function needles(q) {
  const out = [];
  if (!q) return out;
  out.push(Array.from(new TextEncoder().encode(q.toLowerCase())));
  const digits = q.replace(/[\s:]+/g, '');
  if (/^[0-9a-fA-F]+$/.test(digits) && digits.length % 2 === 0) {
    out.push(Array.from(unhex(digits.toLowerCase()), (b) => (b >= 0x41 && b <= 0x5a ? b + 32 : b)));
  }
  return out;
}

/** Fills `pre` with `text`, the spans `[from, to)` in `<mark>`s. */
function paint(pre, text, spans, current) {
  pre.textContent = '';
  let at = 0;
  spans.forEach(([from, to, k]) => {
    if (from < at) return;
    if (from > at) pre.append(text.slice(at, from));
    const mark = node('mark', { 'data-match': String(k) }, text.slice(from, to));
    if (k === current) mark.className = 'current';
    pre.append(mark);
    at = to;
  });
  if (at < text.length) pre.append(text.slice(at));
}

function initInspect() {
  if (document.body.dataset.page !== 'inspect') return;
  const list = document.getElementById('inspect-segments');
  if (!list) return; // no capture: the page says why
  const id = list.dataset.id;
  const status = document.getElementById('inspect-status');
  const stateEl = document.getElementById('inspect-state');
  const search = document.getElementById('inspect-search');
  const pause = document.getElementById('inspect-pause');
  const follow = document.getElementById('inspect-bottom');
  const matchesEl = document.getElementById('inspect-matches');
  const view = document.getElementById('inspect-view');
  const narrow = window.matchMedia('(max-width: 640px)');
  // Marks make blocks taller: a transcript following its end stays there.
  const decoded = initDecoded(id, list, () => { if (pinned) toEnd(); });
  let since = 0;
  let paused = false;
  let done = false;
  let timer = null;
  let shown = 0;
  let pinned = true;
  let unseen = 0;
  const total = { in: 0, out: 0 };
  // Each block's bytes and how many of them it shows.
  const blocks = new WeakMap();
  // The current search's matches, in page order: [li, index in li's list].
  let matches = [];
  let current = -1;

  const perRow = () => (narrow.matches ? 8 : 16);

  /** A block's hex rows, text rows beside them, and the text. */
  function render(li) {
    const b = blocks.get(li);
    const bytes = b.bytes.subarray(0, b.shown);
    const row = perRow();
    const hex = [];
    const ascii = [];
    for (let i = 0; i < bytes.length; i += row) {
      const r = bytes.subarray(i, i + row);
      hex.push(Array.from(r, (x) => x.toString(16).padStart(2, '0')).join(' '));
      ascii.push(Array.from(r, printable).join(''));
    }
    b.hex = hex.join('\n');
    b.ascii = ascii.join('\n');
    b.text = textOf(bytes);
    b.row = row;
    mark(li);
  }

  /** Draws a block's three views with its matches marked. */
  function mark(li) {
    const b = blocks.get(li);
    const spans = (b.matches || []).filter(([s]) => s < b.shown);
    const cur = current >= 0 && matches[current] && matches[current][0] === li ? current : -1;
    const end = (e) => Math.min(e, b.shown);
    const hexAt = (i) => 3 * i;
    const asciiAt = (i) => i + Math.floor(i / b.row);
    paint(b.pres.text, b.text.text,
      spans.map(([s, e], k) => [b.text.from[s], b.text.to[end(e) - 1], b.first + k]), cur);
    paint(b.pres.hex, b.hex, spans.map(([s, e], k) => [hexAt(s), hexAt(end(e)) - 1, b.first + k]), cur);
    paint(b.pres.ascii, b.ascii, spans.map(([s, e], k) => [asciiAt(s), asciiAt(end(e) - 1) + 1, b.first + k]), cur);
  }

  /** One segment's block: a head line, the text, and hex rows with their text. */
  function block(s) {
    const bytes = unhex(s.hex);
    const pres = {
      text: node('pre', { class: 'seg-text', 'data-field': 'text' }),
      hex: node('pre', { class: 'seg-hex', 'data-field': 'hex' }),
      ascii: node('pre', { class: 'seg-ascii', 'data-field': 'ascii', 'aria-hidden': 'true' }),
    };
    const li = node('li', { class: 'seg', 'data-dir': s.dir, 'data-seq': s.seq },
      node('p', { class: 'seg-head' },
        node('span', { class: 'seg-dir' }, WHO[s.dir]), ' ',
        node('span', { class: 'seg-n' }, `#${s.seq}`), ' · ',
        node('span', { 'data-field': 'len' }, `${s.len} B`), ' at ',
        node('span', { 'data-field': 't' }, `+${ms(s.t_us)} ms`), ' · offset ', String(s.offset),
        node('span', { class: 'seg-marks', 'data-field': 'marks' })),
      node('div', { class: 'seg-body' }, pres.text, node('div', { class: 'seg-dump' }, pres.hex, pres.ascii)));
    blocks.set(li, { bytes, shown: Math.min(bytes.length, FIRST_BYTES), pres, first: 0 });
    if (bytes.length > FIRST_BYTES) {
      const more = node('button', { type: 'button', class: 'small seg-more' }, `Show all ${bytes.length} bytes`);
      more.addEventListener('click', () => expand(li));
      li.append(more);
    }
    render(li);
    return li;
  }

  function expand(li) {
    const b = blocks.get(li);
    if (b.shown === b.bytes.length) return;
    b.shown = b.bytes.length;
    li.querySelector('.seg-more')?.remove();
    render(li);
  }

  function gap(s) {
    const who = s.dir === 'in' ? 'client' : 'server';
    return node('li', { class: 'seg-gap', 'data-dir': s.dir },
      `${s.gap_before} earlier bytes from the ${who} were not captured (dropped by capture_bytes or the total budget)`);
  }

  const visible = (li) => !list.classList.contains(`hide-${li.dataset.dir}`);

  /** Finds the query in `li`'s bytes; its matches join the list. */
  function searchIn(li, wanted) {
    const b = blocks.get(li);
    if (!b) return;
    const found = [];
    if (visible(li)) for (const n of wanted) find(b.bytes, n, found);
    found.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    b.matches = found.filter((m, i) => i === 0 || m[0] !== found[i - 1][0] || m[1] !== found[i - 1][1]);
    b.first = matches.length;
    b.matches.forEach((_, k) => matches.push([li, k]));
  }

  function applySearch() {
    const wanted = needles(search.value.trim());
    matches = [];
    current = -1;
    for (const li of list.children) if (li.classList.contains('seg')) searchIn(li, wanted);
    for (const li of list.children) if (li.classList.contains('seg')) mark(li);
    countMatches();
  }

  function countMatches() {
    const q = search.value.trim();
    const many = matches.length >= MAX_MATCHES ? '+' : '';
    matchesEl.textContent = !q ? '' : matches.length === 0 ? 'no match'
      : current < 0 ? `${matches.length}${many} matches` : `${current + 1} of ${matches.length}${many}`;
    document.getElementById('inspect-next').disabled = matches.length === 0;
    document.getElementById('inspect-prev').disabled = matches.length === 0;
  }

  /** Moves to the next (+1) or previous (-1) match and shows it. */
  function step(by) {
    if (!matches.length) return;
    const old = current >= 0 ? matches[current][0] : null;
    current = current < 0 ? (by > 0 ? 0 : matches.length - 1) : (current + by + matches.length) % matches.length;
    const [li, k] = matches[current];
    const b = blocks.get(li);
    if (b.matches[k][0] >= b.shown) expand(li);
    if (old && old !== li) mark(old);
    mark(li);
    setPinned(false);
    list.querySelector('mark.current')?.scrollIntoView({ block: 'center' });
    countMatches();
  }

  function setPinned(on) {
    pinned = on;
    if (on) unseen = 0;
    follow.setAttribute('aria-pressed', String(on));
    follow.textContent = on ? 'Following the end' : `Jump to end · follow${unseen ? ` (${unseen} new)` : ''}`;
    list.dataset.pinned = String(on);
  }

  function toEnd() {
    list.scrollTop = list.scrollHeight;
  }

  function say() {
    const parts = [`${shown} segment(s)`, `${total.in} B from the client`, `${total.out} B from the server`];
    if (paused) parts.push('paused');
    else if (done) parts.push('closed: nothing more will come');
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
      status.textContent = `error: ${e.message}`;
      timer = setTimeout(poll, POLL_MS * 3);
      return;
    }
    const wanted = needles(search.value.trim());
    for (const s of data.segments) {
      if (s.gap_before > 0) list.append(gap(s));
      const li = block(s);
      list.append(li);
      if (wanted.length) { searchIn(li, wanted); mark(li); }
      decoded.markSegment(li);
      shown += 1;
      total[s.dir] += s.len;
    }
    let evicted = false;
    while (list.children.length > MAX_BLOCKS) { list.firstElementChild.remove(); evicted = true; }
    if (evicted && wanted.length) applySearch();
    else countMatches();
    since = data.next;
    done = !data.open && !data.more;
    if (stateEl) stateEl.textContent = data.open ? 'open' : 'closed';
    list.dataset.next = String(since);
    list.dataset.done = String(done);
    say();
    if (data.segments.length > 0) {
      // Following the end, as a terminal does, unless the reader scrolled up.
      if (pinned) toEnd();
      else { unseen += data.segments.length; setPinned(false); }
      decoded.changed(done);
    } else if (done) decoded.changed(done);
    if (!done) timer = setTimeout(poll, data.more ? 0 : POLL_MS);
  }

  list.addEventListener('scroll', () => {
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - PIN_SLACK;
    if (atEnd !== pinned) setPinned(atEnd);
  }, { passive: true });
  follow.addEventListener('click', () => { setPinned(true); toEnd(); });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    say();
    if (!paused && !timer && !done) poll();
  });
  let typing = null;
  search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(applySearch, 120); });
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') { ev.preventDefault(); clearTimeout(typing); if (typing) applySearch(); typing = null; step(ev.shiftKey ? -1 : 1); }
  });
  document.getElementById('inspect-next').addEventListener('click', () => step(1));
  document.getElementById('inspect-prev').addEventListener('click', () => step(-1));
  for (const dir of ['in', 'out']) {
    document.getElementById(`inspect-show-${dir}`).addEventListener('change', (ev) => {
      list.classList.toggle(`hide-${dir}`, !ev.target.checked);
      applySearch();
      if (pinned) toEnd();
    });
  }
  view.addEventListener('change', () => { list.dataset.view = view.value; if (pinned) toEnd(); });
  list.dataset.view = view.value;
  narrow.addEventListener('change', () => {
    for (const li of list.children) if (blocks.has(li)) render(li);
  });
  document.getElementById('inspect-top').addEventListener('click', () => {
    setPinned(false);
    list.scrollTop = 0;
  });
  // The toolbar sticks just under the top bar where that one sticks.
  const bar = document.querySelector('.topbar');
  const under = () => document.documentElement.style.setProperty('--inspect-top',
    bar && getComputedStyle(bar).position === 'sticky' ? `${bar.offsetHeight}px` : '0px');
  under();
  window.addEventListener('resize', under);
  setPinned(true);
  initReplay(id);
  poll();
}

/** Replay: the capture's client side sent again to an instance of ours;
 *  the new replies beside the recorded ones. */
function initReplay(id) {
  const replayForm = document.getElementById('replay-form');
  if (!replayForm) return;
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

start();
initInspect();
