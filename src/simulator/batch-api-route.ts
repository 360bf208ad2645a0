import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorJson } from './error-bodies.ts';
import { deliver } from './reply-writer.ts';
import { headersFor } from './request-flow.ts';
import type { SimRoute } from './route-types.ts';
import { batchObject, SimBatches, type SimBatch } from './sim-batches.ts';
import { fileObject, parseMultipart, type SimFile } from './sim-files.ts';
import type { SimState } from './sim-state.ts';
import { isRecord } from './text-synth.ts';
import type { SimBatchApiOptions } from './types.ts';

const NO_FAULT = { action: null, trickleMs: null } as const;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

interface Answer {
  status: number;
  body: string | Buffer;
  contentType?: string;
}

/**
 * OpenAI's Files + Batches API on the simulator (`batchApi` option): POST/GET /v1/files,
 * GET /v1/files/{id}[/content], DELETE /v1/files/{id}, POST/GET /v1/batches,
 * GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. Every call is logged with its path.
 */
export class SimBatchApi {
  readonly #state: SimState;
  readonly #files = new Map<string, SimFile>();
  readonly #options: SimBatchApiOptions;
  readonly batches: SimBatches;

  constructor(state: SimState, routes: ReadonlyMap<string, SimRoute>, options: SimBatchApiOptions) {
    this.#state = state;
    this.#options = options;
    this.batches = new SimBatches(state, routes, options, this.#files);
  }

  handles(local: string): boolean {
    return (
      local === '/files' ||
      local.startsWith('/files/') ||
      local === '/batches' ||
      local.startsWith('/batches/')
    );
  }

  handle(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    local: string,
    raw: Buffer,
    query: URLSearchParams,
  ): void {
    let answer: Answer;
    try {
      answer = this.#route(req.method ?? 'GET', local, req.headers['content-type'], raw, query);
    } catch (err) {
      answer = invalid((err as Error).message);
    }
    this.#state.log.append({
      atMs: this.#state.clock.nowMs(),
      path: `${req.method ?? 'GET'} ${path}`,
      model: null,
      status: answer.status,
      bodySha256: EMPTY_SHA256,
      marker: null,
      fault: null,
    });
    const delayMs =
      req.method === 'POST' && local === '/batches'
        ? (this.#options.createLatencyMs ?? 0)
        : local.endsWith('/content')
          ? (this.#options.contentLatencyMs ?? 0)
          : 0;
    if (delayMs > 0) setTimeout(() => this.#send(res, answer), delayMs).unref();
    else this.#send(res, answer);
  }

  #send(res: ServerResponse, answer: Answer): void {
    if (res.destroyed) return;
    const headers = headersFor(this.#state, answer.contentType ?? 'application/json', null);
    if (typeof answer.body === 'string')
      return deliver(res, answer.status, headers, answer.body, NO_FAULT);
    headers['content-length'] = answer.body.length;
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }

  #route(
    method: string,
    local: string,
    contentType: string | undefined,
    raw: Buffer,
    query: URLSearchParams,
  ): Answer {
    const parts = local.split('/').filter(Boolean); // ['files', id, 'content'] …
    const [kind, id, action] = parts;
    if (kind === 'files') {
      if (method === 'POST' && id === undefined) return this.#upload(contentType, raw);
      if (method === 'GET' && id === undefined)
        return ok({
          object: 'list',
          data: [...this.#files.values()].map(fileObject),
          has_more: false,
        });
      const file = id === undefined ? undefined : this.#files.get(id);
      if (!file) return notFound(`No such File object: ${id ?? ''}`);
      if (method === 'GET' && action === 'content')
        return { status: 200, body: file.content, contentType: 'application/octet-stream' };
      if (method === 'GET' && action === undefined) return ok(fileObject(file));
      if (method === 'DELETE' && action === undefined) {
        this.#files.delete(file.id);
        return ok({ id: file.id, object: 'file', deleted: true });
      }
    } else if (kind === 'batches') {
      if (method === 'POST' && id === undefined) return this.#create(raw);
      if (method === 'GET' && id === undefined) return this.#list(query);
      const batch = id === undefined ? null : this.batches.get(id);
      if (!batch) return notFound(`No batch found with id '${id ?? ''}'.`);
      if (method === 'GET' && action === undefined) return ok(batchObject(batch));
      if (method === 'POST' && action === 'cancel') return this.#cancel(batch);
    }
    return {
      status: 404,
      body: errorJson({
        message: `Invalid URL (${method} /v1${local})`,
        type: 'invalid_request_error',
        param: null,
        code: null,
      }),
    };
  }

  #upload(contentType: string | undefined, raw: Buffer): Answer {
    const form = parseMultipart(contentType, raw);
    if (!form?.file) return invalid("Missing required parameter: 'file'.");
    const purpose = form.fields.get('purpose') ?? '';
    if (purpose !== 'batch') return invalid(`Invalid value for 'purpose': '${purpose}'.`);
    const file: SimFile = {
      id: this.#state.newId('file-'),
      purpose,
      filename: form.file.filename,
      content: form.file.content,
      createdAtMs: this.#state.clock.nowMs(),
    };
    this.#files.set(file.id, file);
    return ok(fileObject(file));
  }

  #create(raw: Buffer): Answer {
    const body: unknown = JSON.parse(raw.toString('utf8'));
    if (!isRecord(body)) return invalid('Expected a JSON object.');
    const { input_file_id, endpoint, completion_window, metadata } = body;
    if (typeof input_file_id !== 'string')
      return invalid("Missing required parameter: 'input_file_id'.");
    if (typeof endpoint !== 'string') return invalid("Missing required parameter: 'endpoint'.");
    const batch = this.batches.create({
      input_file_id,
      endpoint,
      completion_window: typeof completion_window === 'string' ? completion_window : '24h',
      metadata: isRecord(metadata) ? (metadata as Record<string, string>) : null,
    });
    return ok(batchObject(batch));
  }

  #list(query: URLSearchParams): Answer {
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
    let all = this.batches.list();
    const after = query.get('after');
    if (after) {
      const at = all.findIndex((b) => b.id === after);
      all = at === -1 ? [] : all.slice(at + 1);
    }
    const page = all.slice(0, limit);
    return ok({
      object: 'list',
      data: page.map(batchObject),
      first_id: page[0]?.id ?? null,
      last_id: page[page.length - 1]?.id ?? null,
      has_more: all.length > limit,
    });
  }

  #cancel(batch: SimBatch): Answer {
    if (['completed', 'failed', 'expired'].includes(batch.status))
      return {
        status: 409,
        body: errorJson({
          message: `Cannot cancel a batch with status '${batch.status}'.`,
          type: 'invalid_request_error',
          param: null,
          code: null,
        }),
      };
    return ok(batchObject(this.batches.cancel(batch.id) ?? batch));
  }
}

const ok = (value: unknown): Answer => ({ status: 200, body: JSON.stringify(value) });

function invalid(message: string): Answer {
  return {
    status: 400,
    body: errorJson({ message, type: 'invalid_request_error', param: null, code: null }),
  };
}

function notFound(message: string): Answer {
  return {
    status: 404,
    body: errorJson({ message, type: 'invalid_request_error', param: null, code: null }),
  };
}
