import type OpenAI from 'openai';
import { downloadLines } from './batch-client.ts';
import type { JobStatus } from './job-status.ts';

/** One result in the Batch API's output/error line format. */
export interface ResultLine {
  /** The Batch API's request id (`batch_req_…`); null for a result made up locally. */
  id: string | null;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

/** A result with the exact line text it came in (rewritten as-is into merged files). */
export interface MergedResult {
  line: ResultLine;
  raw: string;
  /** The line belongs in an error file: no 2xx answer. */
  isError: boolean;
}

/** Line counts of a merge. */
export interface MergeSummary {
  outputLines: number;
  errorLines: number;
  /** Lines without any result (their batch failed, or has not finished); reported as errors. */
  missing: number;
}

/**
 * Streams every batch's output and error file, newest round first, and hands each custom_id's
 * latest result to `sink` exactly once: a line retried in a later round replaces its earlier
 * error. Ids in `ids` that no file mentions get a made-up error line, so every custom_id of the
 * job appears exactly once.
 */
export async function mergeJobResults(
  client: OpenAI,
  status: JobStatus,
  ids: readonly string[],
  sink: (result: MergedResult) => void | Promise<void>,
): Promise<MergeSummary> {
  const seen = new Set<string>();
  const summary: MergeSummary = { outputLines: 0, errorLines: 0, missing: 0 };
  const emit = async (result: MergedResult): Promise<void> => {
    seen.add(result.line.custom_id);
    if (result.isError) summary.errorLines += 1;
    else summary.outputLines += 1;
    await sink(result);
  };
  const batches = [...status.batches].sort((a, b) => b.round - a.round || a.part - b.part);
  for (const batch of batches) {
    for (const [fileId, fromErrorFile] of [
      [batch.output_file_id, false],
      [batch.error_file_id, true],
    ] as const) {
      if (fileId === null) continue;
      for await (const raw of downloadLines(client, fileId)) {
        const line = JSON.parse(raw) as ResultLine;
        if (seen.has(line.custom_id)) continue;
        await emit({ line, raw, isError: fromErrorFile || isErrorLine(line) });
      }
    }
  }
  for (const custom_id of ids) {
    if (seen.has(custom_id)) continue;
    summary.missing += 1;
    const line = missingLine(custom_id, status.state === 'finished');
    await emit({ line, raw: JSON.stringify(line), isError: true });
  }
  return summary;
}

/** True when a result line carries no successful answer. */
export function isErrorLine(line: ResultLine): boolean {
  return line.error !== null || line.response === null || line.response.status_code >= 400;
}

function missingLine(custom_id: string, finished: boolean): ResultLine {
  const error = finished
    ? {
        code: 'batch_failed',
        message: 'This request has no result: its batch ended without running it.',
      }
    : {
        code: 'not_finished',
        message: 'This request has no result yet: its batch is still running.',
      };
  return { id: null, custom_id, response: null, error };
}
