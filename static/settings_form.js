// switchboard dashboard: one form field per key of a kind, built from the
// description /api/v1/kinds serves (type, default, bounds, choices,
// secret), and what an edit sends back: only the keys the person changed.
// Not here: sending, errors, the Services table (pages/services.js).
import { el, duration } from './app.js';

// A field's value as the API takes it, or undefined for "not set".
function read(input, key) {
  switch (key.type) {
    case 'bool': return input.checked;
    case 'int':
    case 'duration': return input.value.trim() === '' ? undefined : Number(input.value);
    case 'list': {
      const items = input.value.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      return items.length ? items : undefined;
    }
    case 'table': {
      const table = {};
      for (const line of input.value.split('\n').map((s) => s.trim()).filter((s) => s !== '')) {
        const at = line.indexOf('=');
        // Not NAME=value: sent as text for the server to refuse with its reason.
        if (at < 1) return input.value;
        table[line.slice(0, at).trim()] = line.slice(at + 1);
      }
      return Object.keys(table).length ? table : undefined;
    }
    default: return input.value.trim() === '' ? undefined : input.value.trim();
  }
}

// The settings page's text for a key ("a, b"; "NAME=•••, B=•••") as the field shows it.
function shown(key, text) {
  if (text === undefined || text === null) return '';
  if (key.type === 'list' || key.type === 'table') {
    return String(text).split(',').map((s) => s.trim()).filter((s) => s !== '').join('\n');
  }
  return String(text);
}

function hintFor(key) {
  const parts = [key.description];
  if (key.type === 'int') parts.push(`${key.min}–${key.max}; default ${key.default}.`);
  if (key.type === 'duration') {
    parts.push(`Milliseconds, ${key.min}–${key.max} (up to ${duration(key.max)}); default ${key.default} (${duration(key.default)}).`);
  }
  if (key.type === 'path' && key.default) parts.push(`Default ${key.default}.`);
  if (key.type === 'list') parts.push('One per line.');
  if (key.type === 'table') parts.push('One NAME=value per line.');
  if (key.required) parts.push('Required.');
  return parts.filter(Boolean).join(' ');
}

function input(key, text, editing) {
  const name = key.key;
  const common = { name, id: `setting-${name}`, 'data-setting': name, 'aria-describedby': `hint-${name}` };
  if (key.type === 'bool') {
    const box = el('input', { ...common, type: 'checkbox', role: 'switch' });
    box.checked = text === undefined ? key.default : text === 'true';
    return box;
  }
  if (key.choices) {
    const select = el('select', common, ...key.choices.map((c, i) => el('option', { value: c }, i === 0 ? `${c} (default)` : c)));
    select.value = text || key.choices[0];
    return select;
  }
  if (key.type === 'list' || key.type === 'table') {
    const area = el('textarea', { ...common, rows: '3', spellcheck: 'false', autocomplete: 'off' });
    area.value = shown(key, text);
    return area;
  }
  const attrs = { ...common, autocomplete: 'off', spellcheck: 'false' };
  if (key.type === 'int' || key.type === 'duration') {
    Object.assign(attrs, { type: 'number', min: String(key.min), max: String(key.max), step: '1', inputmode: 'numeric', placeholder: String(key.default) });
  } else if (key.secret) {
    Object.assign(attrs, { type: 'password', autocomplete: 'new-password', placeholder: editing ? 'unchanged' : '' });
  } else if (key.type === 'path') {
    attrs.placeholder = key.default;
  } else if (key.type === 'address') {
    attrs.placeholder = key.default || '127.0.0.1:9100';
  }
  const box = el('input', attrs);
  // A saved secret is never sent to the page: its field starts empty.
  box.value = key.secret && key.type !== 'table' ? '' : shown(key, text);
  return box;
}

// The fields for `info` (one kind of /api/v1/kinds), filled with `values`
// (the settings page's text by key) when editing.
export function fields(info, values, editing) {
  return (info ? info.keys : []).map((key) => {
    const text = values ? values[key.key] : undefined;
    const control = input(key, text, editing);
    // The unit is in the name (`_ms`) and said again in the hint.
    const label = key.key;
    const hint = el('span', { class: 'hint', id: `hint-${key.key}` }, hintFor(key));
    const error = el('span', { class: 'field-error', 'data-error-for': key.key, hidden: true });
    const wrap = key.type === 'bool'
      ? el('label', { class: 'check setting' }, control, ` ${label}`, hint, error)
      : el('label', { class: 'setting' }, label, control, hint, error);
    wrap.dataset.type = key.type;
    // What the field held when shown: an edit sends only what differs.
    control.dataset.initial = JSON.stringify(read(control, key) ?? null);
    control._key = key;
    return wrap;
  });
}

// What to send: every set field when adding; when editing, only the
// changed ones (a cleared field as null: back to its default).
export function collect(controls, editing) {
  const settings = {};
  for (const control of controls) {
    const key = control._key;
    const value = read(control, key);
    if (editing) {
      if (JSON.stringify(value ?? null) !== control.dataset.initial) settings[key.key] = value ?? null;
    } else if (value !== undefined && !(key.type === 'bool' && value === key.default && key.key !== 'enabled')) {
      settings[key.key] = value;
    }
  }
  return settings;
}
