// switchboard dashboard: the Tokens page: API tokens (admins).
import { $, api, toast, el, start } from '../app.js';

function initTokens() {
  const form = $('#token-form');
  if (!form) return;
  const when = (unix) => (unix ? new Date(unix * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : 'never');
  const render = (list) => {
    $('#tokens tbody').replaceChildren(...list.map((t) => {
      const revoke = el('button', { type: 'button', class: 'small', 'data-revoke': t.name }, 'Revoke');
      const row = el('tr', { 'data-token': t.name },
        el('td', { class: 'mono' }, t.name),
        el('td', {}, el('span', { class: 'role' }, t.role)),
        el('td', {}, when(t.created_unix)),
        el('td', {}, when(t.expires_unix) + (t.expired ? ' (expired)' : '')),
        el('td', {}, when(t.last_used_unix)),
        el('td', {}, revoke));
      return row;
    }));
    $('#tokens-empty').hidden = list.length > 0;
  };
  const reload = async () => render(await api('GET', '/api/v1/tokens'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const expires = $('#token-expires').value.trim();
    const body = { name: $('#token-name').value.trim(), role: $('#token-role').value };
    if (expires) body.expires = expires;
    try {
      const made = await api('POST', '/api/v1/tokens', body);
      $('#token-new-name').textContent = made.name;
      $('#token-new-value').textContent = made.token;
      $('#token-new').hidden = false;
      form.reset();
      await reload();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  $('#tokens').addEventListener('click', async (ev) => {
    const name = ev.target.closest('[data-revoke]')?.dataset.revoke;
    if (!name || !confirm(`Revoke the token ${name}? Scripts using it stop working at once.`)) return;
    try {
      await api('DELETE', `/api/v1/tokens/${encodeURIComponent(name)}`);
      toast(`revoked ${name}`);
      await reload();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
}

start(initTokens);
