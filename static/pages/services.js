// switchboard dashboard: the Services page: the instances table and the add/edit form.
import { $, $$, api, toast, el, start } from '../app.js';
import { initToxics } from './toxics.js';
import { fields as settingFields, collect } from '../settings_form.js';
import { initRows, showFlash, done } from '../service_rows.js';

function initServices() {
  const form = $('#instance-form');
  const table = $('#instances');
  if (!form) return;
  let kinds = [];
  let editing = null; // the name being edited, or null when adding
  const fields = $('#instance-fields');
  const clearErrors = () => {
    for (const e of $$('.field-error', form)) { e.hidden = true; e.textContent = ''; }
    for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
  };
  const showError = (field, message) => {
    const slot = field && $(`[data-error-for="${field}"]`, form);
    if (!slot) { toast(message, 'error'); return; }
    slot.textContent = message;
    slot.hidden = false;
    const input = $(`[name="${field}"]`, form);
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
  };
  // One field per key of the kind, typed from /api/v1/kinds.
  const renderFields = (values) => {
    const info = kinds.find((k) => k.kind === $('#instance-kind').value);
    fields.replaceChildren(...settingFields(info, values, editing !== null));
  };
  const reset = () => {
    editing = null;
    form.reset();
    $('#instance-name').disabled = false;
    $('#instance-kind').disabled = false;
    $('#instance-form-title').textContent = 'Add an instance';
    $('#instance-save').textContent = 'Add';
    $('#instance-cancel').hidden = true;
    clearErrors();
    renderFields();
  };
  api('GET', '/api/v1/kinds').then((list) => { kinds = list; renderFields(); })
    .catch((e) => toast(e.message, 'error'));
  $('#instance-kind').addEventListener('change', () => renderFields());
  $('#instance-cancel').addEventListener('click', reset);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    const settings = collect($$('[data-setting]', form), editing !== null);
    const name = $('#instance-name').value.trim();
    try {
      if (editing) {
        // Only what changed: a key the form did not show is kept as saved.
        const n = Object.keys(settings).length;
        if (!n) { toast(`nothing changed in ${editing}`); return; }
        await api('PATCH', `/api/v1/services/${encodeURIComponent(editing)}`, { settings });
        done(`saved ${editing}: ${Object.keys(settings).join(', ')} changed`);
      } else {
        await api('POST', '/api/v1/services', { name, kind: $('#instance-kind').value, settings });
        done(`added ${name}`);
      }
    } catch (e) {
      showError(e.field, e.message);
    }
  });
  // Reload config: the server applies only what changed in the files.
  $('#reload-config')?.addEventListener('click', async () => {
    try {
      const res = await api('POST', '/api/v1/reload');
      const r = res.result || {};
      const n = (k) => (r[k] || []).length;
      toast(`reloaded: ${n('restarted')} restarted, ${n('added')} added, ${n('removed')} removed, ${n('kept')} unchanged`
        + (n('failed') ? `; failed: ${r.failed.join('; ')}` : ''), n('failed') ? 'error' : undefined);
      if (n('restarted') + n('added') + n('removed') + n('stopped')) setTimeout(() => location.reload(), 1500);
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  table.addEventListener('click', async (ev) => {
    const remove = ev.target.closest('[data-remove]')?.dataset.remove;
    const edit = ev.target.closest('[data-edit]')?.dataset.edit;
    try {
      if (remove) {
        if (!confirm(`Remove ${remove}? It stops now and is not started again.`)) return;
        await api('DELETE', `/api/v1/services/${encodeURIComponent(remove)}`);
        done(`removed ${remove}`);
      } else if (edit) {
        const current = await api('GET', `/api/v1/services/${encodeURIComponent(edit)}/settings`);
        if (current.source !== 'dashboard') {
          const on = current.settings.enabled !== 'true';
          await api('PUT', `/api/v1/services/${encodeURIComponent(edit)}`, { settings: { enabled: on } });
          done(`${edit} ${on ? 'on' : 'off'}`);
          return;
        }
        editing = edit;
        $('#instance-name').value = edit;
        $('#instance-name').disabled = true;
        $('#instance-kind').value = current.kind;
        $('#instance-kind').disabled = true;
        $('#instance-form-title').textContent = `Edit ${edit}`;
        $('#instance-save').textContent = 'Save';
        $('#instance-cancel').hidden = false;
        clearErrors();
        renderFields(current.settings);
        form.scrollIntoView({ block: 'start' });
      }
    } catch (e) {
      toast(e.message, 'error');
    }
  });
}

start(() => {
  showFlash();
  initRows();
  initServices();
  initToxics();
});
