// switchboard dashboard: the Console page: remote commands through the exec relay.
import { $, csrfToken, el, start, request } from '../app.js';
import { micros, shq, pyMessagePreamble, serviceReach } from '../bscs.js';

/** Splits a command line into words: blanks separate, quotes group. */
function splitWords(line) {
  const words = [];
  let word = null, quote = null;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = null; else word += c;
    } else if (c === '"' || c === "'") {
      quote = c; word = word ?? '';
    } else if (/\s/.test(c)) {
      if (word !== null) { words.push(word); word = null; }
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

function initConsole() {
  const form = $('#exec-form');
  if (!form) return; // not an admin
  const input = $('#exec-input');
  const output = $('#exec-output');
  const status = $('#exec-status');
  const runButton = $('#exec-run');
  const stopButton = $('#exec-stop');
  const shellBox = $('#exec-shell');
  const historyList = $('#exec-history');
  let history = [];
  try { history = JSON.parse(localStorage.getItem('switchboard.exec.history') || '[]'); } catch (_) { /* none */ }
  let recall = history.length;
  let running = null;

  const showHistory = () => {
    historyList.replaceChildren(...history.slice().reverse().map((h) => {
      const recallButton = el('button', { type: 'button', title: 'put this command back on the line' }, el('code', {}, h));
      recallButton.addEventListener('click', () => { input.value = h; input.focus(); });
      return el('li', {}, recallButton);
    }));
  };
  showHistory();
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowUp' && recall > 0) { recall -= 1; input.value = history[recall]; e.preventDefault(); }
    if (e.key === 'ArrowDown' && recall < history.length) { recall += 1; input.value = history[recall] || ''; e.preventDefault(); }
  });
  stopButton.addEventListener('click', () => running?.abort());
  $('#exec-clear').addEventListener('click', () => output.replaceChildren());
  // A program chip puts its name on the line.
  $('#exec-allowed')?.addEventListener('click', (ev) => {
    const program = ev.target.closest('[data-program]')?.dataset.program;
    if (program) { input.value = program; input.focus(); }
  });
  // Without a shell, `|`, `>` and `;` are just characters in an argument.
  const hint = $('#exec-hint');
  const checkHint = () => {
    const plain = !shellBox?.checked && /[|><;&`$]/.test(input.value);
    hint.hidden = !plain;
    hint.textContent = plain
      ? 'No shell here: | > ; & $ are passed to the program as plain arguments, not interpreted.'
      : '';
  };
  input.addEventListener('input', checkHint);
  shellBox?.addEventListener('change', checkHint);
  // Scrollback, bounded: the oldest output goes first.
  const MAX_NODES = 4000;
  const trim = () => { while (output.childNodes.length > MAX_NODES) output.firstChild.remove(); };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const line = input.value.trim();
    if (!line || running) return;
    const shell = shellBox?.checked;
    const body = shell ? { line } : { argv: splitWords(line) };
    history = history.filter((h) => h !== line).concat(line).slice(-50);
    localStorage.setItem('switchboard.exec.history', JSON.stringify(history));
    recall = history.length;
    showHistory();
    output.append(el('span', { class: 'cmd-echo' }, `${output.childNodes.length ? '\n' : ''}$ ${line}\n`));
    trim();
    output.scrollTop = output.scrollHeight;
    status.textContent = 'running…';
    status.dataset.state = 'running';
    runButton.disabled = true;
    stopButton.disabled = false;
    const { addr, note } = await serviceReach('exec');
    $('#exec-cli').textContent = note + (shell
      ? `switchboard exec ${addr} --shell ${shq(line)}`
      : `switchboard exec ${addr} -- ${body.argv.map(shq).join(' ')}`);
    const wireRequest = shell ? `{"op": "shell", "line": ${JSON.stringify(line)}}` : `{"op": "run", "argv": ${JSON.stringify(body.argv)}}`;
    $('#exec-python').textContent = `${note}${pyMessagePreamble(addr)}\nsend(${wireRequest})\nwhile True:\n    h, body = receive()\n    if h["type"] in ("stdout", "stderr"):\n        print(body.decode(errors="replace"), end="")\n    else:\n        print(h)  # {"type": "exit", "code": 0}\n        break`;
    running = new AbortController();
    const t0 = performance.now();
    try {
      const res = await request('/api/v1/exec', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
        body: JSON.stringify(body),
        signal: running.signal,
      });
      if (!res.ok) {
        const err = await res.json().catch(() => ({}));
        throw new Error(err.error || `${res.status} ${res.statusText}`);
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let pending = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const msg = JSON.parse(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          if (msg.type === 'stdout' || msg.type === 'stderr') {
            output.append(el('span', { class: msg.type }, msg.data));
            trim();
            output.scrollTop = output.scrollHeight;
          } else {
            const bs = micros((performance.now() - t0) * 1000);
            const cs = msg.cs_us !== undefined ? `; C/S ${micros(msg.cs_us)}` : '';
            if (msg.type === 'exit' && msg.code !== undefined) {
              status.textContent = `exit ${msg.code} — B/S ${bs}${cs}`;
              status.dataset.state = msg.code === 0 ? 'ok' : 'failed';
            } else if (msg.type === 'exit') {
              status.textContent = `killed by signal ${msg.signal} — B/S ${bs}${cs}`;
              status.dataset.state = 'failed';
            } else {
              status.textContent = `error: ${msg.error}`;
              status.dataset.state = 'failed';
            }
          }
        }
      }
    } catch (e) {
      status.textContent = e.name === 'AbortError' ? 'stopped (the command was killed)' : `error: ${e.message}`;
      status.dataset.state = 'failed';
    } finally {
      running = null;
      runButton.disabled = false;
      stopButton.disabled = true;
    }
  });
}

start(initConsole);
