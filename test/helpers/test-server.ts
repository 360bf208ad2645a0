import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import OpenAI from 'openai';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { createServerRuntime, type ServerRuntime } from '../../src/compose.ts';
import type { Clock } from '../../src/lib/clock.ts';
import { createLogger, silentLogger, type Logger } from '../../src/lib/logger.ts';
import { createDatabase } from './postgres-server.ts';
import {
  createSimulator,
  type Simulator,
  type SimulatorOptions,
} from '../../src/simulator/simulator.ts';

export interface TestServer {
  /** Base URL with /v1, for the SDK. */
  baseURL: string;
  client: OpenAI;
  sim: Simulator;
  runtime: ServerRuntime;
  dataDir: string;
  config: Config;
  /** A client with another key (for multi-project tests). */
  clientWithKey(apiKey: string): OpenAI;
  close(): Promise<void>;
}

export interface TestServerOptions {
  /** Extra environment for loadConfig (engine tuning, API keys…). */
  env?: Record<string, string>;
  sim?: SimulatorOptions;
  /** Extra config-file content (upstreams get the simulator URL substituted for `SIM`). */
  configFile?: Record<string, unknown>;
  apiKey?: string;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
  /** Reuse a running simulator. */
  existingSim?: Simulator;
  /** The server's clock (retention tests move it forward). */
  clock?: Clock;
  /** Where the server logs. @default silent */
  logger?: Logger;
}

const FAST_ENGINE = {
  OPENBATCH_TICK_MS: '50',
  OPENBATCH_RETRY_INITIAL_MS: '20',
  OPENBATCH_RETRY_MAX_MS: '200',
  OPENBATCH_SHUTDOWN_GRACE_MS: '2000',
};

/** Databases made for data dirs (a restart with the same data dir finds the same database). */
const databases = new Map<string, string>();

/**
 * OPENBATCH_TEST_STORE=postgres (the `postgres` vitest project) runs the same tests on a database
 * of their own on the run's PostgreSQL server.
 */
async function storeEnv(dataDir: string): Promise<Record<string, string>> {
  if (process.env.OPENBATCH_TEST_STORE !== 'postgres') return {};
  let url = databases.get(dataDir);
  if (!url) {
    url = await createDatabase(inject('postgresUrl'));
    databases.set(dataDir, url);
  }
  return { OPENBATCH_DATABASE_URL: url };
}

/**
 * OPENBATCH_TEST_BATCH_MODE=native (the `native` vitest project, issue 10): the simulator gets a
 * Batch API and the server runs every batch through it, so the same tests check that clients see
 * no difference. A test's own `env` and `sim.batchApi` still win.
 */
const NATIVE_MODE = process.env.OPENBATCH_TEST_BATCH_MODE === 'native';
const NATIVE_ENV: Record<string, string> = NATIVE_MODE
  ? {
      OPENBATCH_UPSTREAM_BATCH_MODE: 'native',
      OPENBATCH_UPSTREAM_BATCH_POLL_MS: '25',
      OPENBATCH_UPSTREAM_BATCH_MAX_POLL_MS: '100',
    }
  : {};

/** In native mode, upstreams of a config file run natively too, polled as fast. */
function nativeConfigFile(file: Record<string, unknown>): Record<string, unknown> {
  const upstreams = file.upstreams as Record<string, unknown>[] | undefined;
  if (!upstreams) return file;
  const batch = { batchMode: 'native', batchPollMs: 25, batchMaxPollMs: 100 };
  return { ...file, upstreams: upstreams.map((u) => ({ ...batch, ...u })) };
}

function simOptions(opts: TestServerOptions): SimulatorOptions {
  const sim = opts.sim ?? {};
  return NATIVE_MODE ? { ...sim, batchApi: sim.batchApi ?? { turnaroundMs: 50 } } : sim;
}

/** Starts a simulator and an openbatch server on 127.0.0.1:0 with a temp data dir. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const sim = opts.existingSim ?? createSimulator(simOptions(opts));
  const simUrl = opts.existingSim ? (opts.env?.SIM_URL ?? '') : (await sim.listen(0)).url;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'openbatch-test-'));
  const env: Record<string, string> = {
    ...FAST_ENGINE,
    ...NATIVE_ENV,
    ...(await storeEnv(dataDir)),
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    ...opts.env,
  };
  let configPath: string | undefined;
  if (opts.configFile) {
    configPath = join(dataDir, 'config.json');
    const file = NATIVE_MODE ? nativeConfigFile(opts.configFile) : opts.configFile;
    writeFileSync(configPath, JSON.stringify(file).replaceAll('SIM', simUrl));
  }
  const config = loadConfig({ dataDir, port: 0, config: configPath }, env);
  const runtime = await createServerRuntime(
    config,
    opts.logger ??
      (process.env.OPENBATCH_TEST_LOG
        ? createLogger(process.env.OPENBATCH_TEST_LOG)
        : silentLogger),
    opts.clock,
  );
  const server: ServerType = serve({ fetch: runtime.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const baseURL = `http://127.0.0.1:${port}/v1`;
  const clientWithKey = (apiKey: string) =>
    new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });
  return {
    baseURL,
    client: clientWithKey(opts.apiKey ?? 'test-key'),
    sim,
    runtime,
    dataDir,
    config,
    clientWithKey,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await runtime.close();
      if (!opts.existingSim) await sim.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Writes JSONL lines to a temp file and returns its path. */
export function writeJsonl(lines: readonly (object | string)[], name = 'input.jsonl'): string {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-jsonl-'));
  const path = join(dir, name);
  writeFileSync(
    path,
    lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n',
  );
  return path;
}

/** A chat request line; `content` may carry a `[sim:…]` directive. */
export function chatLine(customId: string, content: string, model = 'gpt-4o-mini'): object {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content }], max_tokens: 50 },
  };
}

/** Polls a batch until it reaches a terminal status (bounded by `timeoutMs`). */
export async function waitForBatch(
  client: OpenAI,
  id: string,
  timeoutMs = 30_000,
  until?: (status: string) => boolean,
): Promise<OpenAI.Batches.Batch> {
  const done =
    until ?? ((s: string) => ['completed', 'failed', 'expired', 'cancelled'].includes(s));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (done(batch.status)) return batch;
    if (Date.now() > deadline)
      throw new Error(`batch ${id} still ${batch.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Downloads a file's JSONL content as parsed lines. */
export async function readLines(
  client: OpenAI,
  fileId: string | null | undefined,
): Promise<Record<string, any>[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
