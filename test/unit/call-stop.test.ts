import { describe, expect, it } from 'vitest';
import { CallStop } from '../../src/lib/call-stop.ts';

describe('CallStop', () => {
  it('aborts a call under way with the first reason only', () => {
    const stop = new CallStop();
    const aborted: string[] = [];
    stop.onStop((err) => aborted.push(err.message));
    expect(stop.stopped).toBe(false);
    stop.stop('timeout');
    stop.stop('cancelled');
    expect(stop.stopped).toBe(true);
    expect(stop.reason).toBe('timeout');
    expect(aborted).toEqual(['call stopped: timeout']);
  });

  it('aborts at once a call that starts after it was stopped (queued in the pool)', () => {
    const stop = new CallStop();
    stop.stop('shutdown');
    let aborted: Error | null = null;
    stop.onStop((err) => (aborted = err));
    expect(aborted).toMatchObject({ name: 'AbortError', message: 'call stopped: shutdown' });
  });
});
