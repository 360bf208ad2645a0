import { invalidParam } from './error-bodies.ts';
import { DEFAULT_MAX_TOKENS, reject } from './route-types.ts';
import type { RoutePlan, RouteRejection, SimRoute } from './route-types.ts';
import { completionLength, estimateTokens, maxTokensOf, replyText } from './text-synth.ts';

/** POST /v1/completions: a legacy `text_completion` object (no streaming). */
export const completionRoute: SimRoute = {
  defaultModel: null,
  plan: planCompletion,
};

function planCompletion(body: Record<string, unknown>, model: string): RoutePlan | RouteRejection {
  const prompt = promptText(body['prompt']);
  if (prompt === null)
    return reject(
      400,
      invalidParam('prompt', "Invalid 'prompt': expected a string or an array of strings."),
    );
  const promptTokens = estimateTokens(prompt);
  const maxTokens = maxTokensOf(body, ['max_tokens']);
  return {
    ok: true,
    admissionTokens: promptTokens + (maxTokens ?? DEFAULT_MAX_TOKENS),
    render: (ctx) => {
      const length = completionLength(ctx.hashHex, maxTokens);
      const completion = {
        id: ctx.newId('cmpl-'),
        object: 'text_completion',
        created: Math.floor(ctx.nowMs / 1000),
        model,
        choices: [
          {
            text: replyText(prompt, ctx.hashHex, length.tokens),
            index: 0,
            logprobs: null,
            finish_reason: length.truncated ? 'length' : 'stop',
          },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: length.tokens,
          total_tokens: promptTokens + length.tokens,
        },
        system_fingerprint: 'fp_sim0001',
      };
      return { kind: 'json', body: JSON.stringify(completion) };
    },
  };
}

function promptText(prompt: unknown): string | null {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt)) return prompt.filter((p) => typeof p === 'string').join('\n');
  return null;
}
