// The dashboard's three Send paths and the Console's B/S − C/S, measured
// from outside the way the pages measure them (fetch and WebSocket timed
// around each message on a kept-alive connection), against a running
// `switchboard serve`.
//
//   SWITCHBOARD_ADMIN_PASSWORD=... node --experimental-websocket \
//     bench/paths.mjs http://127.0.0.1:8080 [N=200] [CONSOLE_RUNS=20]
//
// Prints one JSON object: per path the median and p95 in µs and the
// median's ratio to C/S; for the Console, the median of B/S − C/S in µs.
// Node 20 needs --experimental-websocket (22 has WebSocket built in).

const base = process.argv[2] || 'http://127.0.0.1:8080';
const n = Number(process.argv[3] || 200);
const consoleRuns = Number(process.argv[4] || 20);
const password = process.env.SWITCHBOARD_ADMIN_PASSWORD;
if (!password) throw new Error('set SWITCHBOARD_ADMIN_PASSWORD');
const WARMUP = 5;
const MESSAGE = 'hello, switchboard';

const quantile = (values, q) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil(q * s.length) - 1))];
};
const summary = (values) => ({ median_us: Math.round(quantile(values, 0.5)), p95_us: Math.round(quantile(values, 0.95)) });

const signIn = await fetch(`${base}/api/v1/session`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: 'admin', password }),
});
if (!signIn.ok) throw new Error(`sign-in: ${signIn.status}`);
const cookie = signIn.headers.get('set-cookie').split(';')[0];
const { csrf_token: csrf } = await signIn.json();
// What a page of this origin sends.
const headers = { cookie, origin: base, 'x-csrf-token': csrf, 'content-type': 'application/json' };

async function send() {
  const t0 = performance.now();
  const r = await fetch(`${base}/api/v1/services/echo/send`, { method: 'POST', headers, body: JSON.stringify({ text: MESSAGE }) });
  const body = await r.json();
  if (!r.ok) throw new Error(`send: ${r.status} ${body.error}`);
  return { bs: (performance.now() - t0) * 1000, cs: body.rtt_us };
}

// (a) one HTTP request per message, and (c) the rtt_us each reports.
for (let i = 0; i < WARMUP; i += 1) await send();
const http = [], cs = [];
for (let i = 0; i < n; i += 1) {
  const r = await send();
  http.push(r.bs);
  cs.push(r.cs);
}

// (b) one open WebSocket.
const ws = await new Promise((resolve, reject) => {
  const sock = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/services/echo/ws`, { headers: { cookie, origin: base } });
  const times = [];
  let t0 = 0;
  const next = () => {
    if (times.length === n + WARMUP) {
      sock.close(1000);
      resolve(times.slice(WARMUP));
      return;
    }
    t0 = performance.now();
    sock.send(MESSAGE);
  };
  sock.addEventListener('open', next);
  sock.addEventListener('message', () => { times.push((performance.now() - t0) * 1000); next(); });
  sock.addEventListener('close', (e) => { if (times.length < n + WARMUP) reject(new Error(`ws closed ${e.code} ${e.reason}`)); });
  sock.addEventListener('error', (e) => reject(new Error(`ws: ${e.message || 'error'}`)));
});

// The Console: `date` through /api/v1/exec, B/S around the whole streamed
// response, C/S the exec client's own cs_us from the final line.
const gaps = [], consoleBs = [], consoleCs = [];
for (let i = 0; i < consoleRuns + 2; i += 1) {
  const t0 = performance.now();
  const r = await fetch(`${base}/api/v1/exec`, { method: 'POST', headers, body: JSON.stringify({ argv: ['date'] }) });
  const text = await r.text();
  const bs = (performance.now() - t0) * 1000;
  const last = JSON.parse(text.trim().split('\n').pop());
  if (last.type !== 'exit') throw new Error(`exec: ${text}`);
  if (i < 2) continue;
  consoleBs.push(bs);
  consoleCs.push(last.cs_us);
  gaps.push(bs - last.cs_us);
}

const base_us = quantile(cs, 0.5);
const ratio = (v) => Number((quantile(v, 0.5) / base_us).toFixed(1));
console.log(JSON.stringify({
  n,
  send_echo: {
    http: { ...summary(http), ratio: ratio(http) },
    websocket: { ...summary(ws), ratio: ratio(ws) },
    cs: { ...summary(cs), ratio: 1 },
  },
  console_date: {
    runs: consoleRuns,
    bs: summary(consoleBs),
    cs: summary(consoleCs),
    bs_minus_cs_median_us: Math.round(quantile(gaps, 0.5)),
  },
}, null, 2));
