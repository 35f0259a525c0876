// switchboard dashboard: the sign-in form.
import { $, api, safeNext } from '../app.js';

function initLogin() {
  const form = $('#sign-in');
  const error = $('#sign-in-error');
  // Sent here by a live page whose session is gone: say why.
  if (new URLSearchParams(location.search).has('ended')) {
    const note = $('#sign-in-ended');
    if (note) note.hidden = false;
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const button = $('button[type="submit"]', form);
    button.disabled = true;
    try {
      await api('POST', '/api/v1/session', { username: $('#username').value, password: $('#password').value });
      // Back to the page that sent here, if it is one of ours.
      location.href = safeNext(new URLSearchParams(location.search).get('next')) || '/';
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      $('#password').select();
    } finally {
      button.disabled = false;
    }
  });
}

initLogin();
// For tests and tools: the page's handlers are attached.
document.body.dataset.ready = 'true';
