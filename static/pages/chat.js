// switchboard dashboard: the Chat page: long-polls each chat instance's threads and sends
// the operator's replies. Peer text is only ever inserted with textContent.
import { start, request, loginHref } from '../app.js';

function initChat() {
  const canReply = document.body.dataset.role !== 'viewer';
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

  function render(section, service, threads) {
    const box = section.querySelector('.chat-threads');
    // Keep what the operator is typing across redraws.
    const typing = {};
    box.querySelectorAll('input[data-peer]').forEach((i) => { typing[i.dataset.peer] = i.value; });
    const focused = document.activeElement?.dataset?.peer;
    box.replaceChildren();
    if (threads.length === 0) {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = 'No conversations yet.';
      box.append(p);
      return;
    }
    for (const t of threads.slice().reverse()) {
      const div = document.createElement('div');
      div.className = 'chat-thread';
      div.dataset.peer = t.peer;
      div.dataset.open = String(t.open);
      div.dataset.waiting = String(t.waiting);
      const h = document.createElement('h3');
      h.textContent = `${t.peer} · ${t.open ? (t.waiting ? 'waiting for you' : 'open') : 'ended'}`;
      div.append(h);
      const ol = document.createElement('ol');
      ol.className = 'chat-lines';
      for (const l of t.lines) {
        const li = document.createElement('li');
        li.className = `from-${l.from}`;
        li.textContent = `${l.from === 'peer' ? t.peer : l.from === 'operator' ? 'you' : '·'}: ${l.text}`;
        ol.append(li);
      }
      div.append(ol);
      if (t.open && canReply) {
        const form = document.createElement('form');
        form.className = 'chat-reply';
        const input = document.createElement('input');
        input.dataset.peer = t.peer;
        input.setAttribute('aria-label', `reply to ${t.peer}`);
        input.autocomplete = 'off';
        input.value = typing[t.peer] || '';
        const button = document.createElement('button');
        button.type = 'submit';
        button.className = 'primary';
        button.textContent = 'Reply';
        button.disabled = !t.waiting;
        form.append(input, button);
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          if (!input.value) return;
          const res = await request(`/api/v1/services/${encodeURIComponent(service)}/chat/${encodeURIComponent(t.peer)}`, {
            method: 'POST',
            credentials: 'same-origin',
            headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf() },
            body: JSON.stringify({ text: input.value }),
          });
          const out = await res.json().catch(() => ({}));
          if (res.ok) {
            input.value = '';
            typing[t.peer] = '';
          } else {
            h.textContent = `${t.peer} · ${out.error || res.statusText}`;
          }
        });
        div.append(form);
        if (focused === t.peer) setTimeout(() => input.focus(), 0);
      }
      box.append(div);
    }
  }

  async function follow(section) {
    const service = section.dataset.chatService;
    let after = null;
    for (;;) {
      try {
        const q = after === null ? '' : `?after=${after}`;
        const res = await request(`/api/v1/services/${encodeURIComponent(service)}/chat${q}`, { credentials: 'same-origin' });
        if (res.status === 401) { location.href = loginHref(); return; }
        const data = await res.json();
        if (!res.ok) throw new Error(data.error || res.statusText);
        after = data.version;
        render(section, service, data.threads);
      } catch (e) {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  document.querySelectorAll('[data-chat-service]').forEach(follow);
}

start(initChat);
