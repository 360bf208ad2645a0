import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { PricingOverrides } from '../protocol/model-pricing.ts';

export {
  BATCH_PRICE_MULTIPLIER,
  costOf,
  priceForModel,
  type CostParts,
  type ModelPrice,
  type PricingOverrides,
} from '../protocol/model-pricing.ts';

const overrideSchema = z
  .object({
    inputPerMTok: z.number().min(0),
    cachedInputPerMTok: z.number().min(0).optional(),
    outputPerMTok: z.number().min(0),
    batchMultiplier: z.number().min(0).max(1).optional(),
  })
  .strict();
const overridesSchema = z.record(z.string().min(1), overrideSchema);

/** Reads a pricing file: `{ "<model>": { inputPerMTok, cachedInputPerMTok?, outputPerMTok } }`. */
export function loadPricingFile(path: string): PricingOverrides {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`pricing file ${path}: ${(err as Error).message}`);
  }
  const parsed = overridesSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `pricing file ${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
