import { z } from 'zod';

/**
 * GET /v1/batches/{id}/results (an openbatch extension): the finished lines of a batch, running
 * or ended, page by page. `data` holds lines exactly as in the output and error files (output
 * lines first within a page); following `next_cursor` gives every finished line exactly once.
 */
export interface BatchResultsPage {
  object: 'list';
  data: Record<string, unknown>[];
  /** Pass as `after` for the next page; also when `has_more` is false and the batch still runs. */
  next_cursor: string;
  /** More lines are finished already: ask again at once. */
  has_more: boolean;
  /** The batch's status when the page was read: once terminal and `has_more` false, that was all. */
  batch_status: string;
}

/** Where a reader is: byte offsets into the batch's output and error files (always line starts). */
export interface ResultsCursor {
  output: number;
  error: number;
}

export const RESULTS_PAGE_DEFAULT = 100;
export const RESULTS_PAGE_MAX = 1_000;

export const batchResultsQuerySchema = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(RESULTS_PAGE_MAX).default(RESULTS_PAGE_DEFAULT),
});

const CURSOR = /^(\d{1,15})\.(\d{1,15})$/;

/** The cursor's wire form; clients treat it as opaque. */
export function formatResultsCursor(c: ResultsCursor): string {
  return `${c.output}.${c.error}`;
}

/** Null when `text` is not a cursor's wire form. */
export function parseResultsCursor(text: string | undefined): ResultsCursor | null {
  if (text === undefined || text === '') return { output: 0, error: 0 };
  const m = CURSOR.exec(text);
  return m ? { output: Number(m[1]), error: Number(m[2]) } : null;
}
