import { classifyStatus, classifyTransportError } from './classify.ts';
import type { BatchApi, UpstreamBatchInfo } from './provider.ts';

/**
 * OpenAI's Files + Batches API at `baseUrl` (…/v1), used by the native runner: OpenAI, Azure
 * OpenAI's v1 API, another openbatch, the simulator with `batchApi`. The key goes in a header
 * and never into an error message.
 */
export function createOpenAiBatchApi(baseUrl: string, apiKey: string | null): BatchApi {
  const base = baseUrl.replace(/\/+$/, '');
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};

  const call = async (
    method: string,
    path: string,
    signal: AbortSignal,
    body?: FormData | string,
  ): Promise<Response> => {
    const headers: Record<string, string> = { ...auth };
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, headers, body: body ?? null, signal });
    } catch (err) {
      throw classifyTransportError(err);
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    const failure = classifyStatus(res.status, Object.fromEntries(res.headers), Date.now());
    if (failure) failure.message = `${method} ${path}: ${failure.message}: ${text.slice(0, 300)}`;
    throw failure ?? new Error(`${method} ${path} answered ${res.status}`);
  };
  const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

  return {
    probe: async (signal) => {
      try {
        const res = await fetch(`${base}/batches?limit=1`, { headers: auth, signal });
        const text = await res.text();
        if (res.status !== 200)
          return { available: false, detail: `GET /batches answered ${res.status}` };
        return isBatchList(text)
          ? { available: true, detail: 'GET /batches answered a list of batches' }
          : { available: false, detail: 'GET /batches answered 200 but not a list of batches' };
      } catch (err) {
        return { available: false, detail: `GET /batches failed: ${(err as Error).message}` };
      }
    },
    uploadFile: async (filename, content, signal) => {
      const form = new FormData();
      form.append('purpose', 'batch');
      form.append('file', new Blob([content], { type: 'application/jsonl' }), filename);
      return json<{ id: string }>(await call('POST', '/files', signal, form));
    },
    createBatch: async (params, signal) =>
      json<UpstreamBatchInfo>(
        await call(
          'POST',
          '/batches',
          signal,
          JSON.stringify({ ...params, completion_window: '24h' }),
        ),
      ),
    getBatch: async (id, signal) =>
      json<UpstreamBatchInfo>(await call('GET', `/batches/${encodeURIComponent(id)}`, signal)),
    listBatches: async (after, signal) => {
      const query = after ? `?limit=100&after=${encodeURIComponent(after)}` : '?limit=100';
      return json<{ data: UpstreamBatchInfo[]; has_more: boolean }>(
        await call('GET', `/batches${query}`, signal),
      );
    },
    cancelBatch: async (id, signal) =>
      json<UpstreamBatchInfo>(
        await call('POST', `/batches/${encodeURIComponent(id)}/cancel`, signal),
      ),
    fileContent: async (id, signal) =>
      (await call('GET', `/files/${encodeURIComponent(id)}/content`, signal)).text(),
    deleteFile: async (id, signal) => {
      await (await call('DELETE', `/files/${encodeURIComponent(id)}`, signal)).arrayBuffer();
    },
  };
}

/** A list whose items are batches (a catch-all 200 answering any GET is not a Batch API). */
function isBatchList(text: string): boolean {
  try {
    const value = JSON.parse(text) as { object?: unknown; data?: unknown };
    return (
      value.object === 'list' &&
      Array.isArray(value.data) &&
      value.data.every((b) => (b as { object?: unknown } | null)?.object === 'batch')
    );
  } catch {
    return false;
  }
}
