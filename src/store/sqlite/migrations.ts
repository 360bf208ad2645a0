import type { Database } from 'better-sqlite3';

/**
 * Append-only schema steps; `PRAGMA user_version` records how many ran. Times are epoch ms,
 * JSON is text, ids are text (portable to Postgres, design rule S3).
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
  );
  CREATE TABLE files (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    purpose TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    seq INTEGER NOT NULL
  );
  CREATE INDEX files_project_seq ON files (project, seq);
  CREATE INDEX files_expiry ON files (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
  CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    project TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    errors TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    created_at_ms INTEGER NOT NULL,
    in_progress_at_ms INTEGER,
    expires_at_ms INTEGER NOT NULL,
    finalizing_at_ms INTEGER,
    completed_at_ms INTEGER,
    failed_at_ms INTEGER,
    expired_at_ms INTEGER,
    cancelling_at_ms INTEGER,
    cancelled_at_ms INTEGER,
    total INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    metadata TEXT,
    output_expires_after_seconds INTEGER
  );
  CREATE INDEX batches_project_seq ON batches (project, seq);
  CREATE INDEX batches_status ON batches (status);
  CREATE TABLE items (
    item_id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    upstream TEXT NOT NULL,
    model TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    deadline_ms INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_gen INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER,
    lease_losses INTEGER NOT NULL DEFAULT 0,
    status_code INTEGER,
    request_id TEXT,
    response_body TEXT,
    error_code TEXT,
    error_message TEXT,
    last_error TEXT,
    finished_at_ms INTEGER,
    UNIQUE (batch_id, custom_id)
  );
  CREATE INDEX items_queue ON items (upstream, deadline_ms, item_id) WHERE state = 'queued';
  CREATE INDEX items_leases ON items (lease_expires_ms) WHERE state = 'leased';
  CREATE INDEX items_batch_state ON items (batch_id, state);
  `,
  // Round-robin among batches with the same deadline: claim by line number across them.
  `
  DROP INDEX items_queue;
  CREATE INDEX items_queue ON items (upstream, deadline_ms, line_no, item_id) WHERE state = 'queued';
  `,
  // (batch_id, rowid): finalize pages through a batch by item_id without sorting it each page
  // (without it each page of 1,000 scanned and sorted the whole batch: O(n²)).
  `
  CREATE INDEX items_batch ON items (batch_id);
  `,
  // sent_gen = lease_gen once the leased request was handed to the upstream: only such a lease
  // counts as lost when the process dies (lines merely claimed ahead are not poison suspects).
  `
  ALTER TABLE items ADD COLUMN sent_gen INTEGER NOT NULL DEFAULT 0;
  `,
  // Leases lost at a crash before the sent mark was recorded: such a line is marked sent before
  // its next send, so a line that crashes the process at once cannot escape the poison count.
  `
  ALTER TABLE items ADD COLUMN unmarked_losses INTEGER NOT NULL DEFAULT 0;
  `,
  // Chunks instead of items: lines stay in the input file (byte offsets), one row leases up to
  // CHUNK_MAX_LINES lines, answers go to append-only spools that become the output and error
  // files. Items of batches that were running cannot be carried over (their answers were rows):
  // such batches fail with a message; batches still validating are ingested again as chunks.
  `
  UPDATE batches SET status = 'failed', failed_at_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000,
    errors = '[{"code":"internal_error","message":"openbatch was upgraded to a new store format while this batch ran; submit it again.","param":null,"line":null}]'
  WHERE status IN ('in_progress', 'cancelling', 'finalizing');
  DROP TABLE items;
  CREATE TABLE chunks (
    chunk_id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    upstream TEXT NOT NULL,
    deadline_ms INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    byte_start INTEGER NOT NULL,
    byte_end INTEGER NOT NULL,
    offsets BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_gen INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER,
    lease_losses INTEGER NOT NULL DEFAULT 0,
    unmarked_losses INTEGER NOT NULL DEFAULT 0,
    done BLOB,
    sent BLOB,
    last_error TEXT
  );
  CREATE INDEX chunks_queue ON chunks (upstream, deadline_ms, first_line, chunk_id) WHERE state = 'queued';
  CREATE INDEX chunks_leases ON chunks (lease_expires_ms) WHERE state = 'leased';
  CREATE INDEX chunks_batch ON chunks (batch_id, state);
  ALTER TABLE batches ADD COLUMN output_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN error_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN expired_lines INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN reserved_output_file_id TEXT;
  ALTER TABLE batches ADD COLUMN reserved_error_file_id TEXT;
  `,
  // Idempotency-Key of POST /v1/batches, /v1/files and /v1/batches/{id}/retry: the object the key
  // made and a hash of the request that made it (kept 24 h; a live key with another hash is a 409).
  `
  CREATE TABLE idempotency_keys (
    project TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    object_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (project, scope, key)
  );
  CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
  `,
  // Webhooks: endpoints per project; the outbox (an event row written in the same transaction as
  // the batch's terminal status); one delivery per event and endpoint, retried with backoff.
  `
  CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
  );
  CREATE INDEX webhook_endpoints_project ON webhook_endpoints (project, created_at_ms);
  CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    delivery_id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    project TEXT NOT NULL,
    type TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    finished_at_ms INTEGER,
    UNIQUE (event_id, endpoint_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 'pending';
  CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, delivery_id);
  `,
  // Keys gain a role: 'admin' keys see every project's scheduler state on /admin.
  `
  ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
  `,
  // Cost controls (issue 13): cost charged so far in nano-dollars, the caps a batch was created
  // with, why the engine stopped it, and the response cache (bounded by the engine).
  `
  ALTER TABLE batches ADD COLUMN cost_charged_nano INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN cost_standard_nano INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batches ADD COLUMN max_cost_usd REAL;
  ALTER TABLE batches ADD COLUMN max_error_rate REAL;
  ALTER TABLE batches ADD COLUMN stop_code TEXT;
  CREATE TABLE response_cache (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
  );
  CREATE INDEX response_cache_age ON response_cache (created_at_ms);
  `,
  // Native batch passthrough (issue 10): how a batch runs (`execution`, JSON), and the sub-batches
  // run on upstreams' own Batch APIs (a row is written before the upstream create: its marker
  // finds the upstream batch after a crash). Chunks may now be in state 'native'.
  `
  ALTER TABLE batches ADD COLUMN execution TEXT;
  CREATE TABLE native_subs (
    seq INTEGER PRIMARY KEY,
    marker TEXT NOT NULL UNIQUE,
    batch_id TEXT NOT NULL,
    upstream TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    keys TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    upstream_batch_id TEXT,
    upstream_input_file_id TEXT,
    upstream_status TEXT,
    created_at_ms INTEGER NOT NULL,
    next_poll_ms INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    upstream_completed INTEGER NOT NULL DEFAULT 0,
    upstream_failed INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  );
  CREATE INDEX native_subs_open ON native_subs (upstream, seq) WHERE state IN ('intent', 'submitted', 'ended');
  CREATE INDEX native_subs_batch ON native_subs (batch_id);
  `,
];

/** Brings the database to the newest schema, one transaction per step. */
export function migrate(db: Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
