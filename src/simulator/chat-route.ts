import { invalidParam } from './error-bodies.ts';
import type { PrefixCache } from './prefix-cache.ts';
import { DEFAULT_MAX_TOKENS, reject } from './route-types.ts';
import type { ReplyContext, RoutePlan, RouteRejection, SimReply, SimRoute } from './route-types.ts';
import { completionLength, contentText, isRecord, maxTokensOf, replyText } from './text-synth.ts';

/** POST /v1/chat/completions: a `chat.completion` object, or SSE chunks when `stream: true`. */

const FINGERPRINT = 'fp_sim0001';
const MAX_N = 16;

interface ChatAnswer {
  id: string;
  created: number;
  model: string;
  text: string;
  n: number;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  /** Part of the prompt the modelled prompt cache held. */
  cachedTokens: number;
  completionTokens: number;
}

export const chatRoute: SimRoute = {
  defaultModel: null,
  plan: planChat,
};

function planChat(
  body: Record<string, unknown>,
  model: string,
  prefixCache?: PrefixCache | null,
): RoutePlan | RouteRejection {
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) {
    return reject(400, invalidParam('messages', "Invalid 'messages': expected a non-empty array."));
  }
  let chars = 0;
  let lastUser = '';
  let prompt = '';
  for (const message of messages) {
    if (!isRecord(message)) continue;
    const text = contentText(message['content']);
    chars += text.length;
    if (prefixCache) prompt += `${String(message['role'])}\n${text}\n`;
    if (message['role'] === 'user') lastUser = text;
  }
  const promptTokens = Math.ceil(chars / 4) + 4 * messages.length;
  const key = typeof body['prompt_cache_key'] === 'string' ? body['prompt_cache_key'] : null;
  const cachedTokens = prefixCache?.cachedTokens(model, prompt, promptTokens, key) ?? 0;
  const maxTokens = maxTokensOf(body, ['max_completion_tokens', 'max_tokens']);
  const n = choiceCount(body['n']);
  const stream = body['stream'] === true;
  const includeUsage =
    isRecord(body['stream_options']) && body['stream_options']['include_usage'] === true;
  return {
    ok: true,
    admissionTokens: promptTokens + (maxTokens ?? DEFAULT_MAX_TOKENS) * n,
    render: (ctx) => {
      const answer = {
        ...answerOf(ctx, model, lastUser, promptTokens, maxTokens, n),
        cachedTokens,
      };
      return stream ? streamReply(answer, includeUsage) : jsonReply(answer);
    },
  };
}

function choiceCount(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0
    ? Math.min(value, MAX_N)
    : 1;
}

function answerOf(
  ctx: ReplyContext,
  model: string,
  prompt: string,
  promptTokens: number,
  maxTokens: number | null,
  n: number,
): ChatAnswer {
  const length = completionLength(ctx.hashHex, maxTokens);
  return {
    id: ctx.newId('chatcmpl-'),
    created: Math.floor(ctx.nowMs / 1000),
    model,
    text: replyText(prompt, ctx.hashHex, length.tokens),
    n,
    finishReason: length.truncated ? 'length' : 'stop',
    promptTokens,
    cachedTokens: 0,
    completionTokens: length.tokens * n,
  };
}

function usageOf(answer: ChatAnswer): Record<string, unknown> {
  return {
    prompt_tokens: answer.promptTokens,
    completion_tokens: answer.completionTokens,
    total_tokens: answer.promptTokens + answer.completionTokens,
    prompt_tokens_details: { cached_tokens: answer.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function jsonReply(answer: ChatAnswer): SimReply {
  const choices = [];
  for (let index = 0; index < answer.n; index += 1) {
    choices.push({
      index,
      message: { role: 'assistant', content: answer.text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: answer.finishReason,
    });
  }
  const completion = {
    id: answer.id,
    object: 'chat.completion',
    created: answer.created,
    model: answer.model,
    choices,
    usage: usageOf(answer),
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  };
  return { kind: 'json', body: JSON.stringify(completion) };
}

/** SSE: a role chunk, content pieces of a few words, a finish chunk, [usage chunk], [DONE]. */
function streamReply(answer: ChatAnswer, includeUsage: boolean): SimReply {
  const head = `{"id":"${answer.id}","object":"chat.completion.chunk","created":${answer.created},"model":${JSON.stringify(answer.model)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}","choices":`;
  const tail = includeUsage ? ',"usage":null}' : '}';
  const event = (choices: unknown[], end = tail): string =>
    `data: ${head}${JSON.stringify(choices)}${end}\n\n`;
  const pieces = splitPieces(answer.text);
  let out = '';
  for (let index = 0; index < answer.n; index += 1) {
    out += event([delta(index, { role: 'assistant', content: '', refusal: null }, null)]);
    for (const piece of pieces) out += event([delta(index, { content: piece }, null)]);
    out += event([delta(index, {}, answer.finishReason)]);
  }
  if (includeUsage) out += event([], `,"usage":${JSON.stringify(usageOf(answer))}}`);
  return { kind: 'sse', body: `${out}data: [DONE]\n\n` };
}

function delta(index: number, content: Record<string, unknown>, finish: string | null): unknown {
  return { index, delta: content, logprobs: null, finish_reason: finish };
}

function splitPieces(text: string): string[] {
  const words = text.split(' ');
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += 4) {
    const piece = words.slice(i, i + 4).join(' ');
    pieces.push(i === 0 ? piece : ` ${piece}`);
  }
  return pieces;
}
