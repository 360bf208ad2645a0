import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { dbPath, recordedIds } from '../helpers/store-peek.ts';
import { chatLine, writeJsonl } from '../helpers/test-server.ts';
import { spawnCli, waitUntil } from '../sdk/helpers/child-run.ts';

const LINES = 10_000;

/**
 * custom_ids whose result the run's state holds as recorded: committed to its spools (or the
 * published files). None before the database and its batch exist.
 */
function recordedIdsOf(stateDir: string): Set<string> {
  if (!existsSync(dbPath(stateDir))) return new Set();
  try {
    return recordedIds(stateDir);
  } catch {
    return new Set();
  }
}

const readJsonl = (path: string): Record<string, any>[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('openbatch run', () => {
  let sim: Simulator;
  let simUrl: string;
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-run-'));
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 20, latencyJitterMs: 10, seed: 7 });
    simUrl = (await sim.listen(0)).url;
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('survives SIGKILL: the rerun completes every custom_id once and re-sends no recorded line', async () => {
    const ids = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    const failing = (i: number): boolean => i % 1_000 === 17;
    const input = writeJsonl(
      ids.map((id, i) =>
        chatLine(id, `[sim:id=${id}${failing(i) ? ';status=400' : ''}] text ${i}`),
      ),
    );
    const stateDir = join(dir, 'state');
    const output = join(dir, 'out.jsonl');
    const errors = join(dir, 'err.jsonl');
    const args = ['run', input, '--upstream', `${simUrl}/v1`, '--state-dir', stateDir];
    const env = { OPENBATCH_TICK_MS: '50', OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '16' };
    const first = spawnCli([...args, '-o', output, '--errors', errors], env);
    await waitUntil(() => recordedIdsOf(stateDir).size >= 2_000, 60_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const callsAtKill = sim.calls().length;
    const recorded = recordedIds(stateDir);
    expect(recorded.size).toBeLessThan(LINES);

    const second = spawnCli([...args, '-o', output, '--errors', errors, '--ordered'], env);
    expect(await second.exited, second.stderr()).toBe(0);

    const out = readJsonl(output);
    const err = readJsonl(errors);
    const seen = [...out, ...err].map((l) => l.custom_id as string);
    expect(seen).toHaveLength(LINES);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(err.map((l) => l.custom_id)).toEqual(ids.filter((_, i) => failing(i)));
    expect(out.map((l) => l.custom_id)).toEqual(ids.filter((_, i) => !failing(i)));
    for (const line of out) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.response.status_code).toBe(200);
      expect(line.error).toBeNull();
    }
    expect(err[0]!.response.status_code).toBe(400);

    const idOf = (marker: string | null) => /id=([^;\]]+)/.exec(marker ?? '')?.[1] ?? '';
    const resent = sim
      .calls()
      .slice(callsAtKill)
      .map((c) => idOf(c.marker))
      .filter((id) => recorded.has(id));
    expect(resent).toEqual([]);

    expect(second.stdout()).toContain(
      `${(LINES - 10).toLocaleString('en-US')} of ${LINES.toLocaleString('en-US')} lines completed`,
    );
    expect(second.stdout()).toMatch(/\| Total +\| +[\d,]+ \| +\$[\d.]+ \| +\$[\d.]+ \|/);
    expect(second.stderr()).toMatch(/run: [\d,]+\/10,000 done/);
  }, 180_000);
});
