import { describe, expect, it } from 'vitest';
import { CustomIdIndex } from '../../src/engine/custom-id-index.ts';

describe('CustomIdIndex', () => {
  it('accepts distinct ids across many table growths and flags a repeat as a candidate', () => {
    const index = new CustomIdIndex();
    for (let i = 0; i < 50_000; i++) expect(index.add(`request-${i}`)).toBe(true);
    expect(index.hasCandidates).toBe(false);
    expect(index.add('request-123')).toBe(false);
    expect(index.hasCandidates).toBe(true);
    expect(index.isCandidate('request-123')).toBe(true);
    expect(index.isCandidate('request-124')).toBe(false);
  });

  it('tells apart ids that differ only in one character or in case', () => {
    const index = new CustomIdIndex();
    for (const id of ['a', 'b', 'A', 'aa', 'ab', 'ba', '', '\u00e9', 'e\u0301']) {
      expect(index.add(id)).toBe(true);
    }
  });
});
