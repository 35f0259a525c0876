// switchboard dashboard: the Overview page: summary strip and service cards, live.
import { $, $$, api, toast, bytes, duration, live, sparkline, SPARK_POINTS, start } from '../app.js';

function initOverview() {
  const history = {}; // service -> recent bytes/s (in + out)
  let lastSecond = 0;
  const cards = new Map($$('.card').map((c) => [c.dataset.service, c]));

  const setButtons = (card) => {
    const running = card.dataset.state === 'running';
    const start = $('[data-action="start"]', card);
    const stop = $('[data-action="stop"]', card);
    if (start) start.disabled = running;
    if (stop) stop.disabled = !running;
  };

  const update = (s) => {
    const card = cards.get(s.name);
    if (!card) return;
    const word = s.phase;
    card.dataset.state = word;
    const field = (name) => $(`[data-field="${name}"]`, card);
    field('state').textContent = word;
    const reason = field('reason');
    reason.textContent = s.reason || '';
    reason.hidden = !s.reason;
    field('addr').textContent = s.local_addr || s.listen;
    field('active').textContent = s.active;
    field('bytes_in').textContent = bytes(s.bytes_in);
    field('bytes_out').textContent = bytes(s.bytes_out);
    field('refused').textContent = s.refused;
    field('errors').textContent = s.errors;
    field('auth_failures').textContent = s.auth_failures;
    field('state_label').textContent = word === 'running' ? 'up for' : 'since';
    field('state_for').textContent = duration(s.state_for_ms);
    field('rate').textContent = `${bytes(s.rate_in + s.rate_out)}/s`;
    // A proxy's upstream, from the view's typed field (never event text).
    const upstream = field('upstream');
    const u = s.upstream;
    upstream.hidden = !u;
    if (u) {
      upstream.textContent = u.up ? `upstream ${u.upstream} up` : `upstream ${u.upstream} down: ${u.reason}`;
      upstream.dataset.down = String(!u.up);
      if (u.probed_unix_ms) upstream.title = `last probed ${duration(Date.now() - u.probed_unix_ms)} ago`;
    }
    setButtons(card);
  };

  const draw = () => {
    for (const [name, card] of cards) sparkline($('[data-field="spark"]', card), history[name] || []);
  };

  api('GET', '/api/v1/traffic').then((all) => {
    for (const s of all) {
      history[s.name] = s.samples.slice(-SPARK_POINTS).map((x) => x.bytes_in + x.bytes_out);
    }
    draw();
  }).catch((e) => toast(e.message, 'error'));

  for (const card of cards.values()) {
    setButtons(card);
    for (const button of $$('[data-action]', card)) {
      button.addEventListener('click', async () => {
        const action = button.dataset.action;
        const buttons = $$('[data-action]', card);
        buttons.forEach((b) => { b.disabled = true; });
        try {
          update(await api('POST', `/api/v1/services/${card.dataset.service}/${action}`));
          toast(`${card.dataset.service}: ${action} done`);
        } catch (e) {
          toast(`${card.dataset.service}: ${e.message}`, 'error');
        } finally {
          buttons.forEach((b) => { b.disabled = false; });
          setButtons(card);
        }
      });
    }
  }

  // The strip: states and open connections from each snapshot; the last
  // hour's failures from the page's first count plus what arrives since.
  const sum = (name, value, bad) => {
    const n = $(`[data-sum="${name}"]`);
    if (!n) return;
    n.textContent = value;
    if (bad !== undefined) n.parentElement.dataset.bad = String(bad);
  };
  let authHour = Number($('[data-sum="auth"]')?.textContent || 0);
  let refusedHour = Number($('[data-sum="refused"]')?.textContent || 0);
  live({
    events: (batch) => {
      authHour += batch.filter((e) => e.type === 'auth_failed').length;
      refusedHour += batch.filter((e) => e.type === 'refused').length;
      sum('auth', authHour, authHour > 0);
      sum('refused', refusedHour, refusedHour > 0);
    },
    snapshot: (snap) => {
      const second = Math.floor(snap.at_unix_ms / 1000);
      const failed = snap.services.filter((s) => s.phase === 'failed').length;
      sum('running', snap.services.filter((s) => s.phase === 'running').length);
      sum('failed', failed, failed > 0);
      sum('open', snap.services.reduce((n, s) => n + s.active, 0));
      for (const s of snap.services) {
        update(s);
        if (second !== lastSecond) {
          const h = (history[s.name] = history[s.name] || []);
          h.push(s.rate_in + s.rate_out);
          if (h.length > SPARK_POINTS) h.shift();
        }
      }
      if (second !== lastSecond) draw();
      lastSecond = second;
    },
  });
  window.addEventListener('resize', draw);
}

start(initOverview, { ownLive: true });
