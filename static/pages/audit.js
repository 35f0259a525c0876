// switchboard dashboard: the Audit page: the audit log, newest first.
import { $, api, toast, el, start } from '../app.js';

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

start(initAudit);
