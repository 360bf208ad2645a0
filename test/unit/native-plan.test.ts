import { describe, expect, it } from 'vitest';
import { parseQueueLimit, QueueLimits } from '../../src/engine/native/queue-limits.ts';
import { planSubBatches, type NativeLine } from '../../src/engine/native/sub-batch-plan.ts';

const line = (i: number, model = 'gpt-4o', tokens = 10, bytes = 40): NativeLine => ({
  chunk_id: 1,
  lease_gen: 1,
  index: i,
  custom_id: `c${i}`,
  model,
  text: 'x',
  bytes,
  tokens,
});

const limits = (room: Record<string, number> = {}, busy: string[] = []) => ({
  maxLines: 50_000,
  maxBytes: 200 * 1024 * 1024,
  room: (m: string) => room[m] ?? Infinity,
  busy: (m: string) => busy.includes(m),
});

describe('enqueued-token limits', () => {
  it("parses OpenAI's token_limit_exceeded message", () => {
    expect(
      parseQueueLimit(
        'Enqueued token limit reached for gpt-4o in organization org-abc. Limit: 90,000 enqueued tokens. Please try submitting an equal or smaller batch later.',
      ),
    ).toBe(90_000);
    expect(parseQueueLimit('Limit: 2,000,000 enqueued tokens.')).toBe(2_000_000);
    expect(parseQueueLimit('something else')).toBeNull();
  });

  it('learns a limit, and halves its share when a batch planned within it is still refused', () => {
    const q = new QueueLimits({ 'gpt-4o-mini': 1_000 });
    expect(q.budget('gpt-4o')).toBe(Infinity);
    expect(q.budget('gpt-4o-mini')).toBe(1_000);
    q.rejected('gpt-4o', 5_000, 'Limit: 2,000 enqueued tokens.', false);
    expect(q.budget('gpt-4o')).toBe(2_000); // 5,000 was over the limit: no halving
    q.rejected('gpt-4o', 1_900, 'Limit: 2,000 enqueued tokens.', false);
    expect(q.budget('gpt-4o')).toBe(1_000);
    q.rejected('gpt-4o', 900, 'Limit: 2,000 enqueued tokens.', true); // others open: no halving
    expect(q.budget('gpt-4o')).toBe(1_000);
  });
});

describe('planSubBatches', () => {
  it('splits per model and by lines, bytes and token room, in input order', () => {
    const lines = [line(0), line(1, 'mini'), line(2), line(3), line(4, 'mini'), line(5)];
    const drafts = planSubBatches(lines, { ...limits({ 'gpt-4o': 30 }), maxLines: 2 });
    expect(drafts.map((d) => [d.model, d.lines.map((l) => l.index)])).toEqual([
      ['gpt-4o', [0, 2]],
      ['gpt-4o', [3]], // room 30: the fourth gpt-4o line waits
      ['mini', [1, 4]],
    ]);
    const byBytes = planSubBatches([line(0), line(1), line(2)], { ...limits(), maxBytes: 90 });
    expect(byBytes.map((d) => d.lines.length)).toEqual([2, 1]);
  });

  it('gives a model with nothing open one sub-batch even over its room, and none while one is open', () => {
    expect(planSubBatches([line(0, 'gpt-4o', 100)], limits({ 'gpt-4o': 10 }))).toHaveLength(1);
    expect(
      planSubBatches([line(0, 'gpt-4o', 100)], limits({ 'gpt-4o': 10 }, ['gpt-4o'])),
    ).toHaveLength(0);
  });
});
