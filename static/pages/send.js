// switchboard dashboard: the Send page: test messages, sticky packets, B/S beside C/S.
import { $, $$, api, toast, bytes, el, live, start } from '../app.js';
import { hexdump, pyBytes, shq, pyAddr } from '../bscs.js';

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

start(initSend, { ownLive: true });
