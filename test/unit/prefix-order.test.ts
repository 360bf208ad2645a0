import { describe, expect, it } from 'vitest';
import type { ClaimedItem } from '../../src/domain/records.ts';
import { PREFIX_CHARS, PrefixOrder, withPromptCacheKey } from '../../src/engine/prefix-order.ts';
import { PrefixCache } from '../../src/simulator/prefix-cache.ts';

const doc = (n: number): string => `Document ${n}. `.padEnd(PREFIX_CHARS + 500, `text of ${n} `);

function item(customId: string, content: string, batchId = 'batch_1'): ClaimedItem {
  return {
    chunk_id: 1,
    lease_gen: 1,
    index: 0,
    batch_id: batchId,
    custom_id: customId,
    endpoint: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }),
    attempts: 1,
    suspect: false,
  };
}

describe('prefix-aware order', () => {
  it('sends lines sharing a long prefix together, keeping the order of first appearance', () => {
    const lines = [
      item('d1-q1', `${doc(1)} question 1`),
      item('d2-q1', `${doc(2)} question 1`),
      item('short', 'a short prompt'),
      item('d1-q2', `${doc(1)} question 2`),
      item('d2-q2', `${doc(2)} question 2`),
      item('d1-q3', `${doc(1)} question 3`),
    ];
    const ordered = new PrefixOrder().order(lines).map((i) => i.custom_id);
    expect(ordered).toEqual(['d1-q1', 'd1-q2', 'd1-q3', 'd2-q1', 'd2-q2', 'short']);
  });

  it('never groups lines of different batches, and leaves short prompts in place', () => {
    const lines = [
      item('a1', `${doc(1)} q`, 'batch_a'),
      item('s1', 'short one'),
      item('b1', `${doc(1)} q`, 'batch_b'),
      item('s2', 'short two'),
      item('a2', `${doc(1)} r`, 'batch_a'),
    ];
    const ordered = new PrefixOrder().order(lines).map((i) => i.custom_id);
    expect(ordered).toEqual(['a1', 'a2', 's1', 'b1', 's2']);
  });

  it('adds prompt_cache_key to a body without one, keeps one that is there', () => {
    expect(JSON.parse(withPromptCacheKey('{"model":"m"}', 'k1'))).toEqual({
      prompt_cache_key: 'ob-k1',
      model: 'm',
    });
    expect(withPromptCacheKey('{}', 'k')).toBe('{"prompt_cache_key":"ob-k"}');
    const own = '{"model":"m","prompt_cache_key":"mine"}';
    expect(withPromptCacheKey(own, 'k')).toBe(own);
  });
});

describe('simulated prompt cache', () => {
  it('reports whole 128-token blocks of a prefix seen recently, from 1,024 tokens on', () => {
    const cache = new PrefixCache(2);
    const a = doc(1) + ' first question';
    const tokens = Math.ceil(a.length / 4);
    expect(cache.cachedTokens('m', a, tokens, null)).toBe(0);
    const cached = cache.cachedTokens('m', doc(1) + ' second question', tokens, null);
    expect(cached % 128).toBe(0);
    expect(cached).toBeGreaterThanOrEqual(1_024);
    expect(cached).toBeLessThanOrEqual(tokens);
    // Two other prompts push it out of a two-entry cache.
    cache.cachedTokens('m', doc(2), tokens, null);
    cache.cachedTokens('m', doc(3), tokens, null);
    expect(cache.cachedTokens('m', doc(1) + ' third question', tokens, null)).toBe(0);
    expect(cache.cachedTokens('m', 'short', 2, null)).toBe(0);
  });
});
