import { createReadStream, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APIError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/lib/clock.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const HOUR_S = 3600;

/** Every file under `dir` whose bytes contain `marker` (the database and its WAL included). */
function filesHolding(dir: string, marker: string): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile() && readFileSync(path).includes(marker)) hits.push(name);
  }
  return hits;
}

const gone = (p: Promise<unknown>) =>
  p.then(
    () => false,
    (e: unknown) => e instanceof APIError && e.status === 404,
  );

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out: ${what}`);
}

describe('retention: expires_after, output_expires_after, defaults, bytes removed', () => {
  let t: TestServer;
  let offsetMs = 0;
  const clock: Clock = { nowMs: () => Date.now() + offsetMs, sleep: systemClock.sleep };
  beforeAll(async () => {
    t = await startTestServer({
      clock,
      env: { OPENBATCH_BATCH_FILE_EXPIRES_AFTER_SECONDS: String(5 * HOUR_S) },
    });
  });
  afterAll(async () => t.close());

  it('a deleted file leaves no byte of it on disk', async () => {
    const marker = `DELETE-ME-${Date.now()}`;
    const file = await t.client.files.create({
      file: await toFile(Buffer.from(`{"note":"${marker}"}\n`), 'notes.jsonl'),
      purpose: 'user_data',
    });
    expect(file.expires_at).toBeNull(); // only batch files expire by default
    expect(filesHolding(t.dataDir, marker)).toEqual([`blobs/${file.id}`]);
    await t.client.files.delete(file.id);
    expect(filesHolding(t.dataDir, marker)).toEqual([]);
  });

  it('expires uploads and batch outputs when their time comes, bytes and all', async () => {
    const inMarker = `IN-${Date.now()}`;
    const shortLived = await t.client.files.create({
      file: await toFile(Buffer.from(`${JSON.stringify(chatLine(inMarker, 'x'))}\n`), 'a.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: HOUR_S },
    });
    expect(shortLived.expires_at).toBe(shortLived.created_at + HOUR_S);
    const outMarker = `OUT-${Date.now()}`;
    const input = await t.client.files.create({
      file: createReadStream(writeJsonl([chatLine(outMarker, 'y')])),
      purpose: 'batch',
    });
    expect(input.expires_at).toBe(input.created_at + 5 * HOUR_S); // the configured default
    const batch = await t.client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      output_expires_after: { anchor: 'created_at', seconds: 2 * HOUR_S },
    });
    const done = await waitForBatch(t.client, batch.id);
    const output = await t.client.files.retrieve(done.output_file_id!);
    expect(output.expires_at).toBe(output.created_at + 2 * HOUR_S);
    expect(filesHolding(join(t.dataDir, 'blobs'), inMarker)).toEqual([shortLived.id]);

    offsetMs = (HOUR_S + 120) * 1000;
    // The row goes first, then the bytes (in the same sweep).
    await until(
      async () =>
        (await gone(t.client.files.retrieve(shortLived.id))) &&
        filesHolding(t.dataDir, inMarker).length === 0,
      'upload expired and its bytes removed',
    );
    expect(await gone(t.client.files.retrieve(output.id))).toBe(false);

    offsetMs = (2 * HOUR_S + 240) * 1000;
    // The input (5 h) still holds the custom_id; the output's bytes go.
    await until(
      async () =>
        (await gone(t.client.files.retrieve(output.id))) &&
        filesHolding(t.dataDir, outMarker).length === 1,
      'output expired and its bytes removed',
    );
    expect(filesHolding(t.dataDir, outMarker)).toEqual([`blobs/${input.id}`]);

    offsetMs = (5 * HOUR_S + 360) * 1000;
    await until(
      async () =>
        (await gone(t.client.files.retrieve(input.id))) &&
        filesHolding(t.dataDir, outMarker).length === 0,
      'input expired and its bytes removed',
    );
  }, 60_000);

  it('removes at start-up the contents no file names (a crash between row and bytes)', async () => {
    const orphan = join(t.dataDir, 'blobs', 'file-orphanOrphanOrphan12');
    writeFileSync(orphan, 'left behind');
    const dataDir = t.dataDir;
    await t.close();
    t = await startTestServer({ clock, dataDir });
    expect(readdirSync(join(dataDir, 'blobs'))).not.toContain('file-orphanOrphanOrphan12');
  });
});

describe('retention: a default expiry for files of every other purpose', () => {
  it('OPENBATCH_FILE_EXPIRES_AFTER_SECONDS dates user_data uploads; expires_after still wins', async () => {
    const t = await startTestServer({
      env: { OPENBATCH_FILE_EXPIRES_AFTER_SECONDS: String(HOUR_S) },
    });
    try {
      const plain = await t.client.files.create({
        file: await toFile(Buffer.from('{"a":1}\n'), 'notes.jsonl'),
        purpose: 'user_data',
      });
      expect(plain.expires_at).toBe(plain.created_at + HOUR_S);
      const own = await t.client.files.create({
        file: await toFile(Buffer.from('{"a":2}\n'), 'notes.jsonl'),
        purpose: 'user_data',
        expires_after: { anchor: 'created_at', seconds: 2 * HOUR_S },
      });
      expect(own.expires_at).toBe(own.created_at + 2 * HOUR_S);
    } finally {
      await t.close();
    }
  });
});
