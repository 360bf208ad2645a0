import { invalidParam } from './error-bodies.ts';
import { DEFAULT_MAX_TOKENS, reject } from './route-types.ts';
import type { ReplyContext, RoutePlan, RouteRejection, SimRoute } from './route-types.ts';
import { completionLength, contentText, isRecord, maxTokensOf, replyText } from './text-synth.ts';

/**
 * POST /v1/responses: a `response` object. `output_text` is deliberately absent: the SDKs derive it
 * from `output`, and the real API does not send it either.
 */
export const responseRoute: SimRoute = {
  defaultModel: null,
  plan: planResponse,
};

interface InputSummary {
  chars: number;
  items: number;
  lastUser: string;
}

function planResponse(body: Record<string, unknown>, model: string): RoutePlan | RouteRejection {
  const input = summarizeInput(body['input']);
  if (input === null)
    return reject(
      400,
      invalidParam('input', "Invalid 'input': expected a string or an array of input items."),
    );
  const instructions = typeof body['instructions'] === 'string' ? body['instructions'] : null;
  const inputTokens = Math.ceil((input.chars + (instructions?.length ?? 0)) / 4) + 4 * input.items;
  const maxTokens = maxTokensOf(body, ['max_output_tokens']);
  return {
    ok: true,
    admissionTokens: inputTokens + (maxTokens ?? DEFAULT_MAX_TOKENS),
    render: (ctx) => ({
      kind: 'json',
      body: JSON.stringify(
        responseObject(ctx, body, model, input.lastUser, inputTokens, maxTokens),
      ),
    }),
  };
}

function summarizeInput(input: unknown): InputSummary | null {
  if (typeof input === 'string') return { chars: input.length, items: 1, lastUser: input };
  if (!Array.isArray(input) || input.length === 0) return null;
  const summary: InputSummary = { chars: 0, items: input.length, lastUser: '' };
  for (const item of input) {
    if (!isRecord(item)) continue;
    const text = contentText(item['content']);
    summary.chars += text.length;
    if (item['role'] === 'user') summary.lastUser = text;
  }
  return summary;
}

function responseObject(
  ctx: ReplyContext,
  body: Record<string, unknown>,
  model: string,
  prompt: string,
  inputTokens: number,
  maxTokens: number | null,
): Record<string, unknown> {
  const length = completionLength(ctx.hashHex, maxTokens);
  const text = replyText(prompt, ctx.hashHex, length.tokens);
  // Field set and order follow a real Responses API object; echoed settings come from the body.
  return {
    id: ctx.newId('resp_'),
    object: 'response',
    created_at: Math.floor(ctx.nowMs / 1000),
    status: length.truncated ? 'incomplete' : 'completed',
    error: null,
    incomplete_details: length.truncated ? { reason: 'max_output_tokens' } : null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: maxTokens,
    model,
    output: [outputMessage(ctx, text, length.truncated)],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: body['store'] !== false,
    temperature: typeof body['temperature'] === 'number' ? body['temperature'] : 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: typeof body['top_p'] === 'number' ? body['top_p'] : 1,
    truncation: 'disabled',
    usage: usageOf(inputTokens, length.tokens),
    user: null,
    metadata: isRecord(body['metadata']) ? body['metadata'] : {},
  };
}

function outputMessage(
  ctx: ReplyContext,
  text: string,
  truncated: boolean,
): Record<string, unknown> {
  return {
    type: 'message',
    id: ctx.newId('msg_'),
    status: truncated ? 'incomplete' : 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
}

function usageOf(inputTokens: number, outputTokens: number): Record<string, unknown> {
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
}
