// The dashboard: a hash router over four views, polling /dashboard/api with the key kept in this
// tab's session storage (none is needed in open mode, where the server takes any caller).
import { AuthError, KEY, api } from './api.js';
import { h, mount } from './dom.js';
import { batchPage } from './batch-page.js';
import { batchesPage, filesPage, upstreamsPage } from './views.js';

const main = document.getElementById('main');

let session = null;
let stop = () => {};

function showKeyForm(message = '') {
  const form = document.getElementById('key-form').content.firstElementChild.cloneNode(true);
  form.querySelector('[data-testid=key-error]').textContent = message;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, new FormData(form).get('key').trim());
    session = null;
    void route();
  });
  mount(main, form);
}

async function loadSession() {
  session = await api('/session');
  const who = session.sees_all
    ? `${session.project} · sees every project`
    : `project ${session.project}`;
  const forget = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        sessionStorage.removeItem(KEY);
        session = null;
        void route();
      },
    },
    'Forget key',
  );
  mount(document.getElementById('session'), who, sessionStorage.getItem(KEY) ? forget : null);
}

const VIEWS = [
  [/^#\/batches\/([\w-]+)$/, batchPage, 'batches'],
  [/^#\/upstreams$/, upstreamsPage, 'upstreams'],
  [/^#\/files$/, filesPage, 'files'],
  [/^(#\/batches)?$/, batchesPage, 'batches'],
];

/** Renders the view of the current hash and polls it until the hash changes. */
async function route() {
  stop();
  const hash = location.hash;
  const [pattern, view, nav] = VIEWS.find(([re]) => re.test(hash)) ?? VIEWS.at(-1);
  for (const a of document.querySelectorAll('[data-nav]'))
    a.classList.toggle('active', a.dataset.nav === nav);
  let stopped = false;
  let timer = null;
  stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  const ctx = { session: () => session, params: hash.match(pattern)?.slice(1) ?? [], main };
  const tick = async () => {
    try {
      if (!session) await loadSession();
      const delayMs = await view(ctx);
      if (!stopped && delayMs) timer = setTimeout(tick, delayMs);
    } catch (err) {
      if (stopped) return;
      if (err instanceof AuthError) {
        const hadKey = sessionStorage.getItem(KEY) !== null;
        sessionStorage.removeItem(KEY);
        return showKeyForm(hadKey ? 'That key was not accepted.' : '');
      }
      mount(main, h('p', { class: 'error' }, `Error: ${err.message}`));
      timer = setTimeout(tick, 3000);
    }
  };
  await tick();
}

window.addEventListener('hashchange', () => void route());
void route();
