// switchboard dashboard: the Traffic page: charts (uPlot) and the event log, live.
import { $, $$, api, toast, clock, el, live, describe, rate, two, stamp, start } from '../app.js';

const COLORS = ['#2f6fde', '#12805c', '#d97706', '#c2352b', '#7c3aed', '#0891b2', '#db2777'];
const WINDOW_S = 15 * 60;
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

start(initTraffic, { ownLive: true });
