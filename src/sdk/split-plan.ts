/** Limits of the target Batch API that decide how a job is split into batches. */
export interface SplitLimits {
  /** Lines per batch (OpenAI: 50,000). @default 50_000 */
  maxLines: number;
  /** Bytes per input file (OpenAI: 200 MB). @default 209_715_200 */
  maxBytes: number;
  /** Embedding inputs per batch (OpenAI: 50,000 across all lines). @default 50_000 */
  maxEmbeddingInputs: number;
  /** Put each model in its own files (OpenAI requires one model per batch). */
  oneModelPerFile: boolean;
}

/** OpenAI's published Batch API limits, with models mixed (openbatch servers allow it). */
export const DEFAULT_SPLIT_LIMITS: Readonly<SplitLimits> = Object.freeze({
  maxLines: 50_000,
  maxBytes: 200 * 1024 * 1024,
  maxEmbeddingInputs: 50_000,
  oneModelPerFile: false,
});

/** One planned batch: its lines share an endpoint (and a model when the target requires it). */
export interface PlannedPart {
  /** 0-based, in the order parts were opened: deterministic for the same input and limits. */
  part: number;
  endpoint: string;
  /** The model of every line, or null when models are mixed. */
  model: string | null;
  lines: number;
  bytes: number;
  embeddingInputs: number;
}

/** What the planner needs to know about a line. `bytes` includes its newline. */
export interface PlacedLine {
  endpoint: string;
  model: string;
  bytes: number;
  embeddingInputs: number;
}

/** Why one line can never fit in a batch under these limits, or null when it can. */
export function lineTooLarge(line: PlacedLine, limits: SplitLimits): string | null {
  if (line.bytes > limits.maxBytes)
    return `This line is ${line.bytes} bytes; a batch input file may hold at most ${limits.maxBytes}.`;
  if (line.embeddingInputs > limits.maxEmbeddingInputs)
    return `This line has ${line.embeddingInputs} embedding inputs; a batch may hold at most ${limits.maxEmbeddingInputs}.`;
  return null;
}

/**
 * Streams lines into parts: each group (endpoint, plus model when one model per file) fills its
 * open part until the next line would break a limit, then opens a new one. Input order is kept
 * within every part.
 */
export class SplitPlanner {
  readonly #limits: SplitLimits;
  readonly #open = new Map<string, PlannedPart>();
  readonly #parts: PlannedPart[] = [];

  constructor(limits: SplitLimits) {
    this.#limits = limits;
  }

  /** The part `line` goes to (call `lineTooLarge` first: an oversize line gets a part of its own). */
  place(line: PlacedLine): PlannedPart {
    const key = this.#limits.oneModelPerFile ? `${line.endpoint}\n${line.model}` : line.endpoint;
    let part = this.#open.get(key);
    if (part === undefined || !this.#fits(part, line)) {
      part = {
        part: this.#parts.length,
        endpoint: line.endpoint,
        model: line.model,
        lines: 0,
        bytes: 0,
        embeddingInputs: 0,
      };
      this.#parts.push(part);
      this.#open.set(key, part);
    }
    if (part.model !== line.model) part.model = null;
    part.lines += 1;
    part.bytes += line.bytes;
    part.embeddingInputs += line.embeddingInputs;
    return part;
  }

  get parts(): readonly PlannedPart[] {
    return this.#parts;
  }

  #fits(part: PlannedPart, line: PlacedLine): boolean {
    const l = this.#limits;
    return (
      part.lines + 1 <= l.maxLines &&
      part.bytes + line.bytes <= l.maxBytes &&
      part.embeddingInputs + line.embeddingInputs <= l.maxEmbeddingInputs
    );
  }
}
