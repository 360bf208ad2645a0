import { api, download } from './api.js';
import { throughputChart } from './chart.js';
import { fmt, h, mount, progressBar, statusBadge } from './dom.js';

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const CANCELLABLE = new Set(['validating', 'in_progress', 'finalizing']);
/** Samples of finished lines per batch while its page is open: the throughput chart's data. */
const samples = new Map();
/** Errors view: open or not per batch, and its data once loaded (errors never change after the end). */
const errorsOpen = new Set();
const errorsLoaded = new Map();

function record(batch) {
  const c = batch.request_counts ?? { completed: 0, failed: 0 };
  const list = samples.get(batch.id) ?? [];
  list.push({ tMs: Date.now(), done: c.completed + c.failed });
  if (list.length > 900) list.shift();
  samples.set(batch.id, list);
  return list;
}

const card = (label, value, testid) =>
  h(
    'div',
    { class: 'card', 'data-testid': testid },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, value),
  );

/** One batch: live progress, throughput, usage and cost, ETA, cancel, downloads, errors by code. */
export async function batchPage({ main, params, session }) {
  const [id] = params;
  const batch = await api(`/batches/${encodeURIComponent(id)}`);
  const c = batch.request_counts ?? { total: 0, completed: 0, failed: 0 };
  const list = record(batch);
  const u = batch.usage ?? {};
  const done = c.completed + c.failed;
  const startedS = batch.in_progress_at;
  const endedS = batch.completed_at ?? batch.cancelled_at ?? batch.expired_at ?? batch.failed_at;
  const average = startedS && endedS && endedS > startedS ? done / (endedS - startedS) : null;

  const cancel = h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-testid': 'cancel',
      disabled: !CANCELLABLE.has(batch.status),
      onclick: async () => {
        if (!confirm(`Cancel ${batch.id}? Finished lines keep their results.`)) return;
        await api(`/batches/${encodeURIComponent(batch.id)}/cancel`, { method: 'POST' });
      },
    },
    'Cancel batch',
  );
  const downloads = [
    batch.output_file_id &&
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'download-output',
          onclick: () => void download(batch.output_file_id, `${batch.id}_output.jsonl`),
        },
        'Download output',
      ),
    batch.error_file_id &&
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'download-errors',
          onclick: () => void download(batch.error_file_id, `${batch.id}_errors.jsonl`),
        },
        'Download errors',
      ),
  ];
  const toggle = h(
    'button',
    {
      type: 'button',
      'data-testid': 'show-errors',
      onclick: () => {
        if (errorsOpen.has(batch.id)) errorsOpen.delete(batch.id);
        else errorsOpen.add(batch.id);
        void batchPage({ main, params, session });
      },
    },
    errorsOpen.has(batch.id)
      ? 'Hide errors'
      : `Errors (${fmt.int(c.failed + (batch.errors?.data?.length ?? 0))})`,
  );

  mount(
    main,
    h('p', {}, h('a', { href: '#/batches' }, '← all batches')),
    h(
      'h1',
      {},
      h('span', { class: 'mono', 'data-testid': 'batch-id' }, batch.id),
      ' ',
      statusBadge(batch.status),
    ),
    h(
      'p',
      { class: 'muted' },
      `project ${batch.project} · ${batch.endpoint} · model ${batch.model ?? 'mixed'} · window ${batch.completion_window} · created ${fmt.time(batch.created_at)}`,
    ),
    progressBar(c, true),
    h(
      'div',
      { class: 'cards' },
      card('finished', `${fmt.int(done)} / ${fmt.int(c.total)}`, 'finished'),
      card('completed', fmt.int(c.completed), 'completed'),
      card('failed', fmt.int(c.failed), 'failed'),
      card('lines/s (last 10 s)', fmt.rate(batch.lines_per_second), 'rate'),
      card(
        TERMINAL.has(batch.status) ? 'average lines/s' : 'ETA',
        TERMINAL.has(batch.status) ? fmt.rate(average) : fmt.duration(batch.eta_seconds),
        'eta',
      ),
      card('expires', fmt.time(batch.expires_at), 'expires'),
    ),
    h('div', { class: 'actions' }, cancel, downloads, toggle),
    h('h2', {}, 'Throughput'),
    throughputChart(
      list,
      TERMINAL.has(batch.status) && list.length < 3
        ? `The batch had ended when this page opened (${fmt.rate(average)} on average).`
        : undefined,
    ),
    h('h2', {}, 'Usage and cost'),
    h(
      'table',
      { 'data-testid': 'usage' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            'input',
            'cached',
            'output',
            'reasoning',
            'total tokens',
            'cost (charged)',
            'cost (standard price)',
          ].map((l) => h('th', { class: 'num' }, l)),
        ),
      ),
      h(
        'tbody',
        {},
        h(
          'tr',
          {},
          ...[
            u.input_tokens,
            u.cached_tokens,
            u.output_tokens,
            u.reasoning_tokens,
            u.total_tokens,
          ].map((n) => h('td', { class: 'num' }, fmt.int(n ?? 0))),
          h('td', { class: 'num' }, fmt.usd(batch.cost?.charged)),
          h('td', { class: 'num' }, fmt.usd(batch.cost?.at_standard_price)),
        ),
      ),
    ),
    errorsOpen.has(batch.id) ? await errorsView(batch) : null,
  );
  return TERMINAL.has(batch.status) ? 0 : 1000;
}

/** Errors grouped by code with a few sample lines each: validation errors, then the error file. */
async function errorsView(batch) {
  const cacheKey = `${batch.id}:${batch.status}`;
  let data = errorsLoaded.get(cacheKey);
  if (!data) {
    data = await api(`/batches/${encodeURIComponent(batch.id)}/errors`);
    if (TERMINAL.has(batch.status)) errorsLoaded.set(cacheKey, data);
  }
  const groups = [...groupValidation(data.validation), ...data.groups];
  const body = groups.map((g) =>
    h(
      'div',
      { class: 'error-group', 'data-testid': 'error-group', 'data-code': g.code },
      h(
        'h3',
        {},
        h('span', { class: 'mono' }, g.code),
        ' · ',
        h('span', { class: 'count' }, `${fmt.int(g.count)} line${g.count === 1 ? '' : 's'}`),
      ),
      h(
        'ul',
        {},
        g.samples.map((s) =>
          h(
            'li',
            {},
            s.line !== undefined && s.line !== null
              ? `line ${s.line}`
              : h('span', { class: 'mono' }, s.custom_id ?? '?'),
            s.status_code ? ` (HTTP ${s.status_code})` : '',
            ': ',
            s.message || '(no message)',
          ),
        ),
      ),
    ),
  );
  const note = !TERMINAL.has(batch.status)
    ? 'The error file is written when the batch ends; failed lines so far are counted above.'
    : groups.length === 0
      ? 'No errors.'
      : data.complete
        ? null
        : 'Only the first 200,000 lines of the error file were read.';
  return h(
    'section',
    { 'data-testid': 'errors' },
    h('h2', {}, 'Errors by code'),
    note && h('p', { class: 'notice' }, note),
    body,
  );
}

function groupValidation(errors) {
  const byCode = new Map();
  for (const e of errors ?? []) {
    const g = byCode.get(e.code) ?? { code: e.code, count: 0, samples: [] };
    g.count++;
    if (g.samples.length < 3) g.samples.push({ line: e.line, message: e.message });
    byCode.set(e.code, g);
  }
  return [...byCode.values()];
}
