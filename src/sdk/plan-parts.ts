import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchEndpoint } from '../protocol/endpoints.ts';
import { InvalidLinesError } from './errors.ts';
import type { LineSource } from './line-source.ts';
import { SplitPlanner, lineTooLarge, type PlannedPart, type SplitLimits } from './split-plan.ts';
import { checkLine, duplicateIssue, type LineIssue } from './validate-lines.ts';

const MAX_KEPT_ISSUES = 1_000;

/** A validated, split input: one temp file per part, and every selected custom_id in input order. */
export interface PartPlan {
  parts: readonly PlannedPart[];
  /** Path of each part's JSONL file, by part number. */
  files: readonly string[];
  ids: readonly string[];
  /** Removes the temp files. */
  dispose(): Promise<void>;
}

/** How to validate and split one round's input. */
export interface PlanOptions {
  limits: SplitLimits;
  endpoint?: BatchEndpoint | undefined;
  /** Keeps only lines whose custom_id passes (retries); every line is still validated. */
  include?: ((customId: string) => boolean) | undefined;
  /** Names the part files (the Files API shows them). */
  filePrefix: string;
}

/**
 * One streaming pass over the input: validates every line with the server's validator, finds
 * duplicate custom_ids, and writes each line into its part's temp file. Throws InvalidLinesError
 * (and writes nothing more once a problem is found) when any line is bad.
 */
export async function planParts(source: LineSource, options: PlanOptions): Promise<PartPlan> {
  const dir = await mkdtemp(join(tmpdir(), 'openbatch-parts-'));
  const writer = new PartFiles(dir, options.filePrefix);
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const { planner, ids, issues, issueCount } = await scan(source, options, writer);
    await writer.close();
    if (issueCount > 0) throw new InvalidLinesError(source.name, issues, issueCount);
    return { parts: planner.parts, files: writer.paths, ids, dispose };
  } catch (err) {
    await writer.close();
    await dispose();
    throw err;
  }
}

async function scan(source: LineSource, options: PlanOptions, writer: PartFiles) {
  const planner = new SplitPlanner(options.limits);
  const seen = new Set<string>();
  const ids: string[] = [];
  const issues: LineIssue[] = [];
  let issueCount = 0;
  const report = (issue: LineIssue): void => {
    issueCount += 1;
    if (issues.length < MAX_KEPT_ISSUES) issues.push(issue);
  };
  for await (const { lineNo, text, bytes } of source.lines(options.limits.maxBytes)) {
    if (text !== null && text.trim() === '') continue; // blank lines are ignored, as the server does
    const check = checkLine(text, lineNo, {
      endpoint: options.endpoint,
      maxLineBytes: options.limits.maxBytes,
    });
    if (!check.ok) {
      report(check.issue);
      continue;
    }
    const { custom_id, endpoint, model, embeddingInputs } = check.line;
    if (seen.has(custom_id)) {
      report(duplicateIssue(lineNo));
      continue;
    }
    seen.add(custom_id);
    if (options.include && !options.include(custom_id)) continue;
    const placed = { endpoint, model, bytes: bytes + 1, embeddingInputs };
    const tooLarge = lineTooLarge(placed, options.limits);
    if (tooLarge !== null)
      report({ line: lineNo, code: 'line_too_large', message: tooLarge, param: null });
    if (issueCount > 0) continue; // keep validating, stop writing
    ids.push(custom_id);
    await writer.write(planner.place(placed).part, text ?? '');
  }
  return { planner, ids, issues, issueCount };
}

/** Lazily opened write streams, one per part, with back-pressure. */
class PartFiles {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #streams: WriteStream[] = [];
  readonly paths: string[] = [];

  constructor(dir: string, prefix: string) {
    this.#dir = dir;
    this.#prefix = prefix;
  }

  async write(part: number, text: string): Promise<void> {
    let stream = this.#streams[part];
    if (stream === undefined) {
      const path = join(this.#dir, `${this.#prefix}-part${part}.jsonl`);
      stream = createWriteStream(path);
      this.#streams[part] = stream;
      this.paths[part] = path;
    }
    if (!stream.write(`${text}\n`)) await once(stream, 'drain');
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#streams.map(
        (s) =>
          new Promise<void>((resolve, reject) =>
            s.end((err?: Error | null) => (err ? reject(err) : resolve())),
          ),
      ),
    );
    this.#streams.length = 0;
  }
}
