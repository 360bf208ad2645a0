import type pg from 'pg';
import { eventPayload, eventTypeFor } from '../../domain/webhooks.ts';
import type { WebhookDeliveryRecord, WebhookEventType } from '../../domain/webhooks.ts';
import { newEventId } from '../../domain/ids.ts';
import type { BatchStatus } from '../../protocol/batch.ts';
import {
  TERMINAL_FOR_EVENTS as TERMINAL,
  toEndpoint,
  type EndpointRow,
  type WebhookOps,
} from '../webhook-row.ts';
import { inTransaction, type Queryable } from './pg-pool.ts';

/** The outbox write, inside the transaction that moves the batch to `status` (see the SQLite twin). */
export async function recordBatchEvent(
  tx: Queryable,
  batchId: string,
  status: BatchStatus,
  nowMs: number,
): Promise<void> {
  const type = eventTypeFor(status);
  const { rows } = await tx.query<{ project: string; status: string }>(
    `SELECT project, status FROM batches WHERE id = $1 FOR UPDATE`,
    [batchId],
  );
  const row = rows[0];
  if (!type || !row || TERMINAL.has(row.status)) return;
  await tx.query(
    `INSERT INTO webhook_events (id, project, type, batch_id, created_at_ms) VALUES ($1, $2, $3, $4, $5)`,
    [newEventId(nowMs), row.project, type, batchId, nowMs],
  );
}

/** Webhook endpoints, the outbox and deliveries on PostgreSQL (see the SQLite twin). */
export function createPgWebhookRows(pool: pg.Pool): WebhookOps {
  return {
    insertWebhookEndpoint: async (e) => {
      await pool.query(
        `INSERT INTO webhook_endpoints (id, project, url, events, secret, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [e.id, e.project, e.url, JSON.stringify(e.events), e.secret, e.created_at_ms],
      );
    },
    listWebhookEndpoints: async (project) =>
      (
        await pool.query<EndpointRow>(
          `SELECT * FROM webhook_endpoints WHERE project = $1 ORDER BY created_at_ms, id`,
          [project],
        )
      ).rows.map(toEndpoint),
    getWebhookEndpoint: async (id) => {
      const { rows } = await pool.query<EndpointRow>(
        `SELECT * FROM webhook_endpoints WHERE id = $1`,
        [id],
      );
      return rows[0] ? toEndpoint(rows[0]) : null;
    },
    deleteWebhookEndpoint: async (project, id) =>
      inTransaction(pool, async (tx) => {
        const gone = await tx.query(
          `DELETE FROM webhook_endpoints WHERE id = $1 AND project = $2`,
          [id, project],
        );
        if (gone.rowCount !== 1) return false;
        await tx.query(
          `UPDATE webhook_deliveries SET state = 'failed', last_error = 'endpoint deleted'
           WHERE endpoint_id = $1 AND state = 'pending'`,
          [id],
        );
        return true;
      }),
    fanOutWebhookEvents: async (everyProject, nowMs, limit) =>
      inTransaction(pool, (tx) => fanOut(tx, everyProject, nowMs, limit)),
    dueWebhookDeliveries: async (nowMs, limit, skip) =>
      (
        await pool.query<WebhookDeliveryRecord>(
          `SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_ms <= $1
             AND NOT (delivery_id = ANY($3::bigint[]))
           ORDER BY next_attempt_ms LIMIT $2`,
          [nowMs, limit, skip],
        )
      ).rows,
    recordWebhookAttempt: async (deliveryId, u) => {
      await pool.query(
        `UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_ms = $3,
           last_status = $4, last_error = $5, finished_at_ms = $6
         WHERE delivery_id = $7 AND state = 'pending'`,
        [
          u.state,
          u.attempts,
          u.next_attempt_ms,
          u.last_status,
          u.last_error,
          u.finished_at_ms,
          deliveryId,
        ],
      );
    },
    listWebhookDeliveries: async (project, endpointId, query) =>
      (
        await pool.query<WebhookDeliveryRecord>(
          `SELECT * FROM webhook_deliveries
           WHERE project = $1 AND endpoint_id = $2 AND delivery_id < $3
           ORDER BY delivery_id DESC LIMIT $4`,
          [project, endpointId, query.before ?? Number.MAX_SAFE_INTEGER, query.limit + 1],
        )
      ).rows,
  };
}

/** Each outbox event becomes one delivery per subscribed endpoint; the event row goes. */
async function fanOut(
  tx: Queryable,
  everyProject: { id: string; events: readonly WebhookEventType[] } | null,
  nowMs: number,
  limit: number,
): Promise<number> {
  const { rows: events } = await tx.query<{
    id: string;
    project: string;
    type: WebhookEventType;
    batch_id: string;
    created_at_ms: number;
  }>(
    `SELECT id, project, type, batch_id, created_at_ms FROM webhook_events
     ORDER BY created_at_ms LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  let made = 0;
  for (const event of events) {
    const { rows } = await tx.query<{ id: string; events: string }>(
      `SELECT id, events FROM webhook_endpoints WHERE project = $1`,
      [event.project],
    );
    const endpoints = rows
      .filter((e) => (JSON.parse(e.events) as string[]).includes(event.type))
      .map((e) => e.id);
    if (everyProject?.events.includes(event.type)) endpoints.push(everyProject.id);
    const payload = eventPayload(event.id, event.type, event.created_at_ms, event.batch_id);
    for (const endpointId of endpoints) {
      const inserted = await tx.query(
        `INSERT INTO webhook_deliveries (event_id, endpoint_id, project, type, batch_id, payload,
           next_attempt_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
        [event.id, endpointId, event.project, event.type, event.batch_id, payload, nowMs, nowMs],
      );
      made += inserted.rowCount ?? 0;
    }
    await tx.query(`DELETE FROM webhook_events WHERE id = $1`, [event.id]);
  }
  return made;
}
