import { createReadStream } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';
import { launchBrowser, screenshot } from './browser.ts';

let server: TestServer;
let browser: Browser;
let page: Page;
let origin: string;

async function createBatch(s: TestServer, lines: (object | string)[], client = s.client) {
  const file = await client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  return client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
}

const text = async (p: Page, testid: string): Promise<string> =>
  (await p.locator(`[data-testid=${testid}]`).first().textContent()) ?? '';

/** Polls `read` every 100 ms until `done` holds (bounded by `timeoutMs`), returning every value seen. */
async function watch<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number) {
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    seen.push(v);
    if (done(v)) return seen;
    if (Date.now() > deadline)
      throw new Error(`not reached in ${timeoutMs} ms: ${JSON.stringify(seen.slice(-5))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('dashboard in a real browser (open mode)', () => {
  beforeAll(async () => {
    server = await startTestServer({
      sim: { latencyMs: 120 },
      env: {
        OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2',
        OPENBATCH_UPSTREAM_ADAPTIVE: 'off',
        OPENBATCH_CANCEL_GRACE_MS: '300',
      },
    });
    origin = server.baseURL.replace(/\/v1$/, '');
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('/ redirects to the dashboard, which lists no batches yet', async () => {
    await page.goto(`${origin}/`);
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    await page.getByText('No batches yet').waitFor();
    expect(await text(page, 'session')).toContain('sees every project');
  });

  it('follows a live batch from 0 to completed without reloading', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => chatLine(`live-${i}`, `count ${i}`));
    const batch = await createBatch(server, lines);
    await page.goto(`${origin}/dashboard#/batches/${batch.id}`);
    let shot = false;
    const seen = await watch(
      async () => {
        const finished = (await page.locator('[data-testid=finished] .value').textContent()) ?? '';
        const status = await text(page, 'status');
        const done = Number(finished.split('/')[0]!.replace(/,/g, '').trim());
        if (!shot && done > 10 && done < 50 && status === 'in_progress') {
          shot = true;
          await screenshot(page, 'running-batch');
        }
        return { done, status, finished };
      },
      // Status and count are read one after the other: the page may refresh in between, so the
      // watch ends when both show the end (a page stuck at completed with 58/60 fails here).
      (v) => v.status === 'completed' && v.finished.replace(/\s/g, '') === '60/60',
      45_000,
    );
    const done = seen.map((v) => v.done);
    expect(done[0]).toBeLessThan(30);
    expect(new Set(done).size).toBeGreaterThan(3); // it moved on the page, more than once
    expect(done).toEqual([...done].sort((a, b) => a - b)); // never backwards
    expect(seen.at(-1)!.finished.replace(/\s/g, '')).toBe('60/60');
    expect(shot).toBe(true);
    // The chart drew a line from the samples, and the output can be downloaded.
    expect(await page.locator('[data-testid=throughput-chart] polyline').count()).toBe(1);
    const download = page.waitForEvent('download');
    await page.locator('[data-testid=download-output]').click();
    expect((await download).suggestedFilename()).toBe(`${batch.id}_output.jsonl`);
  });

  it('opens the errors view: errors grouped by code with sample lines', async () => {
    const lines = [
      ...Array.from({ length: 6 }, (_, i) => chatLine(`ok-${i}`, `fine ${i}`)),
      ...Array.from({ length: 3 }, (_, i) =>
        chatLine(`bad-${i}`, `refuse [sim:status=400;id=bad-${i}]`),
      ),
      chatLine('gone', 'missing [sim:status=404;id=gone]'),
    ];
    const batch = await createBatch(server, lines);
    await waitForBatch(server.client, batch.id, 30_000);
    await page.goto(`${origin}/dashboard#/batches/${batch.id}`);
    await page.locator('[data-testid=show-errors]').click();
    await page.locator('[data-testid=error-group]').first().waitFor();
    const groups = await page
      .locator('[data-testid=error-group]')
      .evaluateAll((els) =>
        els.map((el) => ({ code: el.getAttribute('data-code'), text: el.textContent })),
      );
    expect(groups.length).toBe(2);
    expect(groups[0]!.text).toContain('3 lines');
    expect(groups[0]!.text).toMatch(/bad-\d \(HTTP 400\)/);
    expect(groups[1]!.text).toContain('1 line');
    expect(groups[1]!.text).toContain('gone (HTTP 404)');
    await screenshot(page, 'errors');

    // A batch that failed validation shows its errors by code too, with line numbers.
    const invalid = await createBatch(server, [
      chatLine('v', 'ok'),
      '{"custom_id": "x"',
      'not json',
    ]);
    await waitForBatch(server.client, invalid.id, 30_000);
    await page.goto(`${origin}/dashboard#/batches/${invalid.id}`);
    await page.locator('[data-testid=show-errors]').click();
    const group = page.locator('[data-testid=error-group][data-code=invalid_json_line]');
    await group.waitFor();
    expect(await group.textContent()).toMatch(/2 lines.*line 2.*line 3/s);
  });

  it('cancels a running batch from its page', async () => {
    const lines = Array.from({ length: 20 }, (_, i) =>
      chatLine(`slow-${i}`, `slow [sim:latency=4000;id=slow-${i}]`),
    );
    const batch = await createBatch(server, lines);
    await page.goto(`${origin}/dashboard#/batches/${batch.id}`);
    await watch(
      () => text(page, 'status'),
      (s) => s === 'in_progress',
      20_000,
    );
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('[data-testid=cancel]').click();
    const statuses = await watch(
      () => text(page, 'status'),
      (s) => s === 'cancelled',
      30_000,
    );
    expect(statuses).toContain('cancelled');
    expect((await server.client.batches.retrieve(batch.id)).status).toBe('cancelled');
    expect(await page.locator('[data-testid=cancel]').isDisabled()).toBe(true);
    await screenshot(page, 'cancelled-batch');
  });

  it('lists the batches, the upstreams and the files', async () => {
    await page.goto(`${origin}/dashboard#/batches`);
    await page.locator('[data-testid=batch-row]').nth(3).waitFor();
    const statuses = await page
      .locator('[data-testid=batch-row] [data-testid=status]')
      .allTextContents();
    expect(statuses.sort()).toEqual(['cancelled', 'completed', 'completed', 'failed']);
    await screenshot(page, 'batches');

    // Upstreams while a batch keeps both allowed requests in flight.
    const busy = await createBatch(
      server,
      Array.from({ length: 30 }, (_, i) =>
        chatLine(`busy-${i}`, `wait [sim:latency=1000;id=busy-${i}]`),
      ),
    );
    await waitForBatch(server.client, busy.id, 20_000, (s) => s === 'in_progress');
    await page.goto(`${origin}/dashboard#/upstreams`);
    const upstream = page.locator('[data-testid=upstream][data-upstream=default]');
    await upstream.waitFor();
    expect(await upstream.textContent()).toMatch(/concurrency limit\s*2/);
    await watch(
      async () => (await upstream.textContent()) ?? '',
      (t) => /in flight\s*2/.test(t),
      10_000,
    );
    await page.waitForTimeout(1_200); // a second poll, so requests/s has two samples
    await screenshot(page, 'upstreams');

    await page.goto(`${origin}/dashboard#/files`);
    await page.locator('[data-testid=file-row]').first().waitFor();
    expect(await page.locator('[data-testid=file-row]').count()).toBeGreaterThanOrEqual(6);
    await screenshot(page, 'files');
  });
});

describe('dashboard with API keys', () => {
  const KEY_A = 'key-project-alpha-0123456789';
  const KEY_B = 'key-project-beta-0123456789';
  const KEY_ADMIN = 'key-admin-ops-0123456789';
  let keyed: TestServer;
  let keyedBrowser: Browser;
  beforeAll(async () => {
    keyed = await startTestServer({
      sim: { latencyMs: 5 },
      env: { OPENBATCH_API_KEYS: `${KEY_A}:alpha,${KEY_B}:beta,${KEY_ADMIN}:ops:admin` },
    });
    keyedBrowser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await keyedBrowser?.close();
    await keyed?.close();
  });

  it('asks for a key once per tab; a key sees its project, an admin key every project', async () => {
    const a = await createBatch(keyed, [chatLine('a', 'hi')], keyed.clientWithKey(KEY_A));
    const b = await createBatch(keyed, [chatLine('b', 'hi')], keyed.clientWithKey(KEY_B));
    const base = keyed.baseURL.replace(/\/v1$/, '');
    const rowsAs = async (key: string) => {
      const p = await keyedBrowser.newPage();
      await p.goto(`${base}/dashboard`);
      await p.locator('[data-testid=key-form] input').fill(key);
      await p.locator('[data-testid=key-form] button').click();
      await p.locator('[data-testid=batch-row]').first().waitFor();
      // The key stays for the tab: a reload does not ask again.
      await p.reload();
      await p.locator('[data-testid=batch-row]').first().waitFor();
      const ids = await p
        .locator('[data-testid=batch-row]')
        .evaluateAll((els) => els.map((el) => el.getAttribute('data-batch')));
      return { p, ids };
    };
    const alpha = await rowsAs(KEY_A);
    expect(alpha.ids).toEqual([a.id]);
    await screenshot(alpha.p, 'key-project');
    // Another project's batch page answers not found.
    await alpha.p.goto(`${base}/dashboard#/batches/${b.id}`);
    await alpha.p.getByText(`No batch found with id '${b.id}'`).waitFor();

    const admin = await rowsAs(KEY_ADMIN);
    expect(admin.ids.sort()).toEqual([a.id, b.id].sort());
    expect(await text(admin.p, 'session')).toContain('sees every project');

    const wrong = await keyedBrowser.newPage();
    await wrong.goto(`${base}/dashboard`);
    await wrong.locator('[data-testid=key-form] input').fill('not-a-key-0123456789');
    await wrong.locator('[data-testid=key-form] button').click();
    await wrong.getByText('That key was not accepted.').waitFor();
  });
});
