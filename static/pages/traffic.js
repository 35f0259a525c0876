// switchboard dashboard: the Traffic page: charts (uPlot) and the event log, live.
import { $, $$, api, toast, clock, el, live, describe, rate, two, stamp, start } from '../app.js';

const COLORS = ['#2f6fde', '#12805c', '#d97706', '#c2352b', '#7c3aed', '#0891b2', '#db2777'];
/** Events kept back while the log is paused; beyond it the oldest go. */
const MAX_HELD = 500;

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

  // Every service's in and out over the range picked, one point a step
  // (1 s, 10 s or 1 min: the server says), plotted as the average bytes
  // per second of the point; the newest point keeps filling from the live
  // stream, so the right edge is now.
  let xs = [];
  const series = {}; // name -> { in: [sums], out: [sums], secs: [seconds] }
  let names = [];
  let step = 1;
  let covered = 0; // the newest second the points hold
  let zoomed = null; // { min, max } while zoomed in
  let plot = null;
  const chartEl = $('#chart');
  const view = $('#traffic-view');
  const logScale = $('#traffic-log');
  const rangeSel = $('#traffic-range');
  const reset = $('#traffic-reset');
  const rangeS = () => Number(rangeSel.value);
  const rangeText = () => rangeSel.selectedOptions[0].textContent.trim();
  const size = () => ({ width: chartEl.clientWidth, height: 320 });
  const now = () => Math.max(covered, xs.length ? xs[xs.length - 1] : 0);
  const window_ = () => (zoomed ? [zoomed.min, zoomed.max] : [now() - rangeS(), now()]);

  const columns = () => {
    const floor = (v) => (v == null ? null : logScale.checked ? Math.max(1, v) : v);
    const avg = (s, key) => s[key].map((v, j) => (v == null || !s.secs[j] ? null : v / s.secs[j]));
    if (!view.value) {
      return names.map((n, i) => {
        const s = series[n];
        const total = s.in.map((v, j) => (v == null ? null : v + s.out[j]));
        return { label: n, color: COLORS[i % COLORS.length], values: avg({ v: total, secs: s.secs }, 'v').map(floor) };
      });
    }
    const s = series[view.value];
    if (!s) return [];
    return [
      { label: `${view.value} in`, color: COLORS[0], values: avg(s, 'in').map(floor) },
      { label: `${view.value} out`, color: COLORS[2], values: avg(s, 'out').map(floor) },
    ];
  };

  /** What the chart shows, for tests and the curious: the x range in
   *  seconds and the seconds a point stands for. */
  const report = (u) => {
    chartEl.dataset.xSpan = String(Math.round(u.scales.x.max - u.scales.x.min));
    chartEl.dataset.step = String(step);
    chartEl.dataset.zoomed = String(Boolean(zoomed));
    chartEl.dataset.covered = String(covered);
  };

  const zoomTo = (u) => {
    const { left, width } = u.select;
    if (width < 3) return;
    zoomed = { min: u.posToVal(left, 'x'), max: u.posToVal(left + width, 'x') };
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    u.setScale('x', zoomed);
    reset.hidden = false;
    sharpen();
  };

  const draw = () => {
    if (plot) { plot.destroy(); plot = null; }
    if (!xs.length) return;
    const cols = columns();
    const ink = getComputedStyle(document.body).color;
    const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } };
    const log = logScale.checked;
    const per = step === 1 ? 'each second' : `averaged over ${step === 60 ? 'each minute' : `${step} s`}`;
    chartEl.setAttribute('aria-label', `Bytes per second (${per}) over the last ${rangeText()}, ${view.value ? `${view.value} in and out` : 'each service in + out'}${log ? ', log scale' : ''}`);
    plot = new uPlot({
      ...size(),
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: { setSelect: [zoomTo], setScale: [(u, key) => { if (key === 'x') report(u); }] },
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
        // The whole range picked, newest at the right edge; or the zoom.
        x: { time: true, range: () => window_() },
        y: log
          ? { distr: 3, log: 2, range: (u, min, max) => [1, 2 ** Math.ceil(Math.log2(Math.max(1024, max)))] }
          : { range: (u, min, max) => [0, Math.max(1024, max * 1.1)] },
      },
    }, [xs, ...cols.map((c) => c.values)], chartEl);
    report(plot);
  };
  const redraw = () => {
    if (!plot) { draw(); return; }
    plot.setData([xs, ...columns().map((c) => c.values)]);
    plot.setScale('x', (([min, max]) => ({ min, max }))(window_()));
    report(plot); // an unchanged scale (zoomed) fires no hook
  };
  view.addEventListener('change', draw);
  logScale.addEventListener('change', draw);
  window.addEventListener('resize', () => plot?.setSize(size()));
  reset.addEventListener('click', () => {
    zoomed = null;
    reset.hidden = true;
    rangeSel.focus();
    // A sharpened zoom holds only its own window: the whole range again.
    load();
  });

  /** Takes a history answer as the chart's data. */
  const apply = (h) => {
    step = h.step_s;
    covered = h.to_unix_s;
    names = h.services.map((s) => s.name);
    // One time axis; a service's columns along it (seconds 0: no point).
    xs = h.at_unix_s;
    for (const s of h.services) series[s.name] = { in: s.bytes_in, out: s.bytes_out, secs: s.seconds };
    draw();
  };
  const fetchHistory = (query) => api('GET', `/api/v1/traffic/history?${query}`).catch((e) => { toast(e.message, 'error'); return null; });

  /** Loads the range picked: the server picks the step. */
  const load = () => fetchHistory(`range=${rangeS()}`).then((h) => {
    if (!h) return;
    zoomed = null;
    reset.hidden = true;
    apply(h);
  });
  /** A zoom that reaches back no further than a finer step keeps: that
   *  step's points from the zoom's start to now (so live seconds still
   *  land), the zoom kept. */
  const sharpen = () => {
    const back = now() - zoomed.min;
    const finer = back <= 15 * 60 ? 1 : back <= 6 * 3600 ? 10 : 60;
    if (finer >= step) return;
    const want = zoomed;
    fetchHistory(`from=${Math.floor(want.min)}`).then((h) => {
      if (h && zoomed === want) apply(h);
    });
  };
  // The range is in the address (`?range=86400`), so a reload or a
  // bookmark keeps it.
  const asked = new URLSearchParams(location.search).get('range');
  if ([...rangeSel.options].some((o) => o.value === asked)) rangeSel.value = asked;
  rangeSel.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('range', rangeSel.value);
    window.history.replaceState(null, '', url);
    load();
  });
  load();

  /** One live second into the newest point (or a new one). */
  const addSecond = (snap) => {
    const t = Math.floor(snap.at_unix_ms / 1000) - 1; // the second the rates describe
    if (t <= covered) return;
    covered = t;
    const x = t - (t % step);
    const fresh = !xs.length || xs[xs.length - 1] < x;
    if (fresh) xs.push(x);
    const last = xs.length - 1;
    for (const n of names) {
      const s = snap.services.find((v) => v.name === n);
      const col = series[n];
      if (fresh) { col.in.push(null); col.out.push(null); col.secs.push(0); }
      if (!s) continue;
      col.in[last] = (col.in[last] || 0) + s.rate_in;
      col.out[last] = (col.out[last] || 0) + s.rate_out;
      col.secs[last] += 1;
    }
    while (xs.length && xs[0] < t - rangeS() - step) {
      xs.shift();
      for (const n of names) { series[n].in.shift(); series[n].out.shift(); series[n].secs.shift(); }
    }
  };

  live({
    events: addEvents,
    snapshot: (snap) => {
      if (!names.length) return;
      addSecond(snap);
      redraw();
    },
  });
}

start(initTraffic, { ownLive: true });
