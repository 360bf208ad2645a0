/** A free line of a native batch, read from its input file. */
export interface NativeLine {
  chunk_id: number;
  lease_gen: number;
  index: number;
  custom_id: string;
  model: string;
  text: string;
  bytes: number;
  /** Prompt tokens it adds to the model's enqueued total (an over-estimate: bytes / 4). */
  tokens: number;
}

export interface SubDraft {
  model: string;
  lines: NativeLine[];
  tokens: number;
  bytes: number;
}

export interface PlanLimits {
  maxLines: number;
  maxBytes: number;
  /** Tokens the model may still enqueue (Infinity: no known limit). */
  room(model: string): number;
  /** Whether a sub-batch of the model is open (then a line that does not fit waits). */
  busy(model: string): boolean;
}

/** Over-estimates OpenAI's count of a line's prompt tokens (~4 bytes a token, JSON included). */
export function estimateLineTokens(bytes: number): number {
  return Math.ceil(bytes / 4);
}

/**
 * Cuts one batch's free lines (input order) into sub-batches: one model each, within the line,
 * byte and enqueued-token limits. Lines of a model whose room is used up wait for a later pass,
 * except that a model with nothing open always gets one sub-batch (at least one line), so a
 * limit smaller than a line cannot stall the batch.
 */
export function planSubBatches(lines: readonly NativeLine[], limits: PlanLimits): SubDraft[] {
  const byModel = new Map<string, NativeLine[]>();
  for (const line of lines) {
    let list = byModel.get(line.model);
    if (!list) byModel.set(line.model, (list = []));
    list.push(line);
  }
  const drafts: SubDraft[] = [];
  for (const [model, modelLines] of byModel) {
    let room = limits.room(model);
    let open: SubDraft | null = null;
    let busy = limits.busy(model);
    for (const line of modelLines) {
      const fits = (d: SubDraft): boolean =>
        d.lines.length < limits.maxLines && d.bytes + line.bytes + 1 <= limits.maxBytes;
      if (open && !fits(open)) open = null;
      if (line.tokens > room && (busy || open)) break;
      if (!open) {
        open = { model, lines: [], tokens: 0, bytes: 0 };
        drafts.push(open);
        busy = true;
      }
      open.lines.push(line);
      open.tokens += line.tokens;
      open.bytes += line.bytes + 1;
      room -= line.tokens;
    }
  }
  return drafts;
}
