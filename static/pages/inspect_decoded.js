// switchboard dashboard: the Inspect page's "Messages" panel: the capture decoded by the server (GET /api/v1/connections/{id}/capture/decoded) as exec/files messages (length prefix, JSON header, body), the HMAC challenge and answer, files-classic headers, PROXY headers and a TLS ClientHello; and, on the transcript, which segments hold several messages (sticky packets) and which messages were split over several segments.
import { request, loginHref } from '../app.js';

// Decoding is asked for at most this often while bytes arrive.
const REFRESH_MS = 2000;
const WHO = { in: '▶ client → server', out: '◀ server → client' };

const node = (tag, attrs, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};
const spaced = (hex) => hex.replace(/(..)(?!$)/g, '$1 ');
const asText = (hex) => {
  let out = '';
  for (let i = 0; i < hex.length; i += 2) {
    const b = parseInt(hex.substr(i, 2), 16);
    out += b === 0x0a ? '\n' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  }
  return out;
};

/** The panel for capture `id`, marking blocks of the transcript `list`;
 *  `redrawn` is called after marks changed the blocks' heights. */
export function initDecoded(id, list, redrawn) {
  const panel = document.getElementById('decoded');
  const out = document.getElementById('decoded-messages');
  const stateEl = document.getElementById('decoded-status');
  const sharedEl = document.getElementById('decoded-shared');
  // seq → what to say on that segment's block.
  let marks = new Map();
  let timer = null;
  let busy = false;
  let again = false;
  let last = 0;

  function segLink(seq) {
    const b = node('button', { type: 'button', class: 'link small', 'data-seq': String(seq) }, `#${seq}`);
    b.addEventListener('click', () => {
      const li = list.querySelector(`li[data-seq="${seq}"]`);
      if (!li) return;
      li.scrollIntoView({ block: 'nearest' });
      li.classList.add('flash');
      setTimeout(() => li.classList.remove('flash'), 1500);
      li.querySelector('.seg-head')?.focus?.();
    });
    return b;
  }

  function message(m) {
    const head = node('p', { class: 'msg-head' },
      node('span', { class: 'seg-dir' }, WHO[m.dir]), ' ',
      node('strong', { 'data-field': 'label' }, `#${m.n} ${m.label}`), ' · ',
      node('span', { 'data-field': 'len' }, `${m.len} B`), ` · offset ${m.offset} · `,
      m.segments_total > 1 ? `split over ${m.segments_total} segments: ` : 'from segment ');
    m.segments.forEach((seq, i) => { if (i) head.append(' '); head.append(segLink(seq)); });
    if (m.segments_total > m.segments.length) head.append(` … (${m.segments_total - m.segments.length} more)`);
    if (!m.complete) head.append(' ', node('span', { class: 'badge warn', 'data-field': 'incomplete' }, 'incomplete'));
    const li = node('li', {
      class: 'msg', 'data-n': String(m.n), 'data-dir': m.dir, 'data-kind': m.kind,
      'data-segments': m.segments.join(' '),
    }, head);
    const dl = node('dl', { class: 'msg-fields' });
    if (m.prefix) {
      dl.append(node('dt', {}, 'length prefix'),
        node('dd', { 'data-field': 'prefix' }, node('code', {}, spaced(m.prefix.hex)), ` = ${m.prefix.value} (${m.prefix.means})`));
    }
    for (const [k, v] of m.fields || []) dl.append(node('dt', {}, k), node('dd', { 'data-field': k }, v));
    if (dl.childElementCount) li.append(dl);
    if (m.header) {
      li.append(node('p', { class: 'msg-label' }, 'header (JSON)'),
        node('pre', { class: 'msg-header', 'data-field': 'header' }, JSON.stringify(m.header, null, 2)));
    }
    if (m.body && m.body.len > 0) {
      const cut = m.body.hex.length / 2 < m.body.held ? `, the first ${m.body.hex.length / 2} shown` : '';
      const held = m.body.held < m.body.len ? `, ${m.body.held} held` : '';
      li.append(node('p', { class: 'msg-label' }, `body: ${m.body.len} B${held}${cut}`),
        node('div', { class: 'msg-body' },
          node('pre', { 'data-field': 'body-hex' }, spaced(m.body.hex)),
          node('pre', { 'data-field': 'body-text' }, asText(m.body.hex))));
    }
    if (m.note) li.append(node('p', { class: 'hint', 'data-field': 'note' }, m.note));
    return li;
  }

  /** Puts what is known about `li`'s segment on its head line. */
  function markSegment(li) {
    const where = li.querySelector('[data-field="marks"]');
    if (!where) return;
    const m = marks.get(Number(li.dataset.seq));
    where.textContent = '';
    delete li.dataset.sticky;
    if (!m) return;
    if (m.holds && m.holds.length > 1) {
      li.dataset.sticky = String(m.holds.length);
      where.append(' ', node('span', { class: 'badge sticky', 'data-field': 'holds' },
        `sticky: holds ${m.holds.length} messages (${m.holds.map((n) => `#${n}`).join(', ')})`));
    }
    for (const [n, of] of m.parts || []) {
      where.append(' ', node('span', { class: 'badge split', 'data-field': 'part' }, `part of message #${n} (split over ${of} segments)`));
    }
  }

  function draw(d) {
    marks = new Map();
    const at = (seq) => { if (!marks.has(seq)) marks.set(seq, { holds: null, parts: [] }); return marks.get(seq); };
    for (const s of d.shared) at(s.seq).holds = s.messages;
    for (const m of d.messages) if (m.segments_total > 1) for (const seq of m.segments) at(seq).parts.push([m.n, m.segments_total]);
    out.textContent = '';
    for (const m of d.messages) out.append(message(m));
    sharedEl.textContent = '';
    if (d.shared.length) {
      sharedEl.append(`${d.shared.length} segment(s) hold several messages (sticky packets): `);
      d.shared.forEach((s, i) => {
        if (i) sharedEl.append('; ');
        sharedEl.append('segment ', segLink(s.seq), ` (${WHO[s.dir]}) holds ${s.messages.map((n) => `#${n}`).join(', ')}`);
      });
    }
    const notes = [...d.notes];
    if (d.truncated) notes.push('truncated: only the first messages and bytes are decoded');
    stateEl.textContent = `${d.messages.length} message(s), read as ${d.plan}${notes.length ? ` · ${notes.join(' · ')}` : ''}`;
    panel.dataset.messages = String(d.messages.length);
    for (const li of list.children) markSegment(li);
    redrawn();
  }

  async function fetchNow() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    try {
      const res = await request(`/api/v1/connections/${id}/capture/decoded`, { credentials: 'same-origin' });
      if (res.status === 401) { location.href = loginHref(); return; }
      const d = await res.json();
      if (!res.ok) throw new Error(d.error || `${res.status}`);
      draw(d);
    } catch (e) {
      stateEl.textContent = `could not decode: ${e.message}`;
    } finally {
      busy = false;
      if (again) { again = false; changed(); }
    }
  }

  /** New segments arrived (or the capture closed): decode again soon. */
  function changed() {
    if (!panel || timer) return;
    timer = setTimeout(fetchNow, Math.max(0, last + REFRESH_MS - Date.now()));
  }

  return { markSegment, changed };
}
