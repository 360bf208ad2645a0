import { createHash } from 'node:crypto';
import { AppError, badRequest } from '../domain/app-error.ts';
import { IDEMPOTENCY_TTL_MS } from '../domain/idempotency-ttl.ts';
import type { IdempotencyClaim, IdempotencyEntry, Store } from '../store/store.ts';

const MAX_KEY_LENGTH = 255;

/**
 * One request's `Idempotency-Key`: the same key with the same request within 24 h gives back
 * the object the first request made and creates nothing; with another request it is a 409.
 * Keys are per project and per route (`scope`), recorded with the object in one transaction.
 */
export class IdempotencyKey {
  readonly key: string;
  readonly #store: Store;
  readonly #project: string;
  readonly #scope: string;
  readonly #hash: string;
  readonly #nowMs: number;

  private constructor(
    store: Store,
    project: string,
    scope: string,
    key: string,
    hash: string,
    nowMs: number,
  ) {
    this.#store = store;
    this.#project = project;
    this.#scope = scope;
    this.key = key;
    this.#hash = hash;
    this.#nowMs = nowMs;
  }

  /** The request's key, or null when it sent none; `request` is what "the same body" compares. */
  static from(
    headers: Headers,
    request: { store: Store; project: string; scope: string; nowMs: number; body: unknown },
  ): IdempotencyKey | null {
    const key = headers.get('idempotency-key');
    if (key === null) return null;
    if (key.length === 0 || key.length > MAX_KEY_LENGTH)
      throw badRequest(
        `Invalid 'Idempotency-Key' header: expected 1 to ${MAX_KEY_LENGTH} characters.`,
        {
          param: 'Idempotency-Key',
          wireCode: 'invalid_value',
        },
      );
    const hash = createHash('sha256').update(canonicalJson(request.body)).digest('hex');
    return new IdempotencyKey(
      request.store,
      request.project,
      request.scope,
      key,
      hash,
      request.nowMs,
    );
  }

  /** The id of the object an earlier request with this key made, or null when there is none. */
  async heldObjectId(): Promise<string | null> {
    const held = await this.#store.findIdempotencyKey(
      this.#project,
      this.#scope,
      this.key,
      this.#nowMs - IDEMPOTENCY_TTL_MS,
    );
    return held === null ? null : this.replayOf(held);
  }

  /** What to record with a new object (`insertBatch` / `insertFile`). */
  claim(objectId: string): IdempotencyClaim {
    return {
      project: this.#project,
      scope: this.#scope,
      key: this.key,
      request_hash: this.#hash,
      object_id: objectId,
      created_at_ms: this.#nowMs,
      live_after_ms: this.#nowMs - IDEMPOTENCY_TTL_MS,
    };
  }

  /** The entry's object id when it was made by the same request; a 409 otherwise. */
  replayOf(entry: IdempotencyEntry): string {
    if (entry.request_hash !== this.#hash)
      throw new AppError(
        'conflict',
        `Idempotency-Key '${this.key}' was already used in the last 24 hours with a different request body (it made ${entry.object_id}). Send the same request to get that result again, or use a new key for a new request.`,
        { param: 'Idempotency-Key', wireCode: 'idempotency_key_reused' },
      );
    return entry.object_id;
  }

  /** The object made with this key is gone (a deleted file): a replay has nothing to give back. */
  gone(objectId: string): AppError {
    return new AppError(
      'conflict',
      `Idempotency-Key '${this.key}' made ${objectId}, which was deleted since; use a new key.`,
      { param: 'Idempotency-Key', wireCode: 'idempotency_key_reused' },
    );
  }
}

/** JSON with object keys sorted at every level, so key order does not make two bodies differ. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
