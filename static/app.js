// switchboard dashboard: plain JavaScript, no build step.
// Every page is complete as served; this file keeps it live from the
// server's event stream (/api/v1/live) and wires up the buttons. Text from
// peers and services is only ever inserted with textContent.
'use strict';

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const page = document.body.dataset.page;

  // ---- helpers -----------------------------------------------------------

  const csrfToken = () => $('meta[name="csrf-token"]')?.content || '';

  /** Calls the JSON API; throws an Error with the server's message. */
  async function api(method, path, body) {
    const opts = { method, headers: { 'X-CSRF-Token': csrfToken() }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    const data = await res.json().catch(() => ({}));
    if (res.status === 401 && page !== 'login') {
      location.href = '/login';
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
  function toast(text, kind) {
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

  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    let v = n, u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u += 1; }
    return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`;
  }

  function duration(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  /** `14:05:30.123`: local, 24-hour whatever the locale (the chart and
   *  the Files list use the same clock). */
  function clock(unixMs) {
    const d = new Date(unixMs);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function el(tag, attrs, ...children) {
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
  function live(handlers) {
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
    // Leaving the page ends its stream at once (the server frees its slot
    // when the connection closes); a page restored from the back/forward
    // cache opens a new one.
    window.addEventListener('pagehide', () => { if (current) current.close(); });
    window.addEventListener('pageshow', (e) => { if (e.persisted) connect(); });
    const connect = () => {
      const es = new EventSource('/api/v1/live');
      current = es;
      es.addEventListener('open', () => { show('live'); retry = 1000; });
      for (const [name, fn] of Object.entries(handlers)) {
        es.addEventListener(name, (e) => {
          fresh();
          const data = JSON.parse(e.data);
          for (const s of data.services || []) protos[s.name] = s.proto;
          fn(data);
        });
      }
      es.addEventListener('error', () => {
        show('reconnecting');
        stale();
        if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
        // The server said no (signed out, too many streams): find out, then retry.
        setTimeout(async () => {
          const r = await fetch('/api/v1/session', { credentials: 'same-origin' }).catch(() => null);
          if (r && r.status === 401) { location.href = '/login?ended=1'; return; }
          connect();
        }, retry);
        retry = Math.min(retry * 2, 30000);
      });
    };
    connect();
  }

  /** Draws a small filled line of `values` (bytes/s) on a canvas. */
  function sparkline(canvas, values) {
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
  const SPARK_POINTS = 60;

  /** Each service's protocol, from the latest snapshot: UDP events read differently. */
  const protos = {};

  /** The one-line description of an event (same words as the server's). */
  function describe(e) {
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

  // ---- sign-in and sign-out ---------------------------------------------

  function initLogin() {
    const form = $('#sign-in');
    const error = $('#sign-in-error');
    // Sent here by a live page whose session is gone: say why.
    if (new URLSearchParams(location.search).has('ended')) {
      const note = $('#sign-in-ended');
      if (note) note.hidden = false;
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      const button = $('button[type="submit"]', form);
      button.disabled = true;
      try {
        await api('POST', '/api/v1/session', { username: $('#username').value, password: $('#password').value });
        location.href = '/';
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        $('#password').select();
      } finally {
        button.disabled = false;
      }
    });
  }

  function initChrome() {
    $('#sign-out')?.addEventListener('click', async () => {
      try { await api('DELETE', '/api/v1/session'); } catch (_) { /* signed out anyway */ }
      location.href = '/login';
    });
  }

  // ---- overview ---------------------------------------------------------

  function initOverview() {
    const history = {}; // service -> recent bytes/s (in + out)
    let lastSecond = 0;
    const cards = new Map($$('.card').map((c) => [c.dataset.service, c]));

    const setButtons = (card) => {
      const running = card.dataset.state === 'running';
      const start = $('[data-action="start"]', card);
      const stop = $('[data-action="stop"]', card);
      if (start) start.disabled = running;
      if (stop) stop.disabled = !running;
    };

    const update = (s) => {
      const card = cards.get(s.name);
      if (!card) return;
      const word = s.phase;
      card.dataset.state = word;
      const field = (name) => $(`[data-field="${name}"]`, card);
      field('state').textContent = word;
      const reason = field('reason');
      reason.textContent = s.reason || '';
      reason.hidden = !s.reason;
      field('addr').textContent = s.local_addr || s.listen;
      field('active').textContent = s.active;
      field('bytes_in').textContent = bytes(s.bytes_in);
      field('bytes_out').textContent = bytes(s.bytes_out);
      field('refused').textContent = s.refused;
      field('errors').textContent = s.errors;
      field('auth_failures').textContent = s.auth_failures;
      field('state_label').textContent = word === 'running' ? 'up for' : 'since';
      field('state_for').textContent = duration(s.state_for_ms);
      field('rate').textContent = `${bytes(s.rate_in + s.rate_out)}/s`;
      setButtons(card);
    };

    const draw = () => {
      for (const [name, card] of cards) sparkline($('[data-field="spark"]', card), history[name] || []);
    };

    api('GET', '/api/v1/traffic').then((all) => {
      for (const s of all) {
        history[s.name] = s.samples.slice(-SPARK_POINTS).map((x) => x.bytes_in + x.bytes_out);
      }
      draw();
    }).catch((e) => toast(e.message, 'error'));

    for (const card of cards.values()) {
      setButtons(card);
      for (const button of $$('[data-action]', card)) {
        button.addEventListener('click', async () => {
          const action = button.dataset.action;
          const buttons = $$('[data-action]', card);
          buttons.forEach((b) => { b.disabled = true; });
          try {
            update(await api('POST', `/api/v1/services/${card.dataset.service}/${action}`));
            toast(`${card.dataset.service}: ${action} done`);
          } catch (e) {
            toast(`${card.dataset.service}: ${e.message}`, 'error');
          } finally {
            buttons.forEach((b) => { b.disabled = false; });
            setButtons(card);
          }
        });
      }
    }

    // The strip: states and open connections from each snapshot; the last
    // hour's failures from the page's first count plus what arrives since.
    const sum = (name, value, bad) => {
      const n = $(`[data-sum="${name}"]`);
      if (!n) return;
      n.textContent = value;
      if (bad !== undefined) n.parentElement.dataset.bad = String(bad);
    };
    let authHour = Number($('[data-sum="auth"]')?.textContent || 0);
    let refusedHour = Number($('[data-sum="refused"]')?.textContent || 0);
    live({
      events: (batch) => {
        // A proxy's upstream probe, on its card.
        for (const e of batch) {
          if (e.type !== 'service_state' || !e.state.startsWith('upstream ')) continue;
          const card = cards.get(e.service);
          if (!card) continue;
          const field = $('[data-field="upstream"]', card);
          field.textContent = e.state;
          field.dataset.down = String(e.state.includes(' down'));
          field.hidden = false;
        }
        authHour += batch.filter((e) => e.type === 'auth_failed').length;
        refusedHour += batch.filter((e) => e.type === 'refused').length;
        sum('auth', authHour, authHour > 0);
        sum('refused', refusedHour, refusedHour > 0);
      },
      snapshot: (snap) => {
        const second = Math.floor(snap.at_unix_ms / 1000);
        const failed = snap.services.filter((s) => s.phase === 'failed').length;
        sum('running', snap.services.filter((s) => s.phase === 'running').length);
        sum('failed', failed, failed > 0);
        sum('open', snap.services.reduce((n, s) => n + s.active, 0));
        for (const s of snap.services) {
          update(s);
          if (second !== lastSecond) {
            const h = (history[s.name] = history[s.name] || []);
            h.push(s.rate_in + s.rate_out);
            if (h.length > SPARK_POINTS) h.shift();
          }
        }
        if (second !== lastSecond) draw();
        lastSecond = second;
      },
    });
    window.addEventListener('resize', draw);
  }

  // ---- connections ------------------------------------------------------

  function initConnections() {
    const table = $('#connections');
    const body = $('tbody', table);
    const admin = table.dataset.admin === 'true';
    const serviceFilter = $('#conn-service');
    const textFilter = $('#conn-filter');
    let seen = new Set($$('tr', body).map((r) => r.dataset.id));
    let last = null;
    // Bytes per second per connection, from the change since the last snapshot.
    let previous = new Map(); // id -> [bytes, at_ms]
    const rates = new Map();
    // Rows of connections that just closed: shown faded for a moment.
    const closed = new Map(); // id -> [connection, until_ms]
    const FADE_MS = 3000;
    let sort = { key: 'id', desc: true };

    const render = (snap) => {
      const service = serviceFilter.value;
      const text = textFilter.value.trim();
      if (snap !== last) {
        const now = snap.at_unix_ms;
        const current = new Map();
        for (const c of snap.connections) {
          const total = c.bytes_in + c.bytes_out;
          const before = previous.get(c.id);
          if (before && now > before[1]) rates.set(c.id, ((total - before[0]) * 1000) / (now - before[1]));
          current.set(c.id, [total, now]);
        }
        if (last) {
          for (const c of last.connections) {
            if (!current.has(c.id) && !closed.has(c.id)) closed.set(c.id, [c, Date.now() + FADE_MS]);
          }
        }
        for (const id of rates.keys()) if (!current.has(id)) rates.delete(id);
        previous = current;
      }
      last = snap;
      for (const [id, [, until]] of closed) if (until < Date.now()) closed.delete(id);
      const rows = [];
      const ids = new Set();
      const all = snap.connections.map((c) => ({ ...c, rate: rates.get(c.id) || 0 }))
        .concat([...closed.values()].map(([c]) => ({ ...c, rate: 0, gone: true })));
      const value = (c) => sort.key === 'rate' ? c.rate : c[sort.key];
      all.sort((a, b) => {
        const [x, y] = [value(a), value(b)];
        const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
        return sort.desc ? -order : order;
      });
      // A proxy with toxics on: its connections are marked (each rolls the
      // toxicity, so "under toxics" rather than "slowed").
      const toxic = new Set(snap.services.filter((s) => s.toxics_on > 0).map((s) => s.name));
      for (const c of all) {
        ids.add(String(c.id));
        if (service && c.service !== service) continue;
        if (text && !c.peer.includes(text)) continue;
        // Inspect (the wire inspector) for open and just-closed rows alike.
        const inspect = () => el('a', { href: `/inspect/${c.id}`, 'data-inspect': c.id }, 'Inspect');
        const closer = admin
          ? el('td', { class: 'actions-cell' }, inspect(), ' ', c.proto === 'tcp' ? el('button', { type: 'button', class: 'small', 'data-close': c.id }, 'Close') : '')
          : null;
        const tr = el('tr', { 'data-id': c.id, 'data-service': c.service },
          el('td', { class: 'mono' }, `#${c.id}`),
          el('td', {}, el('span', { class: 'tag' }, c.service), ' ', el('span', { class: 'proto' }, c.proto),
            ...(toxic.has(c.service) ? [' ', el('span', { class: 'tag toxic', title: 'its proxy has toxics on', 'data-toxic': 'on' }, 'toxics')] : [])),
          el('td', { class: 'mono' }, c.peer),
          el('td', {}, duration(c.age_ms)),
          el('td', { class: 'num', 'data-field': 'bytes_in' }, bytes(c.bytes_in)),
          el('td', { class: 'num', 'data-field': 'bytes_out' }, bytes(c.bytes_out)),
          el('td', { class: 'num', 'data-field': 'rate' }, c.gone ? '–' : `${bytes(Math.round(c.rate))}/s`),
          el('td', {}, c.gone ? (c.proto === 'udp' ? 'expired' : 'closed') : `${duration(c.idle_ms)} ago`));
        if (closer && !c.gone) tr.append(closer);
        else if (closer) tr.append(el('td', { class: 'actions-cell' }, inspect()));
        if (c.gone) tr.dataset.gone = 'true';
        if (!seen.has(String(c.id))) tr.classList.add('fresh');
        rows.push(tr);
      }
      seen = ids;
      body.replaceChildren(...rows);
      $('#conn-count').textContent = snap.connections_total > snap.connections.length
        ? `${snap.connections_total} (showing the newest ${snap.connections.length})`
        : String(snap.connections_total);
      const open = rows.filter((r) => !r.dataset.gone).length;
      $('#conn-empty').hidden = open > 0;
      // Empty because of the filters, or empty indeed: then say where echo
      // really listens (its port is configurable), if it runs.
      const filtered = open === 0 && snap.connections.length > 0;
      $('#conn-filtered').hidden = !filtered;
      $('#conn-none').hidden = filtered;
      const echo = snap.services.find((s) => s.name === 'echo');
      const addr = echo && echo.state === 'running' ? reachable(echo.local_addr || echo.listen) : '';
      $('#conn-echo-addr').textContent = addr;
      $('#conn-try').hidden = !addr;
    };

    body.addEventListener('click', async (ev) => {
      const id = ev.target.dataset?.close;
      if (!id) return;
      ev.target.disabled = true;
      try {
        await api('DELETE', `/api/v1/connections/${id}`);
        toast(`connection #${id} closed`);
      } catch (e) {
        toast(e.message, 'error');
        ev.target.disabled = false;
      }
    });
    for (const f of [serviceFilter, textFilter]) f.addEventListener('input', () => last && render(last));
    // Sorting: a header's button sorts by it; again reverses.
    $('thead', table).addEventListener('click', (ev) => {
      const key = ev.target.closest('[data-sort]')?.dataset.sort;
      if (!key) return;
      sort = { key, desc: sort.key === key ? !sort.desc : true };
      for (const th of $$('th', table)) th.removeAttribute('aria-sort');
      ev.target.closest('th').setAttribute('aria-sort', sort.desc ? 'descending' : 'ascending');
      if (last) render(last);
    });
    live({ snapshot: render });
  }

  // ---- traffic ----------------------------------------------------------

  const COLORS = ['#2f6fde', '#12805c', '#d97706', '#c2352b', '#7c3aed', '#0891b2', '#db2777'];
  const WINDOW_S = 15 * 60;
  /** Events kept back while the log is paused; beyond it the oldest go. */
  const MAX_HELD = 500;

  /** A rate in binary units with no more digits than it needs: `120 B/s`,
   *  `2 KiB/s`, `1.5 MiB/s` (ticks are chosen so they read whole). */
  function rate(v) {
    let u = 0;
    while (Math.abs(v) >= 1024 && u < UNITS.length - 1) { v /= 1024; u += 1; }
    const text = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '');
    return `${text} ${UNITS[u]}/s`;
  }

  /** Linear ticks: 1/2/5 steps of the binary unit the top falls in, so
   *  they read 20, 40, 60 KiB/s, never 48.8 or 97.7. */
  function binarySplits(u, axis, min, max) {
    let unit = 1;
    while (max / unit >= 1024) unit *= 1024;
    const span = max / unit;
    const step = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((s) => span / s <= 5) || 1000;
    const out = [];
    for (let v = 0; v <= max * 1.0001; v += step * unit) out.push(v);
    return out;
  }

  /** Log ticks: powers of two, every 1, 2, 5 or 10 of them so at most 7
   *  show (1 B, 1 KiB, 1 MiB at the widest). */
  function log2Splits(u, axis, min, max) {
    const lo = Math.floor(Math.log2(Math.max(1, min))), hi = Math.ceil(Math.log2(Math.max(2, max)));
    const stride = [1, 2, 5, 10].find((s) => (hi - lo) / s <= 6) || 10;
    const out = [];
    for (let k = Math.ceil(lo / stride) * stride; k <= hi; k += stride) out.push(2 ** k);
    return out;
  }

  const two = (n) => String(n).padStart(2, '0');
  /** `14:05` or `14:05:30`: local, 24-hour. */
  const hhmm = (unixS, seconds) => {
    const d = new Date(unixS * 1000);
    return `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''}`;
  };

  function initTraffic() {
    const log = $('#log tbody');
    const filters = { type: $('#log-type'), service: $('#log-service'), text: $('#log-filter') };
    const visible = (tr) => (!filters.type.value || tr.dataset.type === filters.type.value)
      && (!filters.service.value || tr.dataset.service === filters.service.value)
      && (!filters.text.value || tr.textContent.toLowerCase().includes(filters.text.value.toLowerCase()));
    const applyFilters = () => $$('tr', log).forEach((tr) => { tr.hidden = !visible(tr); });
    Object.values(filters).forEach((f) => f.addEventListener('input', applyFilters));
    const timeCell = (td, unixMs) => {
      td.textContent = clock(unixMs);
      td.title = stamp(unixMs).utc;
    };
    $$('td[data-time]', log).forEach((td) => timeCell(td, Number(td.dataset.time)));
    let newest = Math.max(0, ...$$('tr', log).map((tr) => Number(tr.dataset.seq)));

    // Paused, the log holds still to be read; what arrives is counted and
    // kept (bounded), then shown on resume.
    let paused = false;
    let held = [];
    const pause = $('#log-pause');
    const heldNote = $('#log-new');
    const showHeld = () => {
      heldNote.hidden = !paused;
      heldNote.textContent = `${held.length} new${held.length >= MAX_HELD ? ' (only the newest kept)' : ''}`;
    };
    const addEvents = (events) => {
      if (paused) {
        held.push(...events);
        if (held.length > MAX_HELD) held = held.slice(-MAX_HELD);
        showHeld();
        return;
      }
      for (const e of events) {
        if (e.seq <= newest) continue;
        newest = e.seq;
        const time = el('td', { class: 'mono' });
        timeCell(time, e.at_unix_ms);
        const tr = el('tr', { 'data-seq': e.seq, 'data-type': e.type, 'data-service': e.service, class: 'fresh' },
          time,
          el('td', {}, el('span', { class: `ev ev-${e.type}` }, e.type)),
          el('td', {}, e.service),
          el('td', {}, describe(e)));
        tr.hidden = !visible(tr);
        log.prepend(tr);
      }
      while (log.rows.length > 500) log.deleteRow(-1);
    };
    pause.addEventListener('click', () => {
      paused = !paused;
      pause.setAttribute('aria-pressed', String(paused));
      pause.textContent = paused ? 'Resume' : 'Pause';
      if (!paused) {
        const backlog = held;
        held = [];
        addEvents(backlog);
      }
      showHeld();
    });

    // Every service's in and out, per second; the chart shows a view of it.
    let xs = [];
    const rates = {}; // name -> { in: [], out: [] }
    let names = [];
    let plot = null;
    const chartEl = $('#chart');
    const view = $('#traffic-view');
    const logScale = $('#traffic-log');
    const size = () => ({ width: chartEl.clientWidth, height: 320 });

    const columns = () => {
      const floor = (v) => (v == null ? null : logScale.checked ? Math.max(1, v) : v);
      if (!view.value) {
        return names.map((n, i) => ({
          label: n, color: COLORS[i % COLORS.length],
          values: rates[n].in.map((v, j) => floor(v == null ? null : v + rates[n].out[j])),
        }));
      }
      const n = view.value;
      if (!rates[n]) return [];
      return [
        { label: `${n} in`, color: COLORS[0], values: rates[n].in.map(floor) },
        { label: `${n} out`, color: COLORS[2], values: rates[n].out.map(floor) },
      ];
    };

    const draw = () => {
      if (plot) { plot.destroy(); plot = null; }
      if (!xs.length) return;
      const cols = columns();
      const ink = getComputedStyle(document.body).color;
      const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } };
      const log = logScale.checked;
      chartEl.setAttribute('aria-label', `Bytes per second over the last 15 minutes, ${view.value ? `${view.value} in and out` : 'each service in + out'}${log ? ', log scale' : ''}`);
      plot = new uPlot({
        ...size(),
        series: [
          { value: (u, v) => (v == null ? '–' : `${hhmm(v, true)} (${new Date(v * 1000).toISOString().slice(11, 19)} UTC)`) },
          ...cols.map((c) => ({
            label: c.label, stroke: c.color, width: 1.5,
            value: (u, v) => (v == null ? '–' : rate(v)),
          })),
        ],
        axes: [
          { ...axis, values: (u, vals) => vals.map((v) => hhmm(v, vals.some((x) => x % 60 !== 0))) },
          {
            ...axis,
            // Wide enough for the longest label: ~7.5 px a character in
            // uPlot's 12 px axis font, plus the tick and gap.
            size: (u, vals) => (vals ? Math.max(48, Math.ceil(Math.max(...vals.map((v) => v.length)) * 7.5) + 24) : 80),
            splits: log ? log2Splits : binarySplits,
            // Label every split chosen above (a log axis would drop some).
            filter: (u, splits) => splits,
            values: (u, vals) => {
              // A log axis leaves out (null) the splits it has no room to label.
              const labels = vals.map((v) => (v == null ? '' : rate(v)));
              chartEl.dataset.yTicks = labels.filter(Boolean).join('|'); // what the axis reads, for tests
              return labels;
            },
          },
        ],
        scales: {
          // Always the whole window, newest at the right edge.
          x: { time: true, range: (u, min, max) => [max - WINDOW_S, max] },
          y: log
            ? { distr: 3, log: 2, range: (u, min, max) => [1, 2 ** Math.ceil(Math.log2(Math.max(1024, max)))] }
            : { range: (u, min, max) => [0, Math.max(1024, max * 1.1)] },
        },
      }, [xs, ...cols.map((c) => c.values)], chartEl);
    };
    view.addEventListener('change', draw);
    logScale.addEventListener('change', draw);
    window.addEventListener('resize', () => plot?.setSize(size()));

    api('GET', '/api/v1/traffic').then((all) => {
      names = all.map((s) => s.name);
      xs = all[0] ? all[0].samples.map((x) => x.at_unix_s) : [];
      for (const s of all) {
        rates[s.name] = { in: s.samples.map((x) => x.bytes_in), out: s.samples.map((x) => x.bytes_out) };
      }
      draw();
    }).catch((e) => toast(e.message, 'error'));

    live({
      events: addEvents,
      snapshot: (snap) => {
        if (!names.length) return;
        const t = Math.floor(snap.at_unix_ms / 1000) - 1; // the second the rates describe
        if (xs.length && xs[xs.length - 1] >= t) return;
        xs.push(t);
        for (const n of names) {
          const s = snap.services.find((x) => x.name === n);
          rates[n].in.push(s ? s.rate_in : null);
          rates[n].out.push(s ? s.rate_out : null);
        }
        while (xs.length && xs[0] < t - WINDOW_S) {
          xs.shift();
          for (const n of names) { rates[n].in.shift(); rates[n].out.shift(); }
        }
        if (!plot) { draw(); return; }
        plot.setData([xs, ...columns().map((c) => c.values)]);
      },
    });
  }

  // ---- B/S beside C/S helpers ----------------------------------------------

  /** `123 µs` or `4.56 ms`. */
  function micros(us) {
    return us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(2)} ms`;
  }

  /** Hex dump: 16 bytes a line, with the printable ASCII beside. */
  function hexdump(hex) {
    const bytes = hex.match(/../g) || [];
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = bytes.slice(i, i + 16);
      const ascii = row.map((b) => { const c = parseInt(b, 16); return c >= 32 && c < 127 ? String.fromCharCode(c) : '.'; }).join('');
      lines.push(`${row.join(' ').padEnd(47)}  ${ascii}`);
    }
    return lines.join('\n') || '(nothing)';
  }

  /** A Python bytes literal for hex bytes. */
  function pyBytes(hex) {
    const bytes = (hex.match(/../g) || []).map((b) => parseInt(b, 16));
    return "b'" + bytes.map((c) => {
      if (c === 0x5c) return '\\\\';
      if (c === 0x27) return "\\'";
      return c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
    }).join('') + "'";
  }

  /** Quotes a word for a POSIX shell when it needs it. */
  function shq(word) {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  }

  /** An address a client on this machine can dial: a wildcard listen
   *  address (`0.0.0.0:9000`, `[::]:9000`) becomes the loopback one. */
  function reachable(addr) {
    return (addr || '').replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  }

  /** `("127.0.0.1", 9000)` from `127.0.0.1:9000` or `[::1]:9000`. */
  function pyAddr(target) {
    const i = target.lastIndexOf(':');
    const host = target.slice(0, i).replace(/^\[|\]$/g, '');
    return { tuple: `("${host}", ${target.slice(i + 1)})`, v6: host.includes(':') };
  }

  /** Python for an authenticated message-protocol exchange (exec, files),
   *  as docs/PROTOCOL.md describes it. */
  function pyMessagePreamble(target) {
    return [
      'import hashlib, hmac, json, socket, struct',
      '',
      'KEY = open("switchboard-data/key", "rb").read().strip()  # or SWITCHBOARD_KEY',
      `s = socket.create_connection(${pyAddr(target).tuple})`,
      'def exactly(n):',
      '    b = b""',
      '    while len(b) < n: b += s.recv(n - len(b)) or exit("closed")',
      '    return b',
      'def send(header, body=b""):',
      '    h = json.dumps(header).encode()',
      '    s.sendall(struct.pack(">I", len(h)) + h + body)',
      'def receive(body=True):',
      '    h = json.loads(exactly(struct.unpack(">I", exactly(4))[0]))',
      '    return h, exactly(h.get("size", 0)) if body else b""',
      's.sendall(hmac.new(KEY, exactly(32), hashlib.sha256).digest())',
      'print(receive()[0])  # {"ok": true}',
    ].join('\n');
  }

  async function serviceAddr(name) {
    try {
      const s = await api('GET', `/api/v1/services/${name}`);
      return s.local_addr || s.listen;
    } catch (_) {
      return `<${name} address>`;
    }
  }

  // ---- send ---------------------------------------------------------------

  /** The `q` quantile (0..1) of `values`, nearest rank. */
  function quantile(values, q) {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))];
  }

  /** Bytes from `68 69`, `6869`, `0x68 0x69`. */
  function hexBytes(text) {
    const clean = text.replace(/0x/gi, '').replace(/[\s,]/g, '');
    if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error('hex bytes are pairs of 0-9 and a-f');
    return new Uint8Array((clean.match(/../g) || []).map((b) => parseInt(b, 16)));
  }

  /** Round trips of `payload` over one WebSocket to `service`, `n` in turn, in µs. */
  function webSocketTimes(service, payload, n) {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const sock = new WebSocket(`${scheme}://${location.host}/api/v1/services/${encodeURIComponent(service)}/ws`);
      sock.binaryType = 'arraybuffer';
      const times = [];
      let t0 = 0;
      const next = () => {
        if (times.length === n) {
          sock.close(1000);
          resolve(times);
          return;
        }
        t0 = performance.now();
        sock.send(payload);
      };
      sock.addEventListener('open', next);
      sock.addEventListener('message', () => {
        times.push((performance.now() - t0) * 1000);
        next();
      });
      sock.addEventListener('close', (e) => {
        if (times.length < n) reject(new Error(e.reason || `the WebSocket closed (code ${e.code})`));
      });
    });
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** Dots per message on a shared log axis, one row per path, the median as a bar. */
  function drawPaths(chart, rows, fmt) {
    const all = rows.flatMap((r) => r.values).filter((v) => v > 0);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all) * 1.01)));
    const [x0, x1] = [150, 625];
    const x = (v) => x0 + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (x1 - x0);
    const title = chart.querySelector('title');
    chart.replaceChildren(title);
    for (let t = lo; t <= hi * 1.001; t *= 10) {
      for (const m of [1, 2, 5]) {
        const v = t * m;
        if (v > hi * 1.001) break;
        chart.append(svg('line', { x1: x(v), x2: x(v), y1: 10, y2: 122, class: m === 1 ? 'grid major' : 'grid' }));
        if (m === 1) chart.append(svg('text', { x: x(v), y: 140, class: 'tick', 'text-anchor': 'middle' }, fmt(v)));
      }
    }
    rows.forEach((r, i) => {
      const y = 28 + i * 40;
      chart.append(svg('text', { x: 4, y: y + 4, class: 'label' }, r.label));
      for (const v of r.values) chart.append(svg('circle', { cx: x(v).toFixed(1), cy: y, r: 3.5, class: `dot ${r.path}` }));
      const m = quantile(r.values, 0.5);
      chart.append(svg('line', { x1: x(m), x2: x(m), y1: y - 12, y2: y + 12, class: 'median' }));
    });
  }

  function initSend() {
    const service = $('#send-service');
    const text = $('#send-text');
    const compare = $('#compare-button');
    const canOperate = !compare.disabled;
    const kind = () => service.selectedOptions[0]?.dataset.kind;
    const FORMAT = '%Y-%m-%d %H:%M:%S';
    let message = text.value;
    // For `time` the message is a strftime format, with examples to pick.
    const fitKind = () => {
      const time = kind() === 'time';
      $('#time-help').hidden = !time;
      $('#send-text-label').textContent = time ? 'Format (strftime)' : 'Message';
      text.placeholder = time ? FORMAT : 'hello, switchboard';
      $('#send-mode').disabled = time;
      if (time) {
        $('#send-mode').value = 'text';
        if (!text.value.includes('%')) { message = text.value; text.value = FORMAT; }
      } else if (text.value.includes('%')) {
        text.value = message;
      }
      compare.disabled = !canOperate || time;
      $('#compare-note').textContent = time ? 'the WebSocket path goes to echo and udp-echo only' : '';
    };
    service.addEventListener('change', fitKind);
    for (const chip of $$('#time-examples .chip')) {
      chip.addEventListener('click', () => { text.value = chip.dataset.format; text.focus(); });
    }
    fitKind();
    // A service that is not running cannot be chosen; the list says why.
    live({
      snapshot: (snap) => {
        for (const s of snap.services) {
          const option = $(`#send-service option[value="${s.name}"]`);
          if (!option) continue;
          const running = s.phase === 'running';
          option.disabled = !running;
          option.textContent = running ? option.dataset.label : `${option.dataset.label} — ${s.state}`;
        }
      },
    });
    $('#send-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const service = $('#send-service').value;
      const kind = $('#send-service').selectedOptions[0].dataset.kind;
      const hexMode = $('#send-mode').value === 'hex';
      const input = $('#send-text').value;
      const button = $('#send-button');
      button.disabled = true;
      const t0 = performance.now();
      try {
        const r = await api('POST', `/api/v1/services/${service}/send`, hexMode ? { hex: input } : { text: input });
        const bs = (performance.now() - t0) * 1000;
        $('#send-reply').textContent = r.reply;
        // One unit for both figures, so they compare at a glance.
        const inMs = Math.max(bs, r.rtt_us) >= 1000;
        const same = (us) => (inMs ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`);
        $('#send-bs').textContent = same(bs);
        $('#send-cs').textContent = same(r.rtt_us);
        $('#send-cs-detail').textContent = `round trip on an open socket (B/S is ${(bs / Math.max(1, r.rtt_us)).toFixed(1)}× this); ${same(r.total_us)} with connecting`;
        $('#send-out-n').textContent = `${r.bytes_sent} B`;
        $('#send-in-n').textContent = `${r.bytes_received} B`;
        $('#send-out-hex').textContent = hexdump(r.request_hex);
        $('#send-in-hex').textContent = hexdump(r.reply_hex);
        const cmd = { echo: 'echo', 'udp-echo': 'udp', time: 'time' }[kind];
        $('#send-cli').textContent = hexMode
          ? `printf '${(r.request_hex.match(/../g) || []).map((b) => `\\x${b}`).join('')}' | switchboard ${cmd} ${r.target}`
          : `switchboard ${cmd} ${r.target} ${shq(input)}`;
        const addr = pyAddr(r.target);
        const family = addr.v6 ? 'socket.AF_INET6' : 'socket.AF_INET';
        $('#send-python').textContent = kind === 'echo'
          ? `import socket\n\nwith socket.create_connection(${addr.tuple}) as s:\n    s.sendall(${pyBytes(r.request_hex)})\n    print(s.recv(${Math.max(1024, r.bytes_sent)}))`
          : `import socket\n\ns = socket.socket(${family}, socket.SOCK_DGRAM)\ns.settimeout(5)\ns.sendto(${pyBytes(r.request_hex)}, ${addr.tuple})\nprint(s.recvfrom(65535)[0])`;
        $('#send-result').hidden = false;
      } catch (e) {
        // No stale reply beside a new error.
        $('#send-result').hidden = true;
        toast(e.message, 'error');
      } finally {
        button.disabled = false;
      }
    });

    // The same N messages over (a) one HTTP request each, (b) one open
    // WebSocket, (c) the server's own client (the rtt_us of each (a)).
    compare.addEventListener('click', async () => {
      const name = service.value;
      const input = text.value;
      const hexMode = $('#send-mode').value === 'hex';
      const n = Math.max(1, Math.min(500, parseInt($('#send-repeat').value, 10) || 20));
      const note = $('#compare-note');
      compare.disabled = true;
      $('#compare-result').hidden = true;
      try {
        const payload = hexMode ? hexBytes(input) : input;
        const body = hexMode ? { hex: input } : { text: input };
        const http = [], cs = [];
        for (let i = 0; i < n; i += 1) {
          note.textContent = `(a) HTTP: ${i + 1} of ${n}`;
          const t0 = performance.now();
          const r = await api('POST', `/api/v1/services/${encodeURIComponent(name)}/send`, body);
          http.push((performance.now() - t0) * 1000);
          cs.push(r.rtt_us);
        }
        note.textContent = `(b) WebSocket: ${n} messages`;
        const ws = await webSocketTimes(name, payload, n);
        const rows = [
          { path: 'http', label: '(a) HTTP', values: http },
          { path: 'ws', label: '(b) WebSocket', values: ws },
          { path: 'cs', label: '(c) C/S', values: cs },
        ];
        // One unit for every figure: µs while everything fits, else ms.
        const inMs = Math.max(...rows.map((r) => quantile(r.values, 0.95))) >= 1000;
        const fmt = (us) => (inMs ? `${(us / 1000).toFixed(us < 10000 ? 2 : 1)} ms` : `${Math.round(us)} µs`);
        const base = Math.max(1, quantile(cs, 0.5));
        const described = [];
        for (const r of rows) {
          const row = $(`#compare-table tr[data-path="${r.path}"]`);
          const median = quantile(r.values, 0.5), p95 = quantile(r.values, 0.95);
          $('[data-field="median"]', row).textContent = fmt(median);
          $('[data-field="p95"]', row).textContent = fmt(p95);
          $('[data-field="ratio"]', row).textContent = `${(median / base).toFixed(1)}×`;
          described.push(`${r.label}: median ${fmt(median)}, p95 ${fmt(p95)}`);
        }
        $('#compare-result [data-field="n"]').textContent = n;
        const chart = $('#compare-chart');
        chart.querySelector('title').textContent = `Latency per message, log scale. ${described.join('; ')}.`;
        drawPaths(chart, rows, (us) => (inMs ? `${us / 1000} ms` : `${us} µs`));
        $('#compare-result').hidden = false;
        note.textContent = '';
      } catch (e) {
        note.textContent = '';
        toast(e.message, 'error');
      } finally {
        compare.disabled = !canOperate || kind() === 'time';
      }
    });

    /** The framed side's reads, each 4-byte length drawn as a `[00 00 00 05]` chip. */
    const framedReads = (side) => {
      const encoder = new TextEncoder(), decoder = new TextDecoder();
      let prefix = [], body = 0;
      return side.reads.map((read, n) => {
        // The server shows control bytes as \u{..}: back to bytes.
        const bytes = encoder.encode(read.replace(/\\u\{([0-9a-f]+)\}/g, (_, h) => String.fromCodePoint(parseInt(h, 16))));
        const li = el('li', {});
        let i = 0;
        while (i < bytes.length) {
          if (body === 0) {
            const take = Math.min(4 - prefix.length, bytes.length - i);
            const part = Array.from(bytes.slice(i, i + take));
            prefix.push(...part);
            i += take;
            const whole = prefix.length === 4;
            const len = whole ? prefix.reduce((a, b) => a * 256 + b, 0) : null;
            li.append(el('span', { class: 'chip prefix', title: whole ? `length: ${len} bytes` : 'part of a length' },
              `[${part.map((b) => b.toString(16).padStart(2, '0')).join(' ')}]`));
            if (whole) { body = len; prefix = []; }
          } else {
            const take = Math.min(body, bytes.length - i);
            li.append(el('code', {}, decoder.decode(bytes.slice(i, i + take))));
            body -= take;
            i += take;
          }
        }
        li.append(el('span', { class: 'count' }, ` ${side.read_sizes[n]} B`));
        return li;
      });
    };

    $('#sticky-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const messages = $('#sticky-text').value.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.length);
      const button = $('#sticky-button');
      button.disabled = true;
      try {
        const r = await api('POST', '/api/v1/sticky', { messages });
        const fill = (root, side, verdict) => {
          const f = (name) => $(`[data-field="${name}"]`, root);
          f('writes').textContent = side.writes.length;
          f('nreads').textContent = `${side.reads.length} read${side.reads.length === 1 ? '' : 's'}`;
          f('reads').replaceChildren(...side.reads.map((text, i) =>
            el('li', {}, el('code', {}, text), el('span', { class: 'count' }, ` ${side.read_sizes[i]} B`))));
          if (verdict) f('verdict').textContent = verdict;
        };
        const raw = r.raw;
        fill($('#sticky-raw'), raw, raw.reads.length < messages.length
          ? `${raw.reads.length} blob${raw.reads.length === 1 ? '' : 's'} for ${messages.length} messages — the boundaries are lost`
          : `${raw.reads.length} reads this time, but nothing in the bytes marks where a message ends`);
        fill($('#sticky-framed'), r.framed);
        const framed = $('#sticky-framed');
        $('[data-field="reads"]', framed).replaceChildren(...framedReads(r.framed));
        $('[data-field="nmessages"]', framed).textContent = `${r.framed.messages.length} messages, as sent`;
        $('[data-field="messages"]', framed).replaceChildren(...r.framed.messages.map((m) => el('li', {}, el('code', {}, m))));
        $('#sticky-result').hidden = false;
      } catch (e) {
        toast(e.message, 'error');
      } finally {
        button.disabled = false;
      }
    });
  }

  // The same lab through exec's framings: one column per instance.
  if ($('#sticky-exec-form')) {
    $('#sticky-exec-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const commands = $('#sticky-exec-text').value.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim().length);
      const button = $('#sticky-exec-button');
      button.disabled = true;
      try {
        const r = await api('POST', '/api/v1/sticky/exec', { commands });
        const columns = r.sides.map((side) => {
          const col = el('div', { class: 'sticky-side', 'data-framing': side.framing, 'data-whole': String(side.whole) });
          col.append(el('h3', {}, `${side.instance} (${side.framing})`));
          col.append(el('p', { class: side.whole ? 'hint ok' : 'hint bad', 'data-field': 'verdict' },
            side.error ? `failed: ${side.error}` : side.verdict));
          col.append(el('ol', { class: 'reads' }, ...side.replies.map((text, i) =>
            el('li', {}, el('span', { class: 'count' }, `${r.commands[i]} → ${side.reply_sizes[i]} B `), el('code', {}, text)))));
          if (side.leftover_size) {
            col.append(el('p', { class: 'hint' }, `left unread after the last command: ${side.leftover_size} B`),
              el('code', { class: 'reply' }, side.leftover));
          }
          return col;
        });
        $('#sticky-exec-result').replaceChildren(...columns);
        $('#sticky-exec-result').hidden = false;
      } catch (e) {
        toast(e.message, 'error');
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- files ----------------------------------------------------------------

  const BROWSER_HASH_LIMIT = 256 * 1024 * 1024;

  async function browserSha256(file) {
    if (!window.crypto?.subtle) return { note: 'this page is not a secure context: no hashing here' };
    if (file.size > BROWSER_HASH_LIMIT) return { note: 'too large to hash in the browser' };
    const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
    return { hex: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('') };
  }

  /** A moment as this page shows every time: local, 24-hour, with the
   *  date when it is not today; UTC for a title on hover. */
  function stamp(when) {
    const d = when instanceof Date ? when : new Date(when);
    const two = (n) => String(n).padStart(2, '0');
    const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    const today = new Date().toDateString() === d.toDateString();
    return {
      text: today ? time : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`,
      utc: d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
    };
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

  // ---- console --------------------------------------------------------------

  /** Splits a command line into words: blanks separate, quotes group. */
  function splitWords(line) {
    const words = [];
    let word = null, quote = null;
    for (const c of line) {
      if (quote) {
        if (c === quote) quote = null; else word += c;
      } else if (c === '"' || c === "'") {
        quote = c; word = word ?? '';
      } else if (/\s/.test(c)) {
        if (word !== null) { words.push(word); word = null; }
      } else {
        word = (word ?? '') + c;
      }
    }
    if (word !== null) words.push(word);
    return words;
  }

  function initConsole() {
    const form = $('#exec-form');
    if (!form) return; // not an admin
    const input = $('#exec-input');
    const output = $('#exec-output');
    const status = $('#exec-status');
    const runButton = $('#exec-run');
    const stopButton = $('#exec-stop');
    const shellBox = $('#exec-shell');
    const historyList = $('#exec-history');
    let history = [];
    try { history = JSON.parse(localStorage.getItem('switchboard.exec.history') || '[]'); } catch (_) { /* none */ }
    let recall = history.length;
    let running = null;

    const showHistory = () => {
      historyList.replaceChildren(...history.slice().reverse().map((h) => {
        const recallButton = el('button', { type: 'button', title: 'put this command back on the line' }, el('code', {}, h));
        recallButton.addEventListener('click', () => { input.value = h; input.focus(); });
        return el('li', {}, recallButton);
      }));
    };
    showHistory();
    input.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowUp' && recall > 0) { recall -= 1; input.value = history[recall]; e.preventDefault(); }
      if (e.key === 'ArrowDown' && recall < history.length) { recall += 1; input.value = history[recall] || ''; e.preventDefault(); }
    });
    stopButton.addEventListener('click', () => running?.abort());
    $('#exec-clear').addEventListener('click', () => output.replaceChildren());
    // A program chip puts its name on the line.
    $('#exec-allowed')?.addEventListener('click', (ev) => {
      const program = ev.target.closest('[data-program]')?.dataset.program;
      if (program) { input.value = program; input.focus(); }
    });
    // Without a shell, `|`, `>` and `;` are just characters in an argument.
    const hint = $('#exec-hint');
    const checkHint = () => {
      const plain = !shellBox?.checked && /[|><;&`$]/.test(input.value);
      hint.hidden = !plain;
      hint.textContent = plain
        ? 'No shell here: | > ; & $ are passed to the program as plain arguments, not interpreted.'
        : '';
    };
    input.addEventListener('input', checkHint);
    shellBox?.addEventListener('change', checkHint);
    // Scrollback, bounded: the oldest output goes first.
    const MAX_NODES = 4000;
    const trim = () => { while (output.childNodes.length > MAX_NODES) output.firstChild.remove(); };

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const line = input.value.trim();
      if (!line || running) return;
      const shell = shellBox?.checked;
      const body = shell ? { line } : { argv: splitWords(line) };
      history = history.filter((h) => h !== line).concat(line).slice(-50);
      localStorage.setItem('switchboard.exec.history', JSON.stringify(history));
      recall = history.length;
      showHistory();
      output.append(el('span', { class: 'cmd-echo' }, `${output.childNodes.length ? '\n' : ''}$ ${line}\n`));
      trim();
      output.scrollTop = output.scrollHeight;
      status.textContent = 'running…';
      status.dataset.state = 'running';
      runButton.disabled = true;
      stopButton.disabled = false;
      const addr = await serviceAddr('exec');
      $('#exec-cli').textContent = shell
        ? `switchboard exec ${addr} --shell ${shq(line)}`
        : `switchboard exec ${addr} -- ${body.argv.map(shq).join(' ')}`;
      const request = shell ? `{"op": "shell", "line": ${JSON.stringify(line)}}` : `{"op": "run", "argv": ${JSON.stringify(body.argv)}}`;
      $('#exec-python').textContent = `${pyMessagePreamble(addr)}\nsend(${request})\nwhile True:\n    h, body = receive()\n    if h["type"] in ("stdout", "stderr"):\n        print(body.decode(errors="replace"), end="")\n    else:\n        print(h)  # {"type": "exit", "code": 0}\n        break`;
      running = new AbortController();
      const t0 = performance.now();
      try {
        const res = await fetch('/api/v1/exec', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
          body: JSON.stringify(body),
          signal: running.signal,
        });
        if (!res.ok) {
          const err = await res.json().catch(() => ({}));
          throw new Error(err.error || `${res.status} ${res.statusText}`);
        }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let pending = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pending += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const msg = JSON.parse(pending.slice(0, nl));
            pending = pending.slice(nl + 1);
            if (msg.type === 'stdout' || msg.type === 'stderr') {
              output.append(el('span', { class: msg.type }, msg.data));
              trim();
              output.scrollTop = output.scrollHeight;
            } else {
              const bs = micros((performance.now() - t0) * 1000);
              const cs = msg.cs_us !== undefined ? `; C/S ${micros(msg.cs_us)}` : '';
              if (msg.type === 'exit' && msg.code !== undefined) {
                status.textContent = `exit ${msg.code} — B/S ${bs}${cs}`;
                status.dataset.state = msg.code === 0 ? 'ok' : 'failed';
              } else if (msg.type === 'exit') {
                status.textContent = `killed by signal ${msg.signal} — B/S ${bs}${cs}`;
                status.dataset.state = 'failed';
              } else {
                status.textContent = `error: ${msg.error}`;
                status.dataset.state = 'failed';
              }
            }
          }
        }
      } catch (e) {
        status.textContent = e.name === 'AbortError' ? 'stopped (the command was killed)' : `error: ${e.message}`;
        status.dataset.state = 'failed';
      } finally {
        running = null;
        runButton.disabled = false;
        stopButton.disabled = true;
      }
    });
  }

  function initTokens() {
    const form = $('#token-form');
    if (!form) return;
    const when = (unix) => (unix ? new Date(unix * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : 'never');
    const render = (list) => {
      $('#tokens tbody').replaceChildren(...list.map((t) => {
        const revoke = el('button', { type: 'button', class: 'small', 'data-revoke': t.name }, 'Revoke');
        const row = el('tr', { 'data-token': t.name },
          el('td', { class: 'mono' }, t.name),
          el('td', {}, el('span', { class: 'role' }, t.role)),
          el('td', {}, when(t.created_unix)),
          el('td', {}, when(t.expires_unix) + (t.expired ? ' (expired)' : '')),
          el('td', {}, when(t.last_used_unix)),
          el('td', {}, revoke));
        return row;
      }));
      $('#tokens-empty').hidden = list.length > 0;
    };
    const reload = async () => render(await api('GET', '/api/v1/tokens'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const expires = $('#token-expires').value.trim();
      const body = { name: $('#token-name').value.trim(), role: $('#token-role').value };
      if (expires) body.expires = expires;
      try {
        const made = await api('POST', '/api/v1/tokens', body);
        $('#token-new-name').textContent = made.name;
        $('#token-new-value').textContent = made.token;
        $('#token-new').hidden = false;
        form.reset();
        await reload();
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    $('#tokens').addEventListener('click', async (ev) => {
      const name = ev.target.closest('[data-revoke]')?.dataset.revoke;
      if (!name || !confirm(`Revoke the token ${name}? Scripts using it stop working at once.`)) return;
      try {
        await api('DELETE', `/api/v1/tokens/${encodeURIComponent(name)}`);
        toast(`revoked ${name}`);
        await reload();
      } catch (e) {
        toast(e.message, 'error');
      }
    });
  }

  // ---- services -----------------------------------------------------------

  function initServices() {
    const form = $('#instance-form');
    const table = $('#instances');
    if (!form) return;
    let kinds = [];
    let editing = null; // the name being edited, or null when adding
    const fields = $('#instance-fields');
    const clearErrors = () => {
      for (const e of $$('.field-error', form)) { e.hidden = true; e.textContent = ''; }
      for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
    };
    const showError = (field, message) => {
      const slot = field && $(`[data-error-for="${field}"]`, form);
      if (!slot) { toast(message, 'error'); return; }
      slot.textContent = message;
      slot.hidden = false;
      const input = $(`[name="${field}"]`, form);
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    };
    // One text input per key of the kind: the same text `--set` takes.
    const renderFields = (values) => {
      const info = kinds.find((k) => k.kind === $('#instance-kind').value);
      fields.replaceChildren(...(info ? info.keys : []).map((key) => {
        const input = el('input', { name: key, 'data-setting': key, autocomplete: 'off', spellcheck: 'false' });
        input.value = (values && values[key]) || '';
        if (key === 'listen') input.placeholder = '127.0.0.1:9100';
        return el('label', {}, key, input, el('span', { class: 'field-error', 'data-error-for': key, hidden: true }));
      }));
    };
    const reset = () => {
      editing = null;
      form.reset();
      $('#instance-name').disabled = false;
      $('#instance-kind').disabled = false;
      $('#instance-form-title').textContent = 'Add an instance';
      $('#instance-save').textContent = 'Add';
      $('#instance-cancel').hidden = true;
      clearErrors();
      renderFields();
    };
    api('GET', '/api/v1/kinds').then((list) => { kinds = list; renderFields(); })
      .catch((e) => toast(e.message, 'error'));
    $('#instance-kind').addEventListener('change', () => renderFields());
    $('#instance-cancel').addEventListener('click', reset);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors();
      const settings = {};
      for (const input of $$('[data-setting]', form)) {
        if (input.value.trim() !== '') settings[input.dataset.setting] = input.value.trim();
      }
      const name = $('#instance-name').value.trim();
      try {
        if (editing) {
          await api('PUT', `/api/v1/services/${encodeURIComponent(editing)}`, { kind: $('#instance-kind').value, settings });
          toast(`saved ${editing}`);
        } else {
          await api('POST', '/api/v1/services', { name, kind: $('#instance-kind').value, settings });
          toast(`added ${name}`);
        }
        location.reload();
      } catch (e) {
        showError(e.field, e.message);
      }
    });
    // Reload config: the server applies only what changed in the files.
    $('#reload-config')?.addEventListener('click', async () => {
      try {
        const res = await api('POST', '/api/v1/reload');
        const r = res.result || {};
        const n = (k) => (r[k] || []).length;
        toast(`reloaded: ${n('restarted')} restarted, ${n('added')} added, ${n('removed')} removed, ${n('kept')} unchanged`
          + (n('failed') ? `; failed: ${r.failed.join('; ')}` : ''), n('failed') ? 'error' : undefined);
        if (n('restarted') + n('added') + n('removed') + n('stopped')) setTimeout(() => location.reload(), 1500);
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    table.addEventListener('click', async (ev) => {
      const remove = ev.target.closest('[data-remove]')?.dataset.remove;
      const edit = ev.target.closest('[data-edit]')?.dataset.edit;
      try {
        if (remove) {
          if (!confirm(`Remove ${remove}? It stops now and is not started again.`)) return;
          await api('DELETE', `/api/v1/services/${encodeURIComponent(remove)}`);
          toast(`removed ${remove}`);
          location.reload();
        } else if (edit) {
          const current = await api('GET', `/api/v1/services/${encodeURIComponent(edit)}/settings`);
          if (current.source !== 'dashboard') {
            const on = current.settings.enabled !== 'true';
            await api('PUT', `/api/v1/services/${encodeURIComponent(edit)}`, { settings: { enabled: on } });
            toast(`${edit} ${on ? 'on' : 'off'}`);
            location.reload();
            return;
          }
          editing = edit;
          $('#instance-name').value = edit;
          $('#instance-name').disabled = true;
          $('#instance-kind').value = current.kind;
          $('#instance-kind').disabled = true;
          $('#instance-form-title').textContent = `Edit ${edit}`;
          $('#instance-save').textContent = 'Save';
          $('#instance-cancel').hidden = false;
          clearErrors();
          renderFields(current.settings);
          form.scrollIntoView({ block: 'start' });
        }
      } catch (e) {
        toast(e.message, 'error');
      }
    });
  }

  // ---- toxics (a proxy's faults, on the Services page) -----------------

  // The form is generated from /api/v1/toxics/types: one number input per
  // attribute, with its unit, bounds and help, so a new type needs no
  // change here.
  function initToxics() {
    const panel = $('#toxics-panel');
    if (!panel) return;
    const form = $('#toxic-form');
    const body = $('#toxics tbody');
    const typeSelect = $('#toxic-type');
    const fields = $('#toxic-fields');
    let types = [];
    let proxy = null; // { name, udp }
    let editing = null; // the toxic's name being edited
    let opener = null; // the button that opened the panel, focused on close
    const base = () => `/api/v1/services/${encodeURIComponent(proxy.name)}/toxics`;
    const clearErrors = () => {
      for (const e of $$('.field-error', form)) { e.hidden = true; e.textContent = ''; }
      for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
    };
    const showError = (field, message) => {
      const slot = field && $(`[data-error-for="${CSS.escape(field)}"]`, form);
      if (!slot) { toast(message, 'error'); return; }
      slot.textContent = message;
      slot.hidden = false;
      const input = $(`[name="${CSS.escape(field)}"]`, form);
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    };
    const fits = (t) => t.applies === 'both' || t.applies === (proxy.udp ? 'udp' : 'tcp');
    const renderFields = (values) => {
      const info = types.find((t) => t.type === typeSelect.value);
      $('#toxic-type-help').textContent = info ? info.help : '';
      fields.replaceChildren(...(info ? info.attributes : []).map((a) => {
        const id = `toxic-attr-${a.name}`;
        const input = el('input', {
          id, name: a.name, type: 'number', min: a.min, max: a.max,
          step: a.type === 'integer' ? 1 : 'any', 'data-attr': a.name,
        });
        input.value = values && values[a.name] !== undefined ? values[a.name] : a.default;
        const help = el('span', { class: 'sub', id: `${id}-help` }, a.help);
        input.setAttribute('aria-describedby', help.id);
        return el('label', {}, `${a.name}${a.unit ? ` (${a.unit})` : ''}`, input, help,
          el('span', { class: 'field-error', 'data-error-for': a.name, hidden: true }));
      }));
    };
    const resetForm = () => {
      editing = null;
      form.reset();
      typeSelect.disabled = false;
      $('#toxic-name').disabled = false;
      $('#toxic-form-title').textContent = 'Add a toxic';
      $('#toxic-save').textContent = 'Add toxic';
      $('#toxic-cancel').hidden = true;
      clearErrors();
      renderFields();
    };
    const attrText = (t) => Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ') || '—';
    let current = [];
    const render = (list) => {
      current = list;
      body.replaceChildren(...list.map((t) => {
        const on = el('input', { type: 'checkbox', checked: t.enabled, 'data-toggle': t.name });
        on.setAttribute('aria-label', `${t.name} on`);
        return el('tr', { 'data-toxic': t.name, 'data-enabled': String(t.enabled) },
          el('td', { class: 'mono' }, t.name),
          el('td', {}, t.type),
          el('td', {}, t.stream),
          el('td', { class: 'mono' }, attrText(t)),
          el('td', {}, t.toxicity),
          el('td', {}, on),
          el('td', { class: 'actions-cell' },
            el('button', { type: 'button', className: 'small', 'data-toxic-edit': t.name, ariaLabel: `Edit ${t.name}` }, 'Edit'),
            ' ',
            el('button', { type: 'button', className: 'small', 'data-toxic-remove': t.name, ariaLabel: `Remove ${t.name}` }, 'Remove')));
      }));
      $('#toxics-empty').hidden = list.length > 0;
    };
    const load = async () => render(await api('GET', base()));
    const open = async (button) => {
      opener = button;
      proxy = { name: button.dataset.toxics, udp: button.dataset.kind === 'udp-proxy' };
      try {
        if (types.length === 0) types = await api('GET', '/api/v1/toxics/types');
        typeSelect.replaceChildren(...types.filter(fits).map((t) => el('option', { value: t.type }, t.type)));
        $('#toxics-title').textContent = `Toxics of ${proxy.name}`;
        panel.dataset.proxy = proxy.name;
        resetForm();
        await load();
        panel.hidden = false;
        $('#toxics-title').focus();
      } catch (e) {
        toast(e.message, 'error');
      }
    };
    const close = () => {
      panel.hidden = true;
      delete panel.dataset.proxy;
      opener?.focus();
    };
    $('#instances').addEventListener('click', (ev) => {
      const button = ev.target.closest('[data-toxics]');
      if (button) open(button);
    });
    typeSelect.addEventListener('change', () => renderFields());
    $('#toxic-cancel').addEventListener('click', resetForm);
    $('#toxics-close').addEventListener('click', close);
    panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors();
      const attributes = {};
      for (const input of $$('[data-attr]', form)) {
        if (input.value.trim() === '') continue;
        const n = Number(input.value);
        if (!Number.isFinite(n)) { showError(input.name, 'a number'); return; }
        attributes[input.dataset.attr] = n;
      }
      const toxicity = Number($('#toxic-toxicity').value || '1');
      const sent = {
        stream: $('#toxic-stream').value,
        toxicity: Number.isFinite(toxicity) ? toxicity : $('#toxic-toxicity').value,
        enabled: $('#toxic-enabled').checked,
        attributes,
      };
      try {
        if (editing) {
          await api('PUT', `${base()}/${encodeURIComponent(editing)}`, sent);
          toast(`saved ${editing}`);
        } else {
          sent.type = typeSelect.value;
          const name = $('#toxic-name').value.trim();
          if (name) sent.name = name;
          const made = await api('POST', base(), sent);
          toast(`added ${made.name} to ${proxy.name}`);
        }
        resetForm();
        await load();
      } catch (e) {
        showError(e.field, e.message);
      }
    });
    body.addEventListener('change', async (ev) => {
      const name = ev.target.dataset.toggle;
      if (!name) return;
      try {
        await api('PUT', `${base()}/${encodeURIComponent(name)}`, { enabled: ev.target.checked });
        toast(`${name} ${ev.target.checked ? 'on' : 'off'}`);
        await load();
        $(`[data-toggle="${CSS.escape(name)}"]`, body)?.focus();
      } catch (e) {
        ev.target.checked = !ev.target.checked;
        toast(e.message, 'error');
      }
    });
    body.addEventListener('click', async (ev) => {
      const remove = ev.target.closest('[data-toxic-remove]')?.dataset.toxicRemove;
      const edit = ev.target.closest('[data-toxic-edit]')?.dataset.toxicEdit;
      try {
        if (remove) {
          if (!confirm(`Remove the toxic ${remove} from ${proxy.name}?`)) return;
          await api('DELETE', `${base()}/${encodeURIComponent(remove)}`);
          toast(`removed ${remove}`);
          if (editing === remove) resetForm();
          await load();
          $('#toxics-title').focus();
        } else if (edit) {
          const t = current.find((x) => x.name === edit);
          if (!t) return;
          editing = edit;
          typeSelect.value = t.type;
          typeSelect.disabled = true;
          $('#toxic-name').value = t.name;
          $('#toxic-name').disabled = true;
          $('#toxic-stream').value = t.stream;
          $('#toxic-toxicity').value = t.toxicity;
          $('#toxic-enabled').checked = t.enabled;
          $('#toxic-form-title').textContent = `Edit ${edit}`;
          $('#toxic-save').textContent = 'Save toxic';
          $('#toxic-cancel').hidden = false;
          clearErrors();
          renderFields(t.attributes);
          $('#toxic-stream').focus();
        }
      } catch (e) {
        toast(e.message, 'error');
      }
    });
  }

  // ---- audit ------------------------------------------------------------

  function initAudit() {
    const form = $('#audit-form');
    if (!form) return;
    const body = $('#audit tbody');
    const older = $('#audit-older');
    let next = null;
    const known = ['at', 'ts', 'time', 'event', 'user', 'service'];
    const row = (l) => {
      const at = l.at || l.ts || l.time || '';
      const details = Object.entries(l)
        .filter(([k]) => !known.includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      return el('tr', {},
        el('td', { class: 'mono' }, String(at).replace('T', ' ').replace('Z', '')),
        el('td', {}, l.event || ''),
        el('td', {}, l.user || ''),
        el('td', {}, l.service || ''),
        el('td', { class: 'mono' }, details));
    };
    const load = async (append) => {
      const q = $('#audit-q').value.trim();
      const params = new URLSearchParams({ limit: '100' });
      if (q) params.set('q', q);
      if (append && next !== null) params.set('before', String(next));
      try {
        const page = await api('GET', `/api/v1/audit?${params}`);
        const rows = page.lines.map(row);
        if (append) body.append(...rows); else body.replaceChildren(...rows);
        next = page.older ?? null;
        older.hidden = next === null;
        $('#audit-empty').hidden = body.children.length > 0 || next !== null;
      } catch (e) {
        toast(e.message, 'error');
      }
    };
    form.addEventListener('submit', (ev) => { ev.preventDefault(); next = null; load(false); });
    older.addEventListener('click', () => load(true));
    load(false);
  }

  // ---- start ------------------------------------------------------------

  if (page === 'login') {
    initLogin();
    // For tests and tools: the page's handlers are attached.
    document.body.dataset.ready = 'true';
    return;
  }
  initChrome();
  if (page === 'overview') initOverview();
  else if (page === 'connections') initConnections();
  else if (page === 'traffic') initTraffic();
  else if (page === 'send') initSend();
  else if (page === 'files') initFiles();
  else if (page === 'console') initConsole();
  else if (page === 'tokens') initTokens();
  else if (page === 'services') { initServices(); initToxics(); }
  else if (page === 'audit') initAudit();
  // Every page shows the live state in the top bar.
  if (!['overview', 'connections', 'traffic', 'send'].includes(page)) live({});
  document.body.dataset.ready = 'true';
})();

// ==== wire inspector: /inspect/{id} ===========================================
// Kept apart from the pages above (its own closure, its own small helpers).
// Polls /api/v1/connections/{id}/capture with its `since` cursor and draws
// one block per segment: direction, time, length, then hex and text side
// by side. Bytes from the peer are only ever inserted with textContent.
(() => {
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
      const res = await fetch(`/api/v1/connections/${id}/capture?since=${since}`, { credentials: 'same-origin' });
      if (res.status === 401) { location.href = '/login'; return; }
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
        const res = await fetch(`/api/v1/connections/${id}/replay`, {
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
})();
// ==== end of wire inspector ===================================================
