/**
 * The yardstick for the overhead figures: the same chat requests sent straight to the simulator
 * by a loop of undici `request` calls at the same concurrency, with no server in between.
 */
import { Pool } from 'undici';
import { CHAT_URL, chatBody } from './input-files.ts';

/** Sends `lines` requests, `concurrency` at a time; returns the achieved requests per second. */
export async function bareLoopRate(
  simUrl: string,
  lines: number,
  concurrency: number,
): Promise<number> {
  const pool = new Pool(simUrl, { connections: concurrency });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < lines) {
      const res = await pool.request({
        method: 'POST',
        path: CHAT_URL,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chatBody(next++)),
      });
      await res.body.text();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return lines / seconds;
}
