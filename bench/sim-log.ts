import { readFileSync } from 'node:fs';

/** One line of the simulator's `--log` call log. */
export interface LoggedCall {
  seq: number;
  atMs: number;
  status: number;
  marker: string | null;
  fault: string | null;
}

export function readCallLog(path: string): LoggedCall[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LoggedCall);
}

/** The `id=` tag a line carried in its `[sim:…]` marker. */
export const markerId = (marker: string | null): string =>
  /id=([^;\]]+)/.exec(marker ?? '')?.[1] ?? '';
