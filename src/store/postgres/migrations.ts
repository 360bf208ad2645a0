import type pg from 'pg';
import { inTransaction } from './pg-pool.ts';

/**
 * Append-only schema steps for PostgreSQL, the same tables as the SQLite store's current schema
 * (times epoch ms, JSON as text, ids as text). `openbatch_schema` records how many ran.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'member',
    created_at_ms BIGINT NOT NULL
  );
  CREATE TABLE files (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    purpose TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    seq BIGSERIAL NOT NULL
  );
  CREATE INDEX files_project_seq ON files (project, seq);
  CREATE INDEX files_expiry ON files (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
  CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    seq BIGSERIAL NOT NULL,
    project TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    errors TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    created_at_ms BIGINT NOT NULL,
    in_progress_at_ms BIGINT,
    expires_at_ms BIGINT NOT NULL,
    finalizing_at_ms BIGINT,
    completed_at_ms BIGINT,
    failed_at_ms BIGINT,
    expired_at_ms BIGINT,
    cancelling_at_ms BIGINT,
    cancelled_at_ms BIGINT,
    total BIGINT NOT NULL DEFAULT 0,
    completed BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    metadata TEXT,
    output_expires_after_seconds BIGINT,
    output_bytes BIGINT NOT NULL DEFAULT 0,
    error_bytes BIGINT NOT NULL DEFAULT 0,
    expired_lines BIGINT NOT NULL DEFAULT 0,
    reserved_output_file_id TEXT,
    reserved_error_file_id TEXT
  );
  CREATE INDEX batches_project_seq ON batches (project, seq);
  CREATE INDEX batches_status ON batches (status);
  CREATE INDEX batches_input_file ON batches (input_file_id);
  CREATE TABLE chunks (
    chunk_id BIGSERIAL PRIMARY KEY,
    batch_id TEXT NOT NULL,
    upstream TEXT NOT NULL,
    deadline_ms BIGINT NOT NULL,
    first_line BIGINT NOT NULL,
    line_count INTEGER NOT NULL,
    byte_start BIGINT NOT NULL,
    byte_end BIGINT NOT NULL,
    offsets BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    not_before_ms BIGINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_gen INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms BIGINT,
    lease_losses INTEGER NOT NULL DEFAULT 0,
    unmarked_losses INTEGER NOT NULL DEFAULT 0,
    done BYTEA,
    sent BYTEA,
    last_error TEXT
  );
  CREATE INDEX chunks_queue ON chunks (upstream, deadline_ms, first_line, chunk_id) WHERE state = 'queued';
  CREATE INDEX chunks_leases ON chunks (lease_expires_ms) WHERE state = 'leased';
  CREATE INDEX chunks_batch ON chunks (batch_id, state);
  `,
  // Answers of running batches, one row per batch and file per group commit (every process of a
  // cluster records answers; whichever finalizes the batch reads them in byte order). A row's
  // byte_start is the batch's committed length when it was written, taken under the batch row's
  // lock: positions are contiguous and in commit order, like an embedded store's spool.
  `
  CREATE TABLE answers (
    batch_id TEXT NOT NULL,
    file TEXT NOT NULL,
    byte_start BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (batch_id, file, byte_start)
  );
  `,
  // Idempotency keys and webhooks, as in the SQLite store's migrations 7 and 8.
  `
  CREATE TABLE idempotency_keys (
    project TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    object_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (project, scope, key)
  );
  CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
  CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
  );
  CREATE INDEX webhook_endpoints_project ON webhook_endpoints (project, created_at_ms);
  CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    delivery_id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    finished_at_ms BIGINT,
    UNIQUE (event_id, endpoint_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 'pending';
  CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, delivery_id);
  `,
  // Cluster rate limits (ClusterLimits): who sends on which key, and 429 cooldowns. Times are
  // the database's (timestamptz), so processes need not agree on the time.
  `
  CREATE TABLE limiter_members (
    member_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (member_id, key)
  );
  CREATE TABLE limiter_cooldowns (
    key TEXT PRIMARY KEY,
    until_at TIMESTAMPTZ NOT NULL
  );
  `,
  // Cost controls (issue 13): see the SQLite migration of the same name.
  `
  ALTER TABLE batches ADD COLUMN cost_charged_nano BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN cost_standard_nano BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN cache_hits BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN max_cost_usd DOUBLE PRECISION;
  ALTER TABLE batches ADD COLUMN max_error_rate DOUBLE PRECISION;
  ALTER TABLE batches ADD COLUMN stop_code TEXT;
  CREATE TABLE response_cache (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
  );
  CREATE INDEX response_cache_age ON response_cache (created_at_ms);
  `,
  // Native batch passthrough (issue 10): see the SQLite twin.
  `
  ALTER TABLE batches ADD COLUMN execution TEXT;
  CREATE TABLE native_subs (
    seq BIGSERIAL PRIMARY KEY,
    marker TEXT NOT NULL UNIQUE,
    batch_id TEXT NOT NULL,
    upstream TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    keys TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    upstream_batch_id TEXT,
    upstream_input_file_id TEXT,
    upstream_status TEXT,
    created_at_ms BIGINT NOT NULL,
    next_poll_ms BIGINT NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    upstream_completed INTEGER NOT NULL DEFAULT 0,
    upstream_failed INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT
  );
  CREATE INDEX native_subs_open ON native_subs (upstream, seq) WHERE state IN ('intent', 'submitted', 'ended');
  CREATE INDEX native_subs_batch ON native_subs (batch_id);
  `,
];

/**
 * Brings the database to the newest schema. Safe when several processes start at once: the
 * first takes a transaction-scoped advisory lock, the others wait for it and find nothing to do.
 */
export async function migrate(pool: pg.Pool): Promise<void> {
  await inTransaction(pool, async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('openbatch:migrate'))`);
    await tx.query(`CREATE TABLE IF NOT EXISTS openbatch_schema (version INTEGER NOT NULL)`);
    const { rows } = await tx.query<{ version: number }>(`SELECT version FROM openbatch_schema`);
    const current = rows[0]?.version ?? 0;
    if (current > MIGRATIONS.length)
      throw new Error(
        `the database schema (version ${current}) is newer than this openbatch (${MIGRATIONS.length}): upgrade openbatch`,
      );
    for (let version = current; version < MIGRATIONS.length; version++)
      await tx.query(MIGRATIONS[version] ?? '');
    if (rows.length === 0)
      await tx.query(`INSERT INTO openbatch_schema (version) VALUES ($1)`, [MIGRATIONS.length]);
    else await tx.query(`UPDATE openbatch_schema SET version = $1`, [MIGRATIONS.length]);
  });
}
