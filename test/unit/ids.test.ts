import { describe, expect, it } from 'vitest';
import { newBatchId, newBatchRequestId, newFileId, newRequestId } from '../../src/domain/ids.ts';

describe('ids', () => {
  it('have OpenAI’s layouts, with the creation time in the first 8 hex digits', () => {
    const nowMs = Date.UTC(2026, 10, 22, 6, 0, 0);
    const seconds = (nowMs / 1000).toString(16).padStart(8, '0');
    expect(newBatchId(nowMs)).toMatch(new RegExp(`^batch_${seconds}[0-9a-f]{4}8190[0-9a-f]{16}$`));
    expect(newBatchRequestId(nowMs)).toMatch(/^batch_req_[0-9a-f]{8}[0-9a-f]{4}8190[0-9a-f]{16}$/);
    expect(newFileId()).toMatch(/^file-[0-9A-Za-z]{22}$/);
    expect(newRequestId()).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it('never repeat, across many refills of the random pool', () => {
    const ids = Array.from({ length: 20_000 }, () => newBatchRequestId(0));
    expect(new Set(ids).size).toBe(ids.length);
    const requestIds = Array.from({ length: 5_000 }, () => newRequestId());
    expect(new Set(requestIds).size).toBe(requestIds.length);
  });
});
