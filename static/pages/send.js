// switchboard dashboard: the Send page: test messages, sticky packets, B/S beside C/S.
import { $, $$, api, toast, el, live, start, request, csrfToken } from '../app.js';
import { hexdump, pyBytes, shq, pyAddr, proxyNote } from '../bscs.js';

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
        option.dataset.acceptProxy = s.accept_proxy ? 'true' : '';
        option.textContent = running ? option.dataset.label : `${option.dataset.label} — ${s.state}`;
      }
    },
  });
  $('#send-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendForm();
  });
  // Sends what the form holds (typed, loaded from a saved message, or
  // put back from the history) and adds it to the history.
  const sendForm = async () => {
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
      const note = proxyNote(service, $('#send-service').selectedOptions[0].dataset.acceptProxy === 'true');
      $('#send-cli').textContent = note + (hexMode
        ? `printf '${(r.request_hex.match(/../g) || []).map((b) => `\\x${b}`).join('')}' | switchboard ${cmd} ${r.target}`
        : `switchboard ${cmd} ${r.target} ${shq(input)}`);
      const addr = pyAddr(r.target);
      const family = addr.v6 ? 'socket.AF_INET6' : 'socket.AF_INET';
      $('#send-python').textContent = note + (kind === 'echo'
        ? `import socket\n\nwith socket.create_connection(${addr.tuple}) as s:\n    s.sendall(${pyBytes(r.request_hex)})\n    print(s.recv(${Math.max(1024, r.bytes_sent)}))`
        : `import socket\n\ns = socket.socket(${family}, socket.SOCK_DGRAM)\ns.settimeout(5)\ns.sendto(${pyBytes(r.request_hex)}, ${addr.tuple})\nprint(s.recvfrom(65535)[0])`);
      $('#send-result').hidden = false;
      history.add({ target: service, mode: hexMode ? 'hex' : 'text', payload: input, reply: r.reply, rtt_us: r.rtt_us });
    } catch (e) {
      // No stale reply beside a new error.
      $('#send-result').hidden = true;
      toast(e.message, 'error');
    } finally {
      button.disabled = false;
    }
  };

  /** Puts a message (saved or from the history) into the form. */
  const load = (m) => {
    const option = $(`#send-service option[value="${CSS.escape(m.target)}"]`);
    if (!option) throw new Error(`there is no instance "${m.target}" here to send to`);
    if (option.disabled) throw new Error(`${m.target} is not running; start it first`);
    service.value = m.target;
    fitKind();
    $('#send-mode').value = m.mode === 'hex' ? 'hex' : 'text';
    text.value = m.payload;
  };
  const loadAndSend = (m) => {
    try {
      load(m);
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    if (!$('#send-button').disabled) sendForm();
  };
  const history = sendHistory(loadAndSend);
  savedMessages(load, loadAndSend);

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
      const through = labToxic('#sticky-toxic');
      const r = await api('POST', '/api/v1/sticky', through ? { messages, through } : { messages });
      showThrough('#sticky-through', r.through);
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

/** The lab's "through a proxy" choice as the API takes it, or null. */
function labToxic(root) {
  const box = $(root);
  if (!box) return null;
  const type = $('[data-toxic="type"]', box).value;
  if (!type) return null;
  const attributes = {};
  for (const input of $$(`[data-for="${type}"] input`, box)) {
    const n = Number(input.value);
    if (input.value === '' || !Number.isFinite(n) || n < 0) throw new Error(`${input.dataset.attr} is a number of 0 or more`);
    attributes[input.dataset.attr] = n;
  }
  return { type, stream: $('[data-toxic="stream"]', box).value, attributes };
}

/** Shows only the chosen toxic's fields. */
function fitLabToxic(box) {
  const type = $('[data-toxic="type"]', box).value;
  for (const label of $$('[data-for]', box)) label.hidden = label.dataset.for !== type;
  $('[data-toxic="stream"]', box).disabled = !type;
}
for (const box of $$('.lab-toxic')) {
  $('[data-toxic="type"]', box).addEventListener('change', () => fitLabToxic(box));
  fitLabToxic(box);
}

function showThrough(id, through) {
  const p = $(id);
  p.hidden = !through;
  p.textContent = through ? `Through the lab's temporary proxy, with ${through}; the proxy is gone again.` : '';
}

/** The history of this tab: the last N sends, newest first, in
 *  sessionStorage (per tab, per account). `resend` sends one again. */
function sendHistory(resend) {
  const table = $('#history-table');
  const max = parseInt(table.dataset.max, 10) || 25;
  const key = `switchboard.send-history.${$('.who')?.firstChild?.textContent.trim() || ''}`;
  let items = [];
  try {
    items = JSON.parse(sessionStorage.getItem(key) || '[]');
    if (!Array.isArray(items)) items = [];
  } catch {
    items = [];
  }
  items = items.slice(0, max);
  const draw = () => {
    const rows = items.map((m, i) => el('tr', { 'data-history': String(i) },
      el('td', {}, new Date(m.at).toLocaleTimeString()),
      el('td', {}, m.target),
      el('td', { class: 'payload' }, el('code', {}, m.mode === 'hex' ? `hex ${m.payload}` : m.payload)),
      el('td', { class: 'payload' }, el('code', {}, m.reply), el('span', { class: 'count' }, ` ${Math.round(m.rtt_us)} µs`)),
      el('td', {}, el('button', { type: 'button', 'data-resend': String(i), 'aria-label': `Resend ${m.payload.slice(0, 40)} to ${m.target}` }, 'Resend'))));
    $('tbody', table).replaceChildren(...rows);
    $('#history-wrap').hidden = items.length === 0;
    $('#history-empty').hidden = items.length > 0;
    $('#history-clear').hidden = items.length === 0;
  };
  const keep = () => {
    try { sessionStorage.setItem(key, JSON.stringify(items)); } catch { /* full or off: the list still shows */ }
  };
  table.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-resend]');
    if (b) resend(items[parseInt(b.dataset.resend, 10)]);
  });
  $('#history-clear').addEventListener('click', () => { items = []; keep(); draw(); });
  draw();
  return {
    add(m) {
      // The reply as far as a glance needs it: the list stays small.
      items.unshift({ ...m, at: Date.now(), reply: m.reply.slice(0, 200) });
      items = items.slice(0, max);
      keep();
      draw();
    },
  };
}

/** The account's saved messages: list, save, load, send, delete, import. */
function savedMessages(load, loadAndSend) {
  const table = $('#saved-table');
  let messages = [];
  const draw = () => {
    const rows = messages.map((m) => {
      const there = $(`#send-service option[value="${CSS.escape(m.target)}"]`);
      return el('tr', { 'data-saved': m.name },
        el('th', { scope: 'row' }, m.name),
        el('td', {}, m.target, there ? '' : el('span', { class: 'note' }, ' (no such instance here)')),
        el('td', { class: 'payload' }, el('code', {}, m.mode === 'hex' ? `hex ${m.payload}` : m.payload)),
        el('td', {},
          el('span', { class: 'buttons' },
            el('button', { type: 'button', 'data-act': 'send', 'aria-label': `Send ${m.name}` }, 'Send'),
            el('button', { type: 'button', 'data-act': 'load', 'aria-label': `Load ${m.name} into the form` }, 'Load'),
            el('button', { type: 'button', class: 'danger', 'data-act': 'delete', 'aria-label': `Delete ${m.name}` }, 'Delete'))));
    });
    $('tbody', table).replaceChildren(...rows);
    $('#saved-wrap').hidden = messages.length === 0;
    $('#saved-empty').hidden = messages.length > 0;
  };
  const show = (file) => { messages = file.messages || []; draw(); };
  const problems = (title, list) => {
    const box = $('#saved-problems');
    box.hidden = !title;
    $('#saved-problems-title').textContent = title || '';
    $('ul', box).replaceChildren(...(list || []).map((p) => el('li', {}, p.problem)));
  };
  api('GET', '/api/v1/saved-messages').then(show, (e) => toast(e.message, 'error'));
  $('#saved-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('#saved-name').value.trim();
    try {
      const file = await api('PUT', `/api/v1/saved-messages/${encodeURIComponent(name)}`, {
        target: $('#send-service').value,
        mode: $('#send-mode').value,
        payload: $('#send-text').value,
      });
      show(file);
      problems('');
      toast(`Saved "${name}"`);
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  table.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const m = messages.find((x) => x.name === b.closest('tr').dataset.saved);
    if (!m) return;
    try {
      if (b.dataset.act === 'send') loadAndSend(m);
      if (b.dataset.act === 'load') { load(m); $('#send-text').focus(); }
      if (b.dataset.act === 'delete') {
        show(await api('DELETE', `/api/v1/saved-messages/${encodeURIComponent(m.name)}`));
        toast(`Deleted "${m.name}"`);
      }
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  $('#saved-import-file').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (!file) return;
    problems('');
    // The server takes at most 64 KiB of JSON; say so before sending.
    if (file.size > 64 * 1024) {
      problems(`${file.name} is ${Math.round(file.size / 1024)} KiB; an import is at most 64 KiB.`);
      return;
    }
    let body;
    try {
      body = JSON.parse(await file.text());
    } catch (e) {
      problems(`${file.name} is not JSON: ${e.message}`);
      return;
    }
    if (body && typeof body === 'object' && !Array.isArray(body) && $('#saved-import-replace').checked) body.replace = true;
    try {
      const res = await request('/api/v1/saved-messages/import', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
        body: JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) {
        problems(data.problems ? `Nothing was imported from ${file.name}: ${data.problems.length} entries cannot be used.` : (data.error || `${res.status} ${res.statusText}`), data.problems);
        return;
      }
      show(data);
      toast(`Imported ${data.imported} message${data.imported === 1 ? '' : 's'} from ${file.name}`);
    } catch (e) {
      problems(e.message);
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
      const through = labToxic('#exec-toxic');
      const r = await api('POST', '/api/v1/sticky/exec', through ? { commands, through } : { commands });
      showThrough('#sticky-exec-through', r.through);
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

start(initSend, { ownLive: true });
