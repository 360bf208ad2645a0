import { invalidParam } from './error-bodies.ts';
import { seedFromHex } from './prng.ts';
import { reject } from './route-types.ts';
import type { RoutePlan, RouteRejection, SimRoute } from './route-types.ts';
import { contentText, estimateTokens } from './text-synth.ts';

/** POST /v1/moderations: never flags anything. `model` is optional here, as in the real API. */
export const moderationRoute: SimRoute = {
  defaultModel: 'omni-moderation-latest',
  plan: planModeration,
};

const CATEGORIES = ['harassment', 'hate', 'illicit', 'self-harm', 'sexual', 'violence'] as const;

function planModeration(body: Record<string, unknown>, model: string): RoutePlan | RouteRejection {
  const inputs = inputsOf(body['input']);
  if (inputs === null)
    return reject(400, invalidParam('input', "Invalid 'input': expected a string or an array."));
  let tokens = 0;
  for (const input of inputs) tokens += estimateTokens(input);
  return {
    ok: true,
    admissionTokens: tokens,
    render: (ctx) => {
      // A tiny hash-derived score keeps replies deterministic without looking all-zero.
      const score = (seedFromHex(ctx.hashHex) % 1000) / 1_000_000;
      const categories: Record<string, boolean> = {};
      const scores: Record<string, number> = {};
      for (const name of CATEGORIES) {
        categories[name] = false;
        scores[name] = score;
      }
      const results = inputs.map(() => ({ flagged: false, categories, category_scores: scores }));
      return { kind: 'json', body: JSON.stringify({ id: ctx.newId('modr-'), model, results }) };
    },
  };
}

function inputsOf(input: unknown): string[] | null {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return null;
  // Multi-modal items ({type:'text', text} / {type:'image_url', …}) are one input each.
  return input.map((item) => (typeof item === 'string' ? item : contentText([item])));
}
