import { download, api } from './api.js';
import { fmt, h, mount, progressBar, statusBadge } from './dom.js';

const th = (label, num = false) => h('th', { class: num ? 'num' : null }, label);
const td = (value, num = false) => h('td', { class: num ? 'num' : null }, value);

/** All batches (of the key's project, or every project for an admin), newest first. */
export async function batchesPage({ main, session }) {
  const { data } = await api('/batches');
  const all = session().sees_all;
  const rows = data.map((b) => {
    const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
    return h(
      'tr',
      { 'data-testid': 'batch-row', 'data-batch': b.id },
      td(h('a', { href: `#/batches/${b.id}`, class: 'mono' }, b.id)),
      all ? td(b.project) : null,
      td(statusBadge(b.status)),
      td(progressBar(c)),
      td(`${fmt.int(c.completed)} ✓  ${fmt.int(c.failed)} ✗  / ${fmt.int(c.total)}`, true),
      td(b.model ?? 'mixed'),
      td(b.completion_window),
      td(fmt.age(b.created_at), true),
      td(fmt.int(b.usage?.total_tokens ?? 0), true),
      td(fmt.usd(b.cost?.charged), true),
    );
  });
  mount(
    main,
    h('h1', {}, 'Batches'),
    data.length === 0
      ? h(
          'p',
          { class: 'notice' },
          'No batches yet. Upload a JSONL file and create a batch (see the README).',
        )
      : h(
          'table',
          { 'data-testid': 'batches' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              th('batch'),
              all ? th('project') : null,
              th('status'),
              th('progress'),
              th('lines', true),
              th('model'),
              th('window'),
              th('age', true),
              th('tokens', true),
              th('cost', true),
            ),
          ),
          h('tbody', {}, rows),
        ),
  );
  return 2000;
}

const prevSent = new Map();

/** Each upstream's scheduler: limits configured or learned, available now, in flight, 429s. */
export async function upstreamsPage({ main }) {
  const { upstreams } = await api('/upstreams');
  const nowMs = Date.now();
  const sections = upstreams.map((u) => {
    const before = prevSent.get(u.upstream);
    const rate =
      before && u.sent !== undefined
        ? ((u.sent - before.sent) * 1000) / (nowMs - before.tMs)
        : null;
    if (u.sent !== undefined) prevSent.set(u.upstream, { sent: u.sent, tMs: nowMs });
    const card = (label, value) =>
      h(
        'div',
        { class: 'card' },
        h('div', { class: 'label' }, label),
        h('div', { class: 'value' }, value),
      );
    const keys = u.keys ?? [];
    return h(
      'section',
      { 'data-testid': 'upstream', 'data-upstream': u.upstream },
      h('h2', {}, u.upstream),
      h(
        'div',
        { class: 'cards' },
        card('concurrency limit', fmt.int(u.concurrencyLimit)),
        card('adaptive (AIMD)', u.adaptive === undefined ? '–' : u.adaptive ? 'on' : 'off'),
        card('in flight', fmt.int(u.inFlight)),
        card('claimed, not sent', fmt.int(u.claimed)),
        card('requests/s', rate === null ? '–' : rate.toFixed(1)),
        card('429s', fmt.int(u.rateLimited)),
        card('sent', fmt.int(u.sent)),
      ),
      keys.length === 0
        ? h(
            'p',
            { class: 'notice' },
            'No rate limits known for this upstream (none configured, no x-ratelimit headers seen).',
          )
        : h(
            'table',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                th('model'),
                th('source'),
                th('rpm', true),
                th('tpm', true),
                th('requests available', true),
                th('tokens available', true),
                th('cooldown', true),
              ),
            ),
            h(
              'tbody',
              {},
              keys.map((k) =>
                h(
                  'tr',
                  {},
                  td(k.key),
                  td(k.source),
                  td(fmt.int(k.rpm), true),
                  td(fmt.int(k.tpm), true),
                  td(fmt.int(k.availableRequests), true),
                  td(fmt.int(k.availableTokens), true),
                  td(k.cooldownMs > 0 ? `${(k.cooldownMs / 1000).toFixed(1)} s` : '–', true),
                ),
              ),
            ),
          ),
    );
  });
  mount(main, h('h1', {}, 'Upstreams'), sections);
  return 1000;
}

const DOWNLOADABLE = new Set([
  'batch_output',
  'batch',
  'fine-tune-results',
  'assistants_output',
  'user_data',
  'evals',
]);

/** Uploaded and produced files. */
export async function filesPage({ main, session }) {
  const { data } = await api('/files');
  const all = session().sees_all;
  mount(
    main,
    h('h1', {}, 'Files'),
    h(
      'table',
      { 'data-testid': 'files' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          th('file'),
          all ? th('project') : null,
          th('purpose'),
          th('name'),
          th('size', true),
          th('created'),
          th('expires'),
          th(''),
        ),
      ),
      h(
        'tbody',
        {},
        data.map((f) =>
          h(
            'tr',
            { 'data-testid': 'file-row' },
            td(h('span', { class: 'mono' }, f.id)),
            all ? td(f.project) : null,
            td(f.purpose),
            td(f.filename),
            td(fmt.bytes(f.bytes), true),
            td(fmt.time(f.created_at)),
            td(fmt.time(f.expires_at)),
            td(
              DOWNLOADABLE.has(f.purpose)
                ? h(
                    'button',
                    { type: 'button', onclick: () => void download(f.id, f.filename) },
                    'Download',
                  )
                : null,
            ),
          ),
        ),
      ),
    ),
  );
  return 5000;
}
