/**
 * A simulated OpenAI-compatible upstream for demos, tests and benchmarks (plain node:http, no deps).
 *
 * Routes (also accepted without the /v1 prefix): POST /v1/chat/completions (stream: true → SSE),
 * /v1/completions, /v1/responses, /v1/embeddings (float or base64), /v1/moderations; GET /v1/models
 * and /v1/models/{id}. Replies are deterministic: derived from the sha256 of the raw request body.
 * With the `batchApi` option it also serves OpenAI's Files + Batches API (batch-api-route.ts):
 * enqueued-token limit per model, turnaround, cancel and expiry with partial results.
 *
 * Per-request directives script outcomes for specific lines: the first `[sim:...]` found anywhere in
 * the raw body text (usually inside a message or an embeddings input), `;`-separated:
 *   status=429        answer that status with OpenAI's error envelope (429 carries retry-after-ms/-after)
 *   status=500x2      fail the first 2 calls carrying this exact body, then answer normally
 *   times=2           same limit for any fault below (e.g. `reset;times=1`)
 *   latency=1500      answer after exactly 1500 ms instead of the configured latency
 *   reset             destroy the socket (RST) before sending headers
 *   reset-mid-body    send headers and half the body, then reset
 *   hang              never answer; the socket stays open until the client gives up or close()
 *   malformed         200, application/json, truncated JSON body
 *   trickle=50        send the body in 64-byte chunks 50 ms apart
 *   id=line-17        ignored by the fault logic; only tags the call (the whole marker text is logged)
 *
 * Order of checks for a valid request: rate limit (429, immediate) → capacity slot (503 when the queue
 * is full) → scripted fault, else random fault (failRate) → answer after the latency. Every decided
 * call is logged (calls(), optional JSONL file) before the latency wait, with its final status.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { SimBatchApi } from './batch-api-route.ts';
import { chatRoute } from './chat-route.ts';
import { completionRoute } from './completion-route.ts';
import { embeddingRoute } from './embedding-route.ts';
import { errorJson, invalidUrl } from './error-bodies.ts';
import { moderationRoute } from './moderation-route.ts';
import { deliver } from './reply-writer.ts';
import { handlePost, headersFor } from './request-flow.ts';
import { responseRoute } from './response-route.ts';
import type { SimRoute } from './route-types.ts';
import { createSimState } from './sim-state.ts';
import type { SimState } from './sim-state.ts';
import type { Simulator, SimulatorOptions } from './types.ts';

export type {
  SimBatchApiOptions,
  SimCall,
  SimCapacity,
  SimClock,
  SimFault,
  Simulator,
  SimulatorOptions,
  SimUpstreamBatch,
} from './types.ts';

const ROUTES: ReadonlyMap<string, SimRoute> = new Map([
  ['/chat/completions', chatRoute],
  ['/completions', completionRoute],
  ['/responses', responseRoute],
  ['/embeddings', embeddingRoute],
  ['/moderations', moderationRoute],
]);

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const NO_FAULT = { action: null, trickleMs: null } as const;

export function createSimulator(options: SimulatorOptions = {}): Simulator {
  const state = createSimState(options);
  const batchApi = options.batchApi ? new SimBatchApi(state, ROUTES, options.batchApi) : null;
  const server = createServer((req, res) => onRequest(state, batchApi, req, res));
  // Longer than client pools keep idle sockets, so a benchmark never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  let closing: Promise<void> | null = null;
  return {
    listen: (port = 0, host = '127.0.0.1') => listenOn(server, port, host),
    close: () => (closing ??= closeAll(server, state)),
    calls: () => state.log.list(),
    reset: () => {
      state.log.clear();
      state.rate?.reset();
      state.faultCounts.clear();
    },
    upstreamBatches: () =>
      (batchApi?.batches.all() ?? []).map((b) => ({
        id: b.id,
        status: b.status,
        model: b.model,
        lines: b.lines.length,
        tokens: b.tokens,
        metadata: b.metadata,
        errorCodes: (b.errors ?? []).map((e) => e.code),
      })),
  };
}

function onRequest(
  state: SimState,
  batchApi: SimBatchApi | null,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  const local = path.startsWith('/v1/') ? path.slice(3) : path;
  if (batchApi?.handles(local)) {
    const params = new URLSearchParams(query === -1 ? '' : url.slice(query + 1));
    return readBody(req, res, (raw) => batchApi.handle(req, res, path, local, raw, params));
  }
  if (method === 'POST') {
    const route = ROUTES.get(local);
    if (route !== undefined)
      return readBody(req, res, (raw) => handlePost(state, res, path, route, raw));
  } else if (method === 'GET' && (local === '/models' || local.startsWith('/models/'))) {
    return answerModels(state, res, path, local.slice('/models/'.length));
  }
  const headers = headersFor(state, 'application/json', null);
  deliver(res, 404, headers, errorJson(invalidUrl(method, path)), NO_FAULT);
}

function readBody(req: IncomingMessage, res: ServerResponse, done: (raw: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY_BYTES) {
      const error = {
        message: 'Request body too large',
        type: 'invalid_request_error',
        param: null,
        code: null,
      };
      deliver(res, 413, { 'content-type': 'application/json' }, errorJson(error), NO_FAULT);
      return;
    }
    done(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size));
  });
  // A client that disconnects mid-upload is not an error of ours; 'end' simply never comes.
  req.on('error', () => undefined);
}

function answerModels(state: SimState, res: ServerResponse, path: string, id: string): void {
  const created = 1_700_000_000;
  const modelObject = (name: string): object => ({
    id: name,
    object: 'model',
    created,
    owned_by: 'openbatch-sim',
  });
  let status = 200;
  let body: string;
  if (id === '') {
    body = JSON.stringify({ object: 'list', data: state.models.map(modelObject) });
  } else if (state.models.includes(id)) {
    body = JSON.stringify(modelObject(id));
  } else {
    status = 404;
    const message = `The model '${id}' does not exist`;
    body = errorJson({
      message,
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    });
  }
  const call = { atMs: state.clock.nowMs(), path, model: id === '' ? null : id, status };
  state.log.append({ ...call, bodySha256: EMPTY_SHA256, marker: null, fault: null });
  deliver(res, status, headersFor(state, 'application/json', null), body, NO_FAULT);
}

function listenOn(
  server: Server,
  port: number,
  host: string,
): Promise<{ url: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      const actual = typeof address === 'object' && address !== null ? address.port : port;
      const hostPart = host.includes(':') ? `[${host}]` : host;
      resolve({ url: `http://${hostPart}:${actual}`, port: actual });
    });
  });
}

async function closeAll(server: Server, state: SimState): Promise<void> {
  if (server.listening) {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Hung and trickling requests included: close() must not wait for clients to give up.
      server.closeAllConnections();
    });
  }
  // Waiters granted now find their sockets gone and release at once.
  state.gate?.drain();
  await state.log.close();
}
