import { describe, expect, it } from 'vitest';
import { SplitPlanner, lineTooLarge, type SplitLimits } from '../../src/sdk/split-plan.ts';

const limits = (over: Partial<SplitLimits> = {}): SplitLimits => ({
  maxLines: 1_000,
  maxBytes: 10_000,
  maxEmbeddingInputs: 1_000,
  oneModelPerFile: false,
  ...over,
});
const line = (model = 'm', bytes = 10, embeddingInputs = 0, endpoint = '/v1/chat/completions') => ({
  endpoint,
  model,
  bytes,
  embeddingInputs,
});

describe('SplitPlanner', () => {
  it('opens a new part when lines, bytes or embedding inputs would overflow', () => {
    const byLines = new SplitPlanner(limits({ maxLines: 2 }));
    expect([1, 2, 3, 4, 5].map(() => byLines.place(line()).part)).toEqual([0, 0, 1, 1, 2]);
    const byBytes = new SplitPlanner(limits({ maxBytes: 25 }));
    expect([1, 2, 3].map(() => byBytes.place(line('m', 10)).part)).toEqual([0, 0, 1]);
    const byInputs = new SplitPlanner(limits({ maxEmbeddingInputs: 5 }));
    const embed = (n: number) => line('e', 10, n, '/v1/embeddings');
    expect([embed(3), embed(2), embed(1)].map((l) => byInputs.place(l).part)).toEqual([0, 0, 1]);
  });

  it('keeps one model per part only when asked, and never mixes endpoints', () => {
    const mixed = new SplitPlanner(limits());
    expect(
      [line('a'), line('b'), line('a', 10, 1, '/v1/embeddings')].map((l) => mixed.place(l).part),
    ).toEqual([0, 0, 1]);
    expect(mixed.parts[0]!.model).toBeNull();
    const perModel = new SplitPlanner(limits({ oneModelPerFile: true }));
    expect([line('a'), line('b'), line('a')].map((l) => perModel.place(l).part)).toEqual([0, 1, 0]);
    expect(perModel.parts.map((p) => [p.model, p.lines])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('names a line that can never fit', () => {
    expect(lineTooLarge(line('m', 20_000), limits())).toMatch(/20000 bytes/);
    expect(lineTooLarge(line('e', 10, 2_000), limits())).toMatch(/2000 embedding inputs/);
    expect(lineTooLarge(line(), limits())).toBeNull();
  });
});
