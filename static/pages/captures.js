// switchboard dashboard: the Captures page: the held captures (rendered by
// the server), and Replay from a row to the instance it was captured on.
// Not here: inspecting (the Inspect page) or choosing another target.
import { $, api, toast, start } from '../app.js';

function initCaptures() {
  const table = $('#captures');
  if (!table) return;
  const status = $('#captures-status');
  table.addEventListener('click', async (ev) => {
    const button = ev.target.closest('[data-replay]');
    if (!button) return;
    const id = button.dataset.replay;
    button.disabled = true;
    status.textContent = `replaying capture ${id}…`;
    try {
      const out = await api('POST', `/api/v1/connections/${id}/replay`, {});
      const d = out.diff || {};
      status.textContent = `capture ${id} replayed to ${out.target}: ${out.sent.length} segments sent; `
        + (d.equal ? 'the replies were the same as recorded'
          : `the replies differ (${d.replied_bytes} bytes now, ${d.recorded_bytes} recorded)`);
      status.dataset.outcome = d.equal ? 'equal' : 'different';
    } catch (e) {
      status.textContent = '';
      toast(e.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
}

start(initCaptures);
