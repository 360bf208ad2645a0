import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type OpenAI from 'openai';
import { mergeJobResults, type MergedResult } from '../sdk/job-results.ts';
import type { JobStatus } from '../sdk/job-status.ts';
import {
  addUsage,
  emptyUsage,
  usageFromResponse,
  type TokenUsage,
} from '../protocol/token-usage.ts';

/** Where merged results go. */
export interface ResultFiles {
  output: string;
  errors: string;
  /** Both files in input order (holds the merged lines in memory); otherwise streamed. */
  ordered: boolean;
  /**
   * Write the error file even with no error line (it was named with --errors). Otherwise a run
   * without errors leaves none, and removes one a previous run left at that default path.
   */
  keepEmptyErrors: boolean;
}

/** What `writeJobResults` wrote. */
export interface WrittenResults {
  output: string;
  /** null: no line failed, so no error file was written. */
  errors: string | null;
  outputLines: number;
  errorLines: number;
  /** Lines with no result at all (written to the error file as made-up error lines). */
  missing: number;
  usageByModel: Map<string, TokenUsage>;
}

/** How a summary names the error file. */
export const describeErrorFile = (w: { errors: string | null; errorLines: number }): string =>
  w.errors === null
    ? 'errors: none (no error file written)'
    : `errors: ${w.errors} (${w.errorLines} lines)`;

/**
 * Merges the job's output and error files into one output and one error file under the
 * original custom_ids (each exactly once, a retry's result replacing the earlier error). Both
 * files appear whole or not at all: they are written beside the target and renamed at the end.
 */
export async function writeJobResults(
  client: OpenAI,
  status: JobStatus,
  ids: readonly string[],
  files: ResultFiles,
): Promise<WrittenResults> {
  const out = openTemp(files.output);
  const err = openTemp(files.errors);
  const usageByModel = new Map<string, TokenUsage>();
  const write = async (r: MergedResult): Promise<void> => {
    countUsage(usageByModel, r);
    const stream = r.isError ? err.stream : out.stream;
    if (!stream.write(`${r.raw}\n`)) await once(stream, 'drain');
  };
  try {
    const held = new Map<string, MergedResult>();
    const summary = await mergeJobResults(client, status, ids, (r) =>
      files.ordered ? void held.set(r.line.custom_id, r) : write(r),
    );
    for (const id of files.ordered ? ids : []) {
      const r = held.get(id);
      if (r) await write(r);
    }
    const keepErrors = summary.errorLines > 0 || files.keepEmptyErrors;
    await Promise.all([out.commit(), keepErrors ? err.commit() : err.abort()]);
    if (!keepErrors) await rm(files.errors, { force: true });
    return {
      output: files.output,
      errors: keepErrors ? files.errors : null,
      ...summary,
      usageByModel,
    };
  } catch (e) {
    await Promise.all([out.abort(), err.abort()]);
    throw e;
  }
}

function countUsage(byModel: Map<string, TokenUsage>, r: MergedResult): void {
  const body = r.line.response?.body;
  const usage = usageFromResponse(body);
  if (!usage) return;
  const model = (body as { model?: unknown }).model;
  const key = typeof model === 'string' ? model : 'unknown';
  byModel.set(key, addUsage(byModel.get(key) ?? emptyUsage(), usage));
}

function openTemp(path: string): {
  stream: WriteStream;
  commit(): Promise<void>;
  abort(): Promise<void>;
} {
  const tmp = `${path}.${process.pid}.tmp`;
  const stream = createWriteStream(tmp);
  const end = (): Promise<void> =>
    new Promise((resolve, reject) => stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return {
    stream,
    commit: async () => {
      await end();
      await rename(tmp, path);
    },
    abort: async () => {
      await end().catch(() => undefined);
      await rm(tmp, { force: true });
    },
  };
}
