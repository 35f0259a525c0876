// switchboard dashboard: the Connections page: the open connections, live, with filters and close.
import { $, $$, api, toast, bytes, duration, el, live, start } from '../app.js';
import { reachable } from '../bscs.js';

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

start(initConnections, { ownLive: true });
