import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';

describe('per-upstream batch settings (issue 10)', () => {
  it('defaults to auto with OpenAI limits and a 30 s poll', () => {
    const [u] = loadConfig({}, { OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:1/v1' }).upstreams;
    expect(u?.batch).toEqual({
      mode: 'auto',
      pollMs: 30_000,
      maxPollMs: 300_000,
      maxLines: 50_000,
      maxBytes: 200 * 1024 * 1024,
      queueTokens: {},
      fallbackMarginMs: 3_600_000,
      deleteFiles: true,
    });
  });

  it('reads OPENBATCH_UPSTREAM_BATCH_* for the environment upstream', () => {
    const [u] = loadConfig(
      {},
      {
        OPENAI_API_KEY: 'sk-test',
        OPENBATCH_UPSTREAM_BATCH_MODE: 'native',
        OPENBATCH_UPSTREAM_BATCH_POLL_MS: '5000',
        OPENBATCH_UPSTREAM_BATCH_QUEUE_TOKENS: 'gpt-4o=90000,gpt-4o-mini=2000000',
        OPENBATCH_UPSTREAM_BATCH_DELETE_FILES: '0',
      },
    ).upstreams;
    expect(u?.batch).toMatchObject({
      mode: 'native',
      pollMs: 5_000,
      queueTokens: { 'gpt-4o': 90_000, 'gpt-4o-mini': 2_000_000 },
      deleteFiles: false,
    });
  });

  it('refuses a bad mode or quota, and reads the config file fields', () => {
    const env = { OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:1/v1' };
    expect(() => loadConfig({}, { ...env, OPENBATCH_UPSTREAM_BATCH_MODE: 'fast' })).toThrow(
      /OPENBATCH_UPSTREAM_BATCH_MODE/,
    );
    expect(() =>
      loadConfig({}, { ...env, OPENBATCH_UPSTREAM_BATCH_QUEUE_TOKENS: 'gpt-4o' }),
    ).toThrow(/OPENBATCH_UPSTREAM_BATCH_QUEUE_TOKENS/);
    const path = join(mkdtempSync(join(tmpdir(), 'openbatch-cfg-')), 'c.json');
    writeFileSync(
      path,
      JSON.stringify({
        upstreams: [
          {
            name: 'openai',
            baseUrl: 'https://api.openai.com/v1',
            batchMode: 'realtime',
            batchQueueTokens: { 'gpt-4o': 90000 },
            batchFallbackMarginMs: 0,
          },
        ],
      }),
    );
    const [u] = loadConfig({ config: path }, {}).upstreams;
    expect(u?.batch).toMatchObject({
      mode: 'realtime',
      queueTokens: { 'gpt-4o': 90_000 },
      fallbackMarginMs: 0,
      pollMs: 30_000,
    });
  });
});
