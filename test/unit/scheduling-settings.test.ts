import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerRuntime } from '../../src/compose.ts';
import { loadConfig, upstreamConfig, type Config } from '../../src/config/config.ts';
import { DEFAULT_SCHEDULING, resolveScheduling } from '../../src/domain/scheduling-settings.ts';
import { silentLogger } from '../../src/lib/logger.ts';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-scheduling-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Loads a config whose only source of upstreams is `file` (nothing from the environment). */
function fromFile(file: object, env: Record<string, string> = {}): Config {
  const path = join(tempDir(), 'config.json');
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ config: path }, env);
}

const URL_ = 'http://127.0.0.1:9/v1';

describe('scheduling settings', () => {
  it('get the same defaults from the environment, the config file and the simulator upstream', () => {
    const expected = {
      models: ['*'],
      maxConcurrency: 64,
      scheduling: { ...DEFAULT_SCHEDULING, rpm: undefined, tpm: undefined },
    };
    const env = loadConfig({}, { OPENBATCH_UPSTREAM_URL: URL_ }).upstreams;
    const file = fromFile({ upstreams: [{ name: 'f', baseUrl: URL_ }] }).upstreams;
    const sim = upstreamConfig({ name: 'simulator', baseUrl: URL_, apiKey: null });
    for (const u of [...env, ...file, sim]) expect(u).toMatchObject(expected);
    expect(DEFAULT_SCHEDULING).toEqual({
      adaptive: 'auto',
      minConcurrency: 2,
      defaultMaxTokens: 1024,
      tokenAccounting: 'max_tokens',
    });
  });

  it('take what the environment and the file set, and keep the defaults for the rest', () => {
    const [fromEnv] = loadConfig(
      {},
      {
        OPENBATCH_UPSTREAM_URL: URL_,
        OPENBATCH_UPSTREAM_RPM: '120',
        OPENBATCH_UPSTREAM_ADAPTIVE: 'off',
        OPENBATCH_UPSTREAM_MIN_CONCURRENCY: '3',
      },
    ).upstreams;
    expect(fromEnv?.scheduling).toEqual(
      resolveScheduling({ rpm: 120, adaptive: 'off', minConcurrency: 3 }),
    );
    const [fromFileUpstream] = fromFile({
      upstreams: [
        { name: 'f', baseUrl: URL_, tpm: 9_000, defaultMaxTokens: 64, tokenAccounting: 'usage' },
      ],
    }).upstreams;
    expect(fromFileUpstream?.scheduling).toEqual({
      ...DEFAULT_SCHEDULING,
      rpm: undefined,
      tpm: 9_000,
      defaultMaxTokens: 64,
      tokenAccounting: 'usage',
    });
  });

  it('reject an unknown mode with the variable or field name', () => {
    expect(() =>
      loadConfig({}, { OPENBATCH_UPSTREAM_URL: URL_, OPENBATCH_UPSTREAM_ADAPTIVE: 'maybe' }),
    ).toThrow(/OPENBATCH_UPSTREAM_ADAPTIVE/);
    expect(() =>
      fromFile({ upstreams: [{ name: 'f', baseUrl: URL_, tokenAccounting: 'guess' }] }),
    ).toThrow(/upstreams\.0\.tokenAccounting/);
  });

  it('reach the engine directly, while the provider upstream carries none', async () => {
    const config = fromFile({
      dataDir: tempDir(),
      upstreams: [{ name: 'limited', baseUrl: URL_, rpm: 120, tpm: 60_000, adaptive: 'off' }],
    });
    const runtime = await createServerRuntime(config, silentLogger);
    try {
      const [upstream] = runtime.upstreams.all();
      expect(upstream && 'scheduling' in upstream).toBe(false);
      const release = await runtime.engine.admitRealtime(
        'limited',
        'gpt-4o-mini',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 },
        AbortSignal.timeout(5_000),
      );
      release({ status: 200, headers: null, usage: null, retryAfterMs: null, overloaded: false });
      const [status] = runtime.engine.upstreamStatus();
      expect(status).toMatchObject({ upstream: 'limited', adaptive: false, concurrencyLimit: 64 });
      expect(status?.keys).toMatchObject([
        { key: 'gpt-4o-mini', rpm: 120, tpm: 60_000, source: 'config' },
      ]);
    } finally {
      await runtime.close();
    }
  });
});
