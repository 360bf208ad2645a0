import OpenAI from 'openai';
import { createSimulator } from '../../src/simulator/simulator.ts';
import type { Simulator, SimulatorOptions } from '../../src/simulator/simulator.ts';

export interface RunningSim {
  sim: Simulator;
  url: string;
  client: OpenAI;
}

/** Starts a simulator on 127.0.0.1:0, runs `body`, and always closes it. */
export async function withSim<T>(
  options: SimulatorOptions,
  body: (running: RunningSim) => Promise<T>,
): Promise<T> {
  const sim = createSimulator(options);
  const { url } = await sim.listen();
  const client = new OpenAI({ apiKey: 'x', baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });
  try {
    return await body({ sim, url, client });
  } finally {
    await sim.close();
  }
}

export function chatBody(
  content: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra };
}

export function postJson(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Polls `check` every 10 ms until it is true, failing after `limitMs`. */
export async function waitUntil(check: () => boolean, limitMs = 2_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
