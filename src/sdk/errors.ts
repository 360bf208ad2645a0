import type { LineIssue } from './validate-lines.ts';

/** The input has lines no Batch API would accept; nothing was uploaded. */
export class InvalidLinesError extends Error {
  override readonly name = 'InvalidLinesError';
  /** The first issues, in line order (at most 1,000 are kept). */
  readonly issues: readonly LineIssue[];
  /** How many lines had issues in all. */
  readonly count: number;

  constructor(source: string, issues: readonly LineIssue[], count: number) {
    const first = issues[0];
    const where = first ? ` (line ${first.line}: ${first.message})` : '';
    super(`${source}: ${count} invalid line${count === 1 ? '' : 's'}${where}`);
    this.issues = issues;
    this.count = count;
  }
}

/** No job with this id is known to the job store. */
export class JobNotFoundError extends Error {
  override readonly name = 'JobNotFoundError';
  readonly jobId: string;

  constructor(jobId: string, where: string) {
    super(`no job '${jobId}' in ${where}`);
    this.jobId = jobId;
  }
}

/** The job's input changed since it was submitted, so its lines cannot be matched any more. */
export class InputChangedError extends Error {
  override readonly name = 'InputChangedError';
}
