import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { callsById, check, formatReport, type ResultLine } from './harness/checker.ts';
import { jsonlOf, resultsOf, submitBatch, taggedLine, waitTerminal } from './harness/chaos-env.ts';
import { createRandom } from './harness/prng.ts';
import { startScriptedUpstream, type ScriptedUpstream } from './harness/scripted-upstream.ts';

/**
 * Upstream fault matrix (A8 #5): every fault the simulator can script, in one batch, with a short
 * request timeout and an attempt cap of 3. No line is stuck; non-retryable answers are sent once;
 * attempts never exceed the cap (429s excepted: they give the attempt back); final error lines
 * mirror the upstream's status and body, and transport failures say `upstream_error`.
 */

const MAX_ATTEMPTS = 3;
const REQUEST_TIMEOUT_MS = 1_500;

interface Case {
  id: string;
  directive: string;
  /** Upstream calls expected for this line. */
  calls: number;
  /** 'ok' = in the output file; a number = error line with that upstream status; 'upstream_error'. */
  ends: 'ok' | number | 'upstream_error';
}

const CASES: Case[] = [
  { id: 'reset-always', directive: 'reset', calls: MAX_ATTEMPTS, ends: 'upstream_error' },
  { id: 'reset-once', directive: 'reset;times=1', calls: 2, ends: 'ok' },
  {
    id: 'midbody-always',
    directive: 'reset-mid-body',
    calls: MAX_ATTEMPTS,
    ends: 'upstream_error',
  },
  { id: 'midbody-once', directive: 'reset-mid-body;times=1', calls: 2, ends: 'ok' },
  { id: 'hang-always', directive: 'hang', calls: MAX_ATTEMPTS, ends: 'upstream_error' },
  { id: 'hang-once', directive: 'hang;times=1', calls: 2, ends: 'ok' },
  { id: 'trickle-fast', directive: 'trickle=20', calls: 1, ends: 'ok' },
  // 64-byte chunks 600 ms apart: no gap exceeds the body timeout, the whole call exceeds the deadline.
  { id: 'trickle-slow', directive: 'trickle=600', calls: MAX_ATTEMPTS, ends: 'upstream_error' },
  { id: 'malformed-always', directive: 'malformed', calls: MAX_ATTEMPTS, ends: 'upstream_error' },
  { id: 'malformed-once', directive: 'malformed;times=1', calls: 2, ends: 'ok' },
  { id: 's500-burst', directive: 'status=500x2', calls: 3, ends: 'ok' },
  { id: 's502-once', directive: 'status=502x1', calls: 2, ends: 'ok' },
  { id: 's503-always', directive: 'status=503', calls: MAX_ATTEMPTS, ends: 503 },
  { id: 's504-once', directive: 'status=504x1', calls: 2, ends: 'ok' },
  { id: 's408-once', directive: 'status=408x1', calls: 2, ends: 'ok' },
  { id: 's409-once', directive: 'status=409x1', calls: 2, ends: 'ok' },
  { id: 's400', directive: 'status=400', calls: 1, ends: 400 },
  { id: 's401', directive: 'status=401', calls: 1, ends: 401 },
  { id: 's403', directive: 'status=403', calls: 1, ends: 403 },
  { id: 's404', directive: 'status=404', calls: 1, ends: 404 },
  { id: 's422', directive: 'status=422', calls: 1, ends: 422 },
  // Three 429s and then an answer, with a cap of 3 attempts: 429s give their attempt back.
  { id: 's429x3', directive: 'status=429x3', calls: 4, ends: 'ok' },
];

function describeLine(line: ResultLine | undefined): string {
  return JSON.stringify(line ?? null).slice(0, 300);
}

describe('upstream fault matrix (simulator directives)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: {
        OPENBATCH_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        OPENBATCH_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '16',
      },
      sim: { retryAfterMs: 100 },
    });
  });
  afterAll(async () => t.close());

  it('ends every line with the right outcome after the right number of calls', async () => {
    t.sim.reset();
    const normal = Array.from({ length: 30 }, (_, i) => `ok-${i}`);
    const lines = [
      ...CASES.map((c) => taggedLine(c.id, c.directive)),
      ...normal.map((id) => taggedLine(id)),
    ];
    const { batchId } = await submitBatch(t.client, jsonlOf(lines));
    const batch = await waitTerminal(t.client, batchId, 60_000);
    const { output, errors, counts } = await resultsOf(t.client, batch);
    const calls = t.sim.calls();
    const report = check({
      inputIds: [...CASES.map((c) => c.id), ...normal],
      calls,
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const why = formatReport(report, '[fault-matrix]');
    console.log(why);
    expect(batch.status, why).toBe('completed');
    expect(report.ok, why).toBe(true);
    const byId = callsById(calls);
    const outputIds = new Set(output.map((l) => l.custom_id as string));
    const errorById = new Map(errors.map((l) => [l.custom_id as string, l]));
    const problems: string[] = [];
    for (const c of CASES) {
      const n = byId.get(c.id)?.length ?? 0;
      if (n !== c.calls) problems.push(`${c.id}: ${n} upstream calls, expected ${c.calls}`);
      const line = errorById.get(c.id);
      if (c.ends === 'ok') {
        if (!outputIds.has(c.id))
          problems.push(`${c.id}: not in the output (${describeLine(line)})`);
      } else if (c.ends === 'upstream_error') {
        if (line?.response !== null || line.error?.code !== 'upstream_error')
          problems.push(`${c.id}: expected error.code upstream_error, got ${describeLine(line)}`);
      } else {
        const body = line?.response?.body as { error?: { message?: unknown; type?: unknown } };
        if (
          line?.error !== null ||
          line.response?.status_code !== c.ends ||
          typeof body?.error?.message !== 'string' ||
          typeof body.error.type !== 'string'
        )
          problems.push(
            `${c.id}: expected upstream ${c.ends} with its body, got ${describeLine(line)}`,
          );
      }
    }
    for (const id of normal) if (!outputIds.has(id)) problems.push(`${id}: missing from output`);
    expect(problems, why).toEqual([]);
  }, 90_000);

  it('finishes a seeded random mix of 5xx, 429 and resets within the attempt cap', async () => {
    const rng = createRandom('fault-mix');
    const statuses = [500, 502, 503, 504, 429];
    const ids = Array.from({ length: 200 }, (_, i) => `mix-${i}`);
    // Each line draws a burst of 0–2 failures (never more than the cap allows) of one kind.
    const plan = ids.map((id) => {
      const failures = rng.int(0, MAX_ATTEMPTS - 1);
      const kind = rng.pick([...statuses, 'reset', 'reset-mid-body']);
      const directive =
        failures === 0
          ? ''
          : typeof kind === 'number'
            ? `status=${kind}x${failures}`
            : `${kind};times=${failures}`;
      return { id, failures, directive };
    });
    t.sim.reset();
    const { batchId } = await submitBatch(
      t.client,
      jsonlOf(plan.map((p) => taggedLine(p.id, p.directive))),
    );
    const batch = await waitTerminal(t.client, batchId, 60_000);
    const { output, errors, counts } = await resultsOf(t.client, batch);
    const calls = t.sim.calls();
    const report = check({ inputIds: ids, calls, outputLines: output, errorLines: errors, counts });
    const why = formatReport(report, rng.tag);
    console.log(why);
    expect(report.ok, why).toBe(true);
    expect(batch.request_counts, why).toEqual({ total: 200, completed: 200, failed: 0 });
    const byId = callsById(calls);
    const wrong = plan.filter((p) => (byId.get(p.id)?.length ?? 0) !== p.failures + 1);
    expect(
      wrong.map((p) => `${p.id}:${p.directive}`),
      why,
    ).toEqual([]);
  }, 90_000);
});

describe('429 retry-after forms (scripted upstream): seconds, milliseconds, HTTP date', () => {
  let up: ScriptedUpstream;
  let t: TestServer;
  beforeAll(async () => {
    up = await startScriptedUpstream();
    t = await startTestServer({
      env: {
        OPENBATCH_UPSTREAM_URL: `${up.url}/v1`,
        // One attempt in all: a 429 must give its attempt back or the line would fail.
        OPENBATCH_MAX_ATTEMPTS: '1',
        OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2',
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await up.close();
  });

  const variants = [
    { ra: 'date:2', minGapMs: 1_500, label: 'HTTP date ≥ 2 s ahead' },
    { ra: 's:1', minGapMs: 900, label: 'retry-after: 1 (seconds)' },
    { ra: 'ms:700', minGapMs: 600, label: 'retry-after-ms: 700' },
    { ra: 'bad', minGapMs: 0, label: 'unparsable retry-after (falls back to backoff)' },
  ];

  for (const v of variants) {
    it(`honours ${v.label} and pauses the whole upstream meanwhile`, async () => {
      up.calls.length = 0;
      const first = `ra-${v.ra.replace(':', '-')}`;
      const others = Array.from({ length: 12 }, (_, i) => `${first}-n${i}`);
      const line = (id: string, extra = '') => ({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `[up:id=${id}${extra}]` }],
        },
      });
      const { batchId } = await submitBatch(
        t.client,
        jsonlOf([line(first, `;ra=${v.ra}`), ...others.map((id) => line(id))]),
      );
      const batch = await waitTerminal(t.client, batchId, 30_000);
      const { output, errors, counts } = await resultsOf(t.client, batch);
      const mine = up.calls.filter((c) => c.id === first);
      const limited = mine[0];
      const retried = mine[1];
      const why =
        `[retry-after ${v.ra}] calls=${up.calls.length} first-line calls=${mine.length} ` +
        `gap=${retried && limited ? retried.atMs - limited.atMs : 'n/a'} ms status=${batch.status} ` +
        `counts=${JSON.stringify(counts)} errors=${JSON.stringify(errors).slice(0, 300)}`;
      console.log(why);
      expect(batch.status, why).toBe('completed');
      expect(output.length, why).toBe(13);
      expect(
        mine.map((c) => c.status),
        why,
      ).toEqual([429, 200]);
      if (!limited || !retried) return;
      // Lower bounds only: a slow machine can make gaps longer, never shorter.
      expect(retried.atMs - limited.atMs, why).toBeGreaterThanOrEqual(v.minGapMs);
      // One shared cooldown: nobody calls the upstream while it is paused.
      // (The margin covers calls already on their way when the 429 came back: server and
      // upstream share this process's event loop.)
      const during = up.calls.filter(
        (c) => c.atMs > limited.atMs + 300 && c.atMs < limited.atMs + v.minGapMs - 100,
      );
      expect(
        during.map((c) => c.id),
        why,
      ).toEqual([]);
    }, 40_000);
  }
});
