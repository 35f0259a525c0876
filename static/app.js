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
    if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
    return data;
  }

  let toastTimer;
  function toast(text, kind) {
    const el = $('#toast');
    if (!el) return;
    el.textContent = text;
    el.dataset.kind = kind || 'info';
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 3000);
  }

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

  function clock(unixMs) {
    const d = new Date(unixMs);
    return d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
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
    const connect = () => {
      const es = new EventSource('/api/v1/live');
      es.addEventListener('open', () => { show('live'); retry = 1000; });
      for (const [name, fn] of Object.entries(handlers)) {
        es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
      }
      es.addEventListener('error', () => {
        show('reconnecting');
        if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
        // The server said no (signed out, too many streams): find out, then retry.
        setTimeout(async () => {
          const r = await fetch('/api/v1/session', { credentials: 'same-origin' }).catch(() => null);
          if (r && r.status === 401) { location.href = '/login'; return; }
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

  /** The one-line description of an event (same words as the server's). */
  function describe(e) {
    switch (e.type) {
      case 'opened': return `${e.peer} connected (#${e.id})`;
      case 'closed': return `${e.peer} left after ${duration(e.duration_ms)}: ${bytes(e.bytes_in)} in, ${bytes(e.bytes_out)} out`;
      case 'refused': return `${e.peer} refused: ${e.reason}`;
      case 'service_state': return `now ${e.state}`;
      case 'auth_failed': return `${e.peer}: ${e.reason}`;
      case 'command_run': return `${e.peer} ran ${e.argv.join(' ')}: ${e.outcome}`;
      case 'file_stored': return `${e.peer} stored ${e.name} (${bytes(e.size)})`;
      default: return JSON.stringify(e);
    }
  }

  // ---- sign-in and sign-out ---------------------------------------------

  function initLogin() {
    const form = $('#sign-in');
    const error = $('#sign-in-error');
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
      const failed = s.state.startsWith('failed');
      const word = failed ? 'failed' : s.state;
      card.dataset.state = word;
      const field = (name) => $(`[data-field="${name}"]`, card);
      field('state').textContent = word;
      const reason = field('reason');
      reason.textContent = failed ? s.state.slice('failed: '.length) : '';
      reason.hidden = !failed;
      field('addr').textContent = s.local_addr || s.listen;
      field('active').textContent = s.active;
      field('bytes_in').textContent = bytes(s.bytes_in);
      field('bytes_out').textContent = bytes(s.bytes_out);
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

    live({
      snapshot: (snap) => {
        const second = Math.floor(snap.at_unix_ms / 1000);
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

    const render = (snap) => {
      last = snap;
      const service = serviceFilter.value;
      const text = textFilter.value.trim();
      const rows = [];
      const ids = new Set();
      for (const c of snap.connections.slice().reverse()) {
        ids.add(String(c.id));
        if (service && c.service !== service) continue;
        if (text && !c.peer.includes(text)) continue;
        const closer = admin
          ? el('td', {}, c.proto === 'tcp' ? el('button', { type: 'button', class: 'small', 'data-close': c.id }, 'Close') : '')
          : null;
        const tr = el('tr', { 'data-id': c.id, 'data-service': c.service },
          el('td', {}, el('span', { class: 'tag' }, c.service), ' ', el('span', { class: 'proto' }, c.proto)),
          el('td', { class: 'mono' }, c.peer),
          el('td', {}, duration(c.age_ms)),
          el('td', { class: 'num', 'data-field': 'bytes_in' }, bytes(c.bytes_in)),
          el('td', { class: 'num', 'data-field': 'bytes_out' }, bytes(c.bytes_out)),
          el('td', {}, `${duration(c.idle_ms)} ago`));
        if (closer) tr.append(closer);
        if (!seen.has(String(c.id))) tr.classList.add('fresh');
        rows.push(tr);
      }
      seen = ids;
      body.replaceChildren(...rows);
      $('#conn-count').textContent = snap.connections_total > snap.connections.length
        ? `${snap.connections_total} (showing the newest ${snap.connections.length})`
        : String(snap.connections_total);
      $('#conn-empty').hidden = rows.length > 0;
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
    live({ snapshot: render });
  }

  // ---- traffic ----------------------------------------------------------

  const COLORS = ['#2f6fde', '#12805c', '#d97706', '#c2352b', '#7c3aed', '#0891b2', '#db2777'];
  const WINDOW_S = 15 * 60;

  function initTraffic() {
    const log = $('#log tbody');
    const filters = { type: $('#log-type'), service: $('#log-service'), text: $('#log-filter') };
    const visible = (tr) => (!filters.type.value || tr.dataset.type === filters.type.value)
      && (!filters.service.value || tr.dataset.service === filters.service.value)
      && (!filters.text.value || tr.textContent.toLowerCase().includes(filters.text.value.toLowerCase()));
    const applyFilters = () => $$('tr', log).forEach((tr) => { tr.hidden = !visible(tr); });
    Object.values(filters).forEach((f) => f.addEventListener('input', applyFilters));
    $$('td[data-time]', log).forEach((td) => { td.textContent = clock(Number(td.dataset.time)); });
    let newest = Math.max(0, ...$$('tr', log).map((tr) => Number(tr.dataset.seq)));

    const addEvents = (events) => {
      for (const e of events) {
        if (e.seq <= newest) continue;
        newest = e.seq;
        const tr = el('tr', { 'data-seq': e.seq, 'data-type': e.type, 'data-service': e.service, class: 'fresh' },
          el('td', { class: 'mono' }, clock(e.at_unix_ms)),
          el('td', {}, el('span', { class: `ev ev-${e.type}` }, e.type)),
          el('td', {}, e.service),
          el('td', {}, describe(e)));
        tr.hidden = !visible(tr);
        log.prepend(tr);
      }
      while (log.rows.length > 500) log.deleteRow(-1);
    };

    let plot = null;
    let data = null;
    let names = [];
    const chartEl = $('#chart');
    const size = () => ({ width: chartEl.clientWidth, height: 320 });

    api('GET', '/api/v1/traffic').then((all) => {
      names = all.map((s) => s.name);
      const xs = all[0].samples.map((x) => x.at_unix_s);
      data = [xs, ...all.map((s) => s.samples.map((x) => x.bytes_in + x.bytes_out))];
      const ink = getComputedStyle(document.body).color;
      const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } };
      plot = new uPlot({
        ...size(),
        series: [{}, ...names.map((n, i) => ({
          label: n, stroke: COLORS[i % COLORS.length], width: 1.5,
          value: (u, v) => (v == null ? '–' : `${bytes(v)}/s`),
        }))],
        axes: [axis, { ...axis, size: 80, values: (u, vals) => vals.map((v) => `${bytes(v)}/s`) }],
        scales: {
          // Always the whole window, newest at the right edge.
          x: { time: true, range: (u, min, max) => [max - WINDOW_S, max] },
          y: { range: (u, min, max) => [0, Math.max(1024, max * 1.1)] },
        },
      }, data, chartEl);
      window.addEventListener('resize', () => plot.setSize(size()));
    }).catch((e) => toast(e.message, 'error'));

    live({
      events: addEvents,
      snapshot: (snap) => {
        if (!plot) return;
        const t = Math.floor(snap.at_unix_ms / 1000) - 1; // the second the rates describe
        const xs = data[0];
        if (xs.length && xs[xs.length - 1] >= t) return;
        xs.push(t);
        names.forEach((n, i) => {
          const s = snap.services.find((x) => x.name === n);
          data[i + 1].push(s ? s.rate_in + s.rate_out : null);
        });
        while (xs.length && xs[0] < t - WINDOW_S) data.forEach((col) => col.shift());
        plot.setData(data);
      },
    });
  }

  // ---- start ------------------------------------------------------------

  if (page === 'login') {
    initLogin();
    return;
  }
  initChrome();
  if (page === 'overview') initOverview();
  else if (page === 'connections') initConnections();
  else if (page === 'traffic') initTraffic();
})();
