// switchboard dashboard: the Services page's Toxics panel for tcp-proxy and udp-proxy rows.
import { $, $$, api, toast, el } from '../app.js';

// The form is generated from /api/v1/toxics/types: one number input per
// attribute, with its unit, bounds and help, so a new type needs no
// change here.
export function initToxics() {
  const panel = $('#toxics-panel');
  if (!panel) return;
  const form = $('#toxic-form');
  const body = $('#toxics tbody');
  const typeSelect = $('#toxic-type');
  const fields = $('#toxic-fields');
  let types = [];
  let proxy = null; // { name, udp }
  let editing = null; // the toxic's name being edited
  let opener = null; // the button that opened the panel, focused on close
  const base = () => `/api/v1/services/${encodeURIComponent(proxy.name)}/toxics`;
  const clearErrors = () => {
    for (const e of $$('.field-error', form)) { e.hidden = true; e.textContent = ''; }
    for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
  };
  const showError = (field, message) => {
    const slot = field && $(`[data-error-for="${CSS.escape(field)}"]`, form);
    if (!slot) { toast(message, 'error'); return; }
    slot.textContent = message;
    slot.hidden = false;
    const input = $(`[name="${CSS.escape(field)}"]`, form);
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
  };
  const fits = (t) => t.applies === 'both' || t.applies === (proxy.udp ? 'udp' : 'tcp');
  const renderFields = (values) => {
    const info = types.find((t) => t.type === typeSelect.value);
    $('#toxic-type-help').textContent = info ? info.help : '';
    fields.replaceChildren(...(info ? info.attributes : []).map((a) => {
      const id = `toxic-attr-${a.name}`;
      const input = el('input', {
        id, name: a.name, type: 'number', min: a.min, max: a.max,
        step: a.type === 'integer' ? 1 : 'any', 'data-attr': a.name,
      });
      input.value = values && values[a.name] !== undefined ? values[a.name] : a.default;
      const help = el('span', { class: 'sub', id: `${id}-help` }, a.help);
      input.setAttribute('aria-describedby', help.id);
      return el('label', {}, `${a.name}${a.unit ? ` (${a.unit})` : ''}`, input, help,
        el('span', { class: 'field-error', 'data-error-for': a.name, hidden: true }));
    }));
  };
  const resetForm = () => {
    editing = null;
    form.reset();
    typeSelect.disabled = false;
    $('#toxic-name').disabled = false;
    $('#toxic-form-title').textContent = 'Add a toxic';
    $('#toxic-save').textContent = 'Add toxic';
    $('#toxic-cancel').hidden = true;
    clearErrors();
    renderFields();
  };
  const attrText = (t) => Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ') || '—';
  let current = [];
  const render = (list) => {
    current = list;
    body.replaceChildren(...list.map((t) => {
      const on = el('input', { type: 'checkbox', checked: t.enabled, 'data-toggle': t.name });
      on.setAttribute('aria-label', `${t.name} on`);
      return el('tr', { 'data-toxic': t.name, 'data-enabled': String(t.enabled) },
        el('td', { class: 'mono' }, t.name),
        el('td', {}, t.type),
        el('td', {}, t.stream),
        el('td', { class: 'mono' }, attrText(t)),
        el('td', {}, t.toxicity),
        el('td', {}, on),
        el('td', { class: 'actions-cell' },
          el('button', { type: 'button', className: 'small', 'data-toxic-edit': t.name, ariaLabel: `Edit ${t.name}` }, 'Edit'),
          ' ',
          el('button', { type: 'button', className: 'small', 'data-toxic-remove': t.name, ariaLabel: `Remove ${t.name}` }, 'Remove')));
    }));
    $('#toxics-empty').hidden = list.length > 0;
  };
  const load = async () => render(await api('GET', base()));
  const open = async (button) => {
    opener = button;
    proxy = { name: button.dataset.toxics, udp: button.dataset.kind === 'udp-proxy' };
    try {
      if (types.length === 0) types = await api('GET', '/api/v1/toxics/types');
      typeSelect.replaceChildren(...types.filter(fits).map((t) => el('option', { value: t.type }, t.type)));
      $('#toxics-title').textContent = `Toxics of ${proxy.name}`;
      panel.dataset.proxy = proxy.name;
      resetForm();
      await load();
      panel.hidden = false;
      $('#toxics-title').focus();
    } catch (e) {
      toast(e.message, 'error');
    }
  };
  const close = () => {
    panel.hidden = true;
    delete panel.dataset.proxy;
    opener?.focus();
  };
  $('#instances').addEventListener('click', (ev) => {
    const button = ev.target.closest('[data-toxics]');
    if (button) open(button);
  });
  typeSelect.addEventListener('change', () => renderFields());
  $('#toxic-cancel').addEventListener('click', resetForm);
  $('#toxics-close').addEventListener('click', close);
  panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    const attributes = {};
    for (const input of $$('[data-attr]', form)) {
      if (input.value.trim() === '') continue;
      const n = Number(input.value);
      if (!Number.isFinite(n)) { showError(input.name, 'a number'); return; }
      attributes[input.dataset.attr] = n;
    }
    const toxicity = Number($('#toxic-toxicity').value || '1');
    const sent = {
      stream: $('#toxic-stream').value,
      toxicity: Number.isFinite(toxicity) ? toxicity : $('#toxic-toxicity').value,
      enabled: $('#toxic-enabled').checked,
      attributes,
    };
    try {
      if (editing) {
        await api('PUT', `${base()}/${encodeURIComponent(editing)}`, sent);
        toast(`saved ${editing}`);
      } else {
        sent.type = typeSelect.value;
        const name = $('#toxic-name').value.trim();
        if (name) sent.name = name;
        const made = await api('POST', base(), sent);
        toast(`added ${made.name} to ${proxy.name}`);
      }
      resetForm();
      await load();
    } catch (e) {
      showError(e.field, e.message);
    }
  });
  body.addEventListener('change', async (ev) => {
    const name = ev.target.dataset.toggle;
    if (!name) return;
    try {
      await api('PUT', `${base()}/${encodeURIComponent(name)}`, { enabled: ev.target.checked });
      toast(`${name} ${ev.target.checked ? 'on' : 'off'}`);
      await load();
      $(`[data-toggle="${CSS.escape(name)}"]`, body)?.focus();
    } catch (e) {
      ev.target.checked = !ev.target.checked;
      toast(e.message, 'error');
    }
  });
  body.addEventListener('click', async (ev) => {
    const remove = ev.target.closest('[data-toxic-remove]')?.dataset.toxicRemove;
    const edit = ev.target.closest('[data-toxic-edit]')?.dataset.toxicEdit;
    try {
      if (remove) {
        if (!confirm(`Remove the toxic ${remove} from ${proxy.name}?`)) return;
        await api('DELETE', `${base()}/${encodeURIComponent(remove)}`);
        toast(`removed ${remove}`);
        if (editing === remove) resetForm();
        await load();
        $('#toxics-title').focus();
      } else if (edit) {
        const t = current.find((x) => x.name === edit);
        if (!t) return;
        editing = edit;
        typeSelect.value = t.type;
        typeSelect.disabled = true;
        $('#toxic-name').value = t.name;
        $('#toxic-name').disabled = true;
        $('#toxic-stream').value = t.stream;
        $('#toxic-toxicity').value = t.toxicity;
        $('#toxic-enabled').checked = t.enabled;
        $('#toxic-form-title').textContent = `Edit ${edit}`;
        $('#toxic-save').textContent = 'Save toxic';
        $('#toxic-cancel').hidden = false;
        clearErrors();
        renderFields(t.attributes);
        $('#toxic-stream').focus();
      }
    } catch (e) {
      toast(e.message, 'error');
    }
  });
}
