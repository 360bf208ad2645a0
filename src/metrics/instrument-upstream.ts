import type { Counter, Histogram } from 'prom-client';
import { ProviderError, type Upstream } from '../providers/provider.ts';

/** The series an instrumented upstream feeds. */
export interface UpstreamSeries {
  requests: Counter<'upstream' | 'model' | 'status'>;
  durationSeconds: Histogram<'upstream' | 'model'>;
}

const MODEL_FIELD = /"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"/;

/**
 * The body's `model`, read without parsing the whole body again (the dispatcher already did):
 * the first `"model": "…"` pair, which is the top-level field in every line a client writes.
 */
export function modelOfBody(body: string): string {
  const model = MODEL_FIELD.exec(body)?.[1];
  // A copy: a regex capture may be a slice that keeps the whole body alive in the counter's labels.
  return model === undefined ? 'unknown' : Buffer.from(model, 'utf8').toString('utf8');
}

/**
 * Wraps an upstream so each batch call counts into `openbatch_upstream_requests_total` (by HTTP
 * status, or the transport failure's kind) and `openbatch_upstream_request_duration_seconds`.
 * The engine sees the same Upstream interface; nothing in its path changes.
 */
export function instrumentUpstream(
  upstream: Upstream,
  series: UpstreamSeries,
  nowMs: () => number,
): Upstream {
  const send: Upstream['send'] = async (req) => {
    const labels = { upstream: upstream.name, model: modelOfBody(req.body) };
    const startedMs = nowMs();
    let status = 'error';
    try {
      const res = await upstream.send(req);
      status = String(res.status);
      return res;
    } catch (err) {
      if (err instanceof ProviderError) status = err.kind;
      throw err;
    } finally {
      series.requests.inc({ ...labels, status });
      series.durationSeconds.observe(labels, (nowMs() - startedMs) / 1000);
    }
  };
  return {
    name: upstream.name,
    maxConcurrency: upstream.maxConcurrency,
    send,
    forward: (req) => upstream.forward(req),
    close: () => upstream.close(),
  };
}
