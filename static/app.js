// switchboard dashboard, the shared module: plain JavaScript, native ES
// modules, no build step. Every page is complete as served; each page's
// module (static/pages/NAME.js) imports what it needs from here (the
// API caller, toasts, formatting, the live stream) and keeps its page live
// from the server's event stream (/api/v1/live). Text from peers and
// services is only ever inserted with textContent.
// Not here: anything one page alone uses.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
export const page = document.body.dataset.page;

// ---- helpers -----------------------------------------------------------

export const csrfToken = () => $('meta[name="csrf-token"]')?.content || '';

/** What every page says while the server does not answer at all (rather
 *  than the browser's own "Failed to fetch"). */
export const NOT_ANSWERING = 'switchboard is not answering — retrying';

/** `next` when it is a path on this site (the server's rule too), else
 *  null: a sign-in never sends anyone elsewhere. */
export function safeNext(next) {
  if (!next || next.length > 2048 || !next.startsWith('/')) return null;
  if (next[1] === '/' || next.includes('\\') || /[\u0000-\u0020\u007f]/.test(next)) return null;
  if (next.startsWith('/login')) return null;
  const url = new URL(next, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
}

/** The sign-in page's address that comes back here once signed in. */
export function loginHref(extra = {}) {
  const params = new URLSearchParams(extra);
  const here = location.pathname + location.search + location.hash;
  if (here !== '/') params.set('next', here);
  const q = params.toString();
  return q ? `/login?${q}` : '/login';
}

/** While the server does not answer: one note, kept until it answers. */
export function notAnswering() {
  document.body.dataset.server = 'down';
  toast(NOT_ANSWERING, 'error');
}

/** The server answers again: the note goes. */
function answering() {
  if (document.body.dataset.server !== 'down') return;
  document.body.dataset.server = 'up';
  const t = $('#toast');
  if (t && $('#toast-text', t).textContent === NOT_ANSWERING) t.hidden = true;
}

/** fetch(), except that a request the server never answered fails with
 *  NOT_ANSWERING (and says so on the page). */
export async function request(path, opts) {
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    if (e instanceof TypeError) {
      notAnswering();
      throw new Error(NOT_ANSWERING);
    }
    throw e;
  }
  answering();
  return res;
}

/** Calls the JSON API; throws an Error with the server's message. */
export async function api(method, path, body) {
  const opts = { method, headers: { 'X-CSRF-Token': csrfToken() }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await request(path, opts);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && page !== 'login') {
    location.href = loginHref();
  }
  if (!res.ok) {
    const err = new Error(data.error || `${res.status} ${res.statusText}`);
    err.field = data.field;
    throw err;
  }
  return data;
}

// A success note goes away by itself; an error stays until its reader
// dismisses it, however long they take to read it.
let toastTimer;
export function toast(text, kind) {
  const el = $('#toast');
  if (!el) return;
  $('#toast-text', el).textContent = text;
  el.dataset.kind = kind || 'info';
  el.hidden = false;
  clearTimeout(toastTimer);
  if (kind !== 'error') toastTimer = setTimeout(() => { el.hidden = true; }, 3000);
}
$('#toast-close')?.addEventListener('click', () => {
  clearTimeout(toastTimer);
  $('#toast').hidden = true;
});

export const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function bytes(n) {
  let v = n, u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u += 1; }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

export function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** `14:05:30.123`: local, 24-hour whatever the locale (the chart and
 *  the Files list use the same clock). */
export function clock(unixMs) {
  const d = new Date(unixMs);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** Follows /api/v1/live; reconnects by itself, with backoff, after a drop. */
export function live(handlers) {
  const status = $('#live-status');
  const show = (state) => { if (status) { status.dataset.state = state; status.textContent = state; } };
  let retry = 1000;
  // When the stream drops, what the page shows is old: say so, and how old.
  let lastMessage = Date.now();
  let staleTimer = null;
  const fresh = () => {
    lastMessage = Date.now();
    document.body.dataset.stale = 'false';
    const banner = $('#stale');
    if (banner) banner.hidden = true;
    clearInterval(staleTimer);
    staleTimer = null;
  };
  const stale = () => {
    document.body.dataset.stale = 'true';
    const banner = $('#stale');
    if (!banner || staleTimer) return;
    const tick = () => {
      $('#stale-age').textContent = duration(Date.now() - lastMessage);
      banner.hidden = false;
    };
    tick();
    staleTimer = setInterval(tick, 1000);
  };
  let current = null;
  let streamId = null; // the id the server gave this stream, to end it by
  // Leaving the page ends its stream at once: closing it closes the
  // connection where the browser talks to us directly, and the beacon ends
  // it where a proxy keeps the browser's connection open (the server then
  // frees its slot). A page restored from the back/forward cache opens a
  // new one.
  window.addEventListener('pagehide', () => {
    if (streamId) navigator.sendBeacon('/api/v1/live/leave', streamId);
    streamId = null;
    if (current) current.close();
  });
  window.addEventListener('pageshow', (e) => { if (e.persisted) connect(); });
  const connect = () => {
    const es = new EventSource('/api/v1/live');
    current = es;
    streamId = null;
    es.addEventListener('stream', (e) => { streamId = JSON.parse(e.data).id; });
    es.addEventListener('open', () => { show('live'); retry = 1000; answering(); });
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => {
        fresh();
        const data = JSON.parse(e.data);
        for (const s of data.services || []) protos[s.name] = s.proto;
        fn(data);
      });
    }
    // Not forgotten on 'error': leaving a page fires it (the browser cancels
    // the stream) before 'pagehide' sends the beacon. After a reconnect the
    // next 'stream' message replaces it.
    es.addEventListener('error', () => {
      show('reconnecting');
      stale();
      // Down altogether, or only this stream? A cheap question tells.
      fetch('/healthz', { cache: 'no-store' }).then(answering, notAnswering);
      if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      // The server said no (signed out, too many streams): find out, then retry.
      setTimeout(async () => {
        const r = await fetch('/api/v1/session', { credentials: 'same-origin' }).catch(() => null);
        if (r && r.status === 401) { location.href = loginHref({ ended: '1' }); return; }
        connect();
      }, retry);
      retry = Math.min(retry * 2, 30000);
    });
  };
  connect();
}

/** Draws a small filled line of `values` (bytes/s) on a canvas. */
export function sparkline(canvas, values) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const step = w / (SPARK_POINTS - 1);
  const x0 = w - step * (values.length - 1);
  const y = (v) => h - 2 - (v / max) * (h - 6);
  const color = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2f6fde';
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x0 + i * step, y(v)) : ctx.moveTo(x0, y(v))));
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(w, h);
  ctx.lineTo(x0, h);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
}
export const SPARK_POINTS = 60;

/** Each service's protocol, from the latest snapshot: UDP events read differently. */
export const protos = {};

/** The one-line description of an event (same words as the server's). */
export function describe(e) {
  const udp = protos[e.service] === 'udp';
  switch (e.type) {
    case 'opened': return udp ? `new peer ${e.peer} (#${e.id})` : `${e.peer} connected (#${e.id})`;
    case 'closed': return `${e.peer} ${udp ? 'expired, seen for' : 'left after'} ${duration(e.duration_ms)}: ${bytes(e.bytes_in)} in, ${bytes(e.bytes_out)} out`;
    case 'refused': return `${e.peer} refused: ${e.reason}`;
    case 'service_state': return `now ${e.state}`;
    case 'auth_failed': return `${e.peer}: ${e.reason}`;
    case 'command_run': return `${e.peer} ran ${e.argv.join(' ')}: ${e.outcome}`;
    case 'file_stored': return `${e.peer} stored ${e.name} (${bytes(e.size)})`;
    case 'file_deleted': return `${e.user} deleted ${e.name}`;
    default: return JSON.stringify(e);
  }
}

export function initChrome() {
  $('#sign-out')?.addEventListener('click', async () => {
    try { await api('DELETE', '/api/v1/session'); } catch (_) { /* signed out anyway */ }
    location.href = '/login';
  });
}

/** A rate in binary units with no more digits than it needs: `120 B/s`,
 *  `2 KiB/s`, `1.5 MiB/s` (ticks are chosen so they read whole). */
export function rate(v) {
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) { v /= 1024; u += 1; }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '');
  return `${text} ${UNITS[u]}/s`;
}

export const two = (n) => String(n).padStart(2, '0');
/** A moment as this page shows every time: local, 24-hour, with the
 *  date when it is not today; UTC for a title on hover. */
export function stamp(when) {
  const d = when instanceof Date ? when : new Date(when);
  const two = (n) => String(n).padStart(2, '0');
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  const today = new Date().toDateString() === d.toDateString();
  return {
    text: today ? time : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`,
    utc: d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
  };
}

/** Starts a signed-in page: the top bar's buttons, the page's own `init`,
 *  and (unless the page follows the live stream itself) a stream for the
 *  live indicator alone; then marks the page ready for tests and tools. */
export function start(init, { ownLive = false } = {}) {
  initChrome();
  labelTables();
  if (init) init();
  // Every page shows the live state in the top bar.
  if (!ownLive) live({});
  document.body.dataset.ready = 'true';
}

/** Gives every data cell its column's heading as `data-label`, now and for
 *  rows added later, so a phone can show each row as a labelled card. */
function labelTables() {
  for (const table of $$('table.data')) {
    const heads = $$('thead th', table).map((th) => th.textContent.trim());
    if (!heads.length) continue;
    const label = () => {
      for (const row of $$('tbody tr', table)) {
        let col = 0;
        for (const cell of row.cells) {
          if (cell.tagName === 'TD' && cell.dataset.label === undefined) cell.dataset.label = heads[col] || '';
          col += cell.colSpan || 1;
        }
      }
    };
    label();
    for (const body of table.tBodies) new MutationObserver(label).observe(body, { childList: true });
  }
}
