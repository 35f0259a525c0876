// switchboard dashboard: the Services table's rows, Cockpit-style: what
// runs now and what starts at boot shown apart, start/stop/restart,
// enable/disable, capture on/off, and the instance's last 50 event, log
// and audit lines one click away. Not here: the add/edit form (pages/services.js).
import { $, $$, api, toast, el, describe, clock } from './app.js';

// A message that outlives the reload after a change, so it is seen.
export const FLASH = 'switchboard-services-flash';
export const done = (message) => { sessionStorage.setItem(FLASH, message); location.reload(); };
export function showFlash() {
  const flash = sessionStorage.getItem(FLASH);
  if (flash) { sessionStorage.removeItem(FLASH); toast(flash); }
}

const path = (name) => `/api/v1/services/${encodeURIComponent(name)}`;
const LINES = 50;

async function showLog(name, button) {
  const panel = $('#service-log');
  const list = $('#service-log-lines');
  const events = await api('GET', `/api/v1/events?service=${encodeURIComponent(name)}&limit=${LINES}`);
  const lines = events.map((e) => ({ at: e.at_unix_ms, what: `${e.type}: ${describe(e)}` }));
  if (document.body.dataset.role === 'admin') {
    // Its audit lines: they carry `"service":"NAME"` exactly.
    const q = encodeURIComponent(`"service":"${name}"`);
    const page = await api('GET', `/api/v1/audit?limit=${LINES}&q=${q}`);
    for (const l of page.lines || []) {
      const when = Date.parse(l.time || l.at || '') || 0;
      lines.push({ at: when, what: `audit: ${l.user || ''} ${l.event || ''} ${l.action || ''}${l.ok === false ? ` failed: ${l.error}` : ''}`.replace(/\s+/g, ' ') });
    }
  }
  if (['operator', 'admin'].includes(document.body.dataset.role)) {
    // Its own log lines (the server's log, filtered to this instance).
    const logged = await api('GET', `${path(name)}/log?limit=${LINES}`);
    for (const l of logged) lines.push({ at: l.at_unix_ms, what: `log ${l.level.toLowerCase()}: ${l.text}`, log: true });
  }
  lines.sort((a, b) => a.at - b.at);
  lines.splice(0, Math.max(0, lines.length - LINES)); // the newest 50 of them all
  list.replaceChildren(...(lines.length ? lines : [{ at: 0, what: 'nothing yet' }]).map((l) =>
    el('li', l.log ? { 'data-line': '', 'data-log-line': '' } : { 'data-line': '' }, l.at ? `${clock(l.at)} ` : '', l.what)));
  $('#service-log-title').textContent = `Log of ${name}`;
  panel.hidden = false;
  panel.dataset.instance = name;
  for (const b of $$('[data-log]')) b.setAttribute('aria-expanded', String(b === button));
  $('#service-log-title').focus();
}

async function switchCapture(button) {
  const name = button.dataset.capture;
  const on = button.getAttribute('aria-checked') !== 'true';
  await api('PUT', `${path(name)}/capture`, { capture: on });
  button.setAttribute('aria-checked', String(on));
  button.textContent = on ? 'on' : 'off';
  toast(`capture ${on ? 'on' : 'off'} for ${name}'s new connections`);
}

export function initRows() {
  const table = $('#instances');
  if (!table) return;
  $('#service-log-close')?.addEventListener('click', () => {
    $('#service-log').hidden = true;
    for (const b of $$('[data-log]')) b.setAttribute('aria-expanded', 'false');
  });
  table.addEventListener('click', async (ev) => {
    const target = ev.target.closest('button');
    if (!target) return;
    const { name } = target.dataset;
    try {
      if (target.dataset.log) {
        await showLog(target.dataset.log, target);
      } else if (target.dataset.capture) {
        await switchCapture(target);
      } else if (target.dataset.action) {
        const action = target.dataset.action;
        await api('POST', `${path(name)}/${action}`);
        done(`${name}: ${action === 'stop' ? 'stopped' : `${action}ed`}`);
      } else if (target.dataset.enable) {
        const on = target.dataset.enable === 'true';
        await api('PATCH', path(name), { settings: { enabled: on } });
        done(`${name} ${on ? 'enabled: running now and at boot' : 'disabled: stopped, not started at boot'}`);
      }
    } catch (e) {
      toast(e.message, 'error');
    }
  });
}
