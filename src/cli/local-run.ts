import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import OpenAI from 'openai';
import type { ServerRuntime } from '../compose.ts';
import { loadConfig, type Config, type UpstreamConfig } from '../config/config.ts';
import { UsageError } from './command-kit.ts';

/** Where `openbatch run` keeps its state when not told: one directory per input path and content. */
export function defaultStateDir(inputPath: string, sha256: string): string {
  const key = createHash('sha256')
    .update(`${resolve(inputPath)}\n${sha256}`)
    .digest('hex');
  return resolve('.openbatch-run', key.slice(0, 16));
}

/** What `run` takes from its flags to build the server configuration. */
export interface RunConfigInput {
  stateDir: string;
  /** --config FILE (upstreams, engine tuning), as `openbatch serve` reads it. */
  config?: string | undefined;
  /** --upstream URL: replaces the configured upstreams, exactly as OPENBATCH_UPSTREAM_URL would. */
  upstream?: string | undefined;
  upstreamApiKey?: string | undefined;
  /** Size of the input file: the upload limits are raised to fit it. */
  inputBytes: number;
}

/**
 * The server configuration for a local run: the environment and --config as `serve` reads them,
 * the state directory as data dir, the upstream from --upstream when given, no API keys (nothing
 * listens), and the file limits lifted so any file runs as one batch — a local run has no reason
 * to split (memory stays bounded: ingest and finalize stream).
 */
export function runConfig(o: RunConfigInput): Config {
  const base = asUsageError(() => loadConfig({ config: o.config }));
  const upstreams =
    o.upstream === undefined
      ? base.upstreams
      : asUsageError(
          () =>
            loadConfig(
              {},
              {
                OPENBATCH_UPSTREAM_URL: o.upstream,
                OPENBATCH_UPSTREAM_API_KEY: o.upstreamApiKey,
              },
            ).upstreams,
        );
  if (upstreams.length === 0) {
    throw new UsageError(
      'no upstream to send the lines to: pass --upstream URL, set OPENBATCH_UPSTREAM_URL or OPENAI_API_KEY, or give --config FILE; or add --simulate to try it against the built-in simulator (synthetic replies)',
    );
  }
  const fileBytes = Math.max(o.inputBytes + 1024 * 1024, base.limits.maxBatchFileBytes);
  return {
    ...base,
    // A one-shot run keeps everything in its state directory (SQLite), never in a shared store.
    dataDir: o.stateDir,
    blobDir: o.stateDir,
    blobS3: null,
    databaseUrl: null,
    upstreams,
    apiKeys: new Map(),
    // Nothing listens: the in-process client's requests carry no Host for the browser guard.
    allowedHosts: ['*'],
    limits: {
      ...base.limits,
      maxLines: Number.MAX_SAFE_INTEGER,
      maxEmbeddingInputs: Number.MAX_SAFE_INTEGER,
      maxFileBytes: Math.max(fileBytes, base.limits.maxFileBytes),
      maxBatchFileBytes: fileBytes,
    },
  };
}

/** Configuration problems are bad input (exit 2), reported with the variable's or field's name. */
function asUsageError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * Fails early, in one line, when an upstream cannot be reached or rejects its key, rather than
 * letting every line fail after its retries. Any other answer (even 404) means it is there.
 */
export async function checkUpstreams(upstreams: readonly UpstreamConfig[]): Promise<void> {
  for (const u of upstreams) {
    const url = `${u.baseUrl.replace(/\/+$/, '')}/models`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: u.apiKey ? { authorization: `Bearer ${u.apiKey}` } : {},
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      const cause =
        (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new Error(`cannot reach upstream ${u.baseUrl}: ${cause}`);
    }
    await res.body?.cancel();
    if (res.status === 401) throw new Error(`upstream ${u.baseUrl} rejected its API key (401)`);
  }
}

/** The official client wired straight to the runtime's app: no socket, same routes. */
export function inProcessClient(runtime: ServerRuntime): OpenAI {
  return new OpenAI({
    apiKey: 'openbatch-run',
    baseURL: 'http://openbatch.run/v1',
    maxRetries: 0,
    fetch: async (url, init) => runtime.app.fetch(new Request(url, init)),
  });
}

/**
 * Default result paths beside the input: `data.jsonl` → `data.output.jsonl`, `data.errors.jsonl`;
 * with a `tag` (`openbatch results` passes the job id) `data.<tag>.output.jsonl`, so results of a
 * job never overwrite a local run's (or another job's) files of the same input.
 */
export function defaultResultPaths(
  inputPath: string,
  tag?: string,
): { output: string; errors: string } {
  const stem = resolve(inputPath).replace(/\.jsonl?$/i, '') + (tag ? `.${tag}` : '');
  return { output: `${stem}.output.jsonl`, errors: `${stem}.errors.jsonl` };
}
