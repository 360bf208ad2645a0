import type { Store } from './store.ts';

/** An upstream answer kept by the response cache (a 2xx body, as the upstream sent it). */
export interface CachedResponse {
  /** Whose answer it is: a project, or a shared scope the operator chose. */
  scope: string;
  /** Hash of (upstream, endpoint, canonical body). */
  key: string;
  status: number;
  body: string;
  created_at_ms: number;
  expires_at_ms: number;
}

/** The store operations of the cost controls (issue 13), implemented by both stores. */
export type CostOps = Pick<
  Store,
  'stopBatchEarly' | 'cachedResponse' | 'putCachedResponse' | 'pruneResponseCache'
>;
