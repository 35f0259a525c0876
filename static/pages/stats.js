// switchboard dashboard: the Stats page: the server-rendered table kept
// fresh from /api/v1/stats every 2 s, and sorted by any column (click
// again to reverse). Not here: the figures or the CSV (the server's).
import { $, $$, api, bytes, start } from '../app.js';

const BYTES = new Set(['bytes_in', 'bytes_out', 'bytes_in_rate', 'bytes_out_rate']);
const NUMERIC = new Set(['current', 'max', 'limit', 'rate', 'rate_max', 'accepted',
  'errors', 'refused', 'auth_failures', ...BYTES]);

function initStats() {
  const table = $('#stats');
  if (!table) return;
  let rows = [];
  let sort = { key: 'name', down: false };
  const shown = (key, v) => (BYTES.has(key) ? (key.endsWith('_rate') ? `${bytes(v)}/s` : bytes(v)) : String(v));
  const render = () => {
    const sorted = [...rows].sort((a, b) => {
      const [x, y] = [a[sort.key], b[sort.key]];
      const c = NUMERIC.has(sort.key) ? x - y : String(x).localeCompare(String(y));
      return sort.down ? -c : c;
    });
    const body = $('tbody', table);
    for (const r of sorted) {
      const tr = $(`tr[data-instance="${CSS.escape(r.name)}"]`, body);
      if (!tr) continue;
      for (const td of $$('[data-field]', tr)) {
        const key = td.dataset.field;
        td.textContent = key === 'state' ? `${r.state}${r.enabled ? '' : ' (disabled)'}` : shown(key, r[key]);
        if (NUMERIC.has(key)) td.dataset.value = r[key];
      }
      body.append(tr);
    }
    for (const th of $$('thead th', table)) th.removeAttribute('aria-sort');
    const active = $(`[data-sort="${sort.key}"]`, table)?.closest('th');
    if (active) active.setAttribute('aria-sort', sort.down ? 'descending' : 'ascending');
  };
  const refresh = async () => {
    try { rows = await api('GET', '/api/v1/stats'); render(); } catch { /* the live indicator says */ }
  };
  table.addEventListener('click', (ev) => {
    const key = ev.target.closest('[data-sort]')?.dataset.sort;
    if (!key) return;
    sort = { key, down: sort.key === key ? !sort.down : NUMERIC.has(key) };
    render();
  });
  refresh();
  setInterval(refresh, 2000);
}

start(initStats);
