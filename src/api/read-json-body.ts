import { badRequest } from '../domain/app-error.ts';
import { unparsableBody } from '../domain/create-batch-params.ts';
import { jsonNestingDepth } from '../lib/json-depth.ts';
import type { BodyBudget } from './body-budget.ts';

const MAX_BODY_DEPTH = 256;

/**
 * Reads a JSON request body with a size cap, within the server's budget of bodies in memory;
 * empty bodies give `{}` (v4 SDKs send them).
 */
export async function readJsonBody(
  req: Request,
  maxBytes: number,
  budget: BodyBudget,
): Promise<{ text: string; value: unknown }> {
  const length = Number(req.headers.get('content-length') ?? '0');
  if (length > maxBytes)
    throw badRequest(`Request body too large: the limit is ${maxBytes} bytes.`);
  const held = budget.open();
  let text: string;
  try {
    text = await readCapped(req, maxBytes, held.add);
  } finally {
    held.release();
  }
  if (text.trim() === '') return { text: '{}', value: {} };
  if (jsonNestingDepth(text) > MAX_BODY_DEPTH)
    throw badRequest(`Request body nested deeper than ${MAX_BODY_DEPTH} levels.`);
  try {
    return { text, value: JSON.parse(text) as unknown };
  } catch {
    throw unparsableBody();
  }
}

async function readCapped(
  req: Request,
  maxBytes: number,
  hold: (bytes: number) => void,
): Promise<string> {
  if (!req.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    hold(chunk.length);
    size += chunk.length;
    if (size > maxBytes)
      throw badRequest(`Request body too large: the limit is ${maxBytes} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
