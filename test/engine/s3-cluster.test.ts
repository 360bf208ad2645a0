/**
 * The README's cluster, by its commands: three `openbatch serve` processes on one PostgreSQL
 * database and one S3 bucket (s3rver), each with its own data directory. Any process answers for
 * any batch and file, all three run its lines, and every file lives in S3 only.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { createDatabase } from '../helpers/postgres-server.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';
import { chatLine, waitForBatch } from '../helpers/test-server.ts';

const PROCESSES = 3;
let s3: S3Server;
const sims: Simulator[] = [];
const servers: ServerProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  s3 = await startS3Server();
  const databaseUrl = await createDatabase(inject('postgresUrl'), 's3cluster');
  for (let i = 0; i < PROCESSES; i++) {
    const sim = createSimulator({ latencyMs: 10 });
    sims.push(sim);
    const dataDir = mkdtempSync(join(tmpdir(), `openbatch-s3node${i}-`));
    dirs.push(dataDir);
    servers.push(
      await spawnServer(dataDir, {
        ...s3.env('cluster/'),
        OPENBATCH_DATABASE_URL: databaseUrl,
        OPENBATCH_UPSTREAM_URL: `${(await sim.listen(0)).url}/v1`,
        OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '4',
        OPENBATCH_TICK_MS: '100',
      }),
    );
  }
});
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.exited));
  await Promise.all(sims.map((s) => s.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await s3?.stop();
});

describe('three processes on PostgreSQL + S3', () => {
  it('share one batch: upload on one, create on another, download from the third', async () => {
    const [a, b, c] = servers.map(
      (s) => new OpenAI({ apiKey: 'k', baseURL: s.baseURL, maxRetries: 0, timeout: 20_000 }),
    ) as [OpenAI, OpenAI, OpenAI];
    const lines = 450;
    const input = Array.from({ length: lines }, (_, i) =>
      JSON.stringify(chatLine(`line-${i}`, `question ${i}`)),
    ).join('\n');
    const file = await a.files.create({
      file: await toFile(Buffer.from(input), 'in.jsonl'),
      purpose: 'batch',
    });
    const created = await b.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitForBatch(c, created.id, 90_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: lines, completed: lines, failed: 0 });
    const text = await (await c.files.content(done.output_file_id!)).text();
    const ids = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(new Set(ids).size).toBe(lines);
    expect(ids).toHaveLength(lines);
    // The input, read back from another process than the one it was uploaded to.
    expect(await (await b.files.content(file.id)).text()).toBe(input);
    // Every process ran a share of the lines; nothing of the files is on a local disk.
    for (const sim of sims) expect(sim.calls().length).toBeGreaterThan(lines / 10);
    for (const dir of dirs) expect(existsSync(join(dir, 'blobs'))).toBe(false);
  });
});
