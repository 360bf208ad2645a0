import type { Database } from 'better-sqlite3';
import { eventTypeFor, eventPayload } from '../../domain/webhooks.ts';
import type { WebhookDeliveryRecord, WebhookEventType } from '../../domain/webhooks.ts';
import { newEventId } from '../../domain/ids.ts';
import type { BatchStatus } from '../../protocol/batch.ts';
import {
  TERMINAL_FOR_EVENTS as TERMINAL,
  toEndpoint,
  type EndpointRow,
  type WebhookOps,
} from '../webhook-row.ts';
import { statement } from './statement-cache.ts';

/**
 * The outbox write: called inside the transaction that moves a batch to `status`, so the event
 * exists exactly when the status change does (a crash cannot keep one without the other). A
 * batch already terminal sends nothing again.
 */
export function recordBatchEvent(
  db: Database,
  batchId: string,
  status: BatchStatus,
  nowMs: number,
): void {
  const type = eventTypeFor(status);
  const row = statement(db, `SELECT project, status FROM batches WHERE id = ?`).get(batchId) as
    { project: string; status: string } | undefined;
  if (!type || !row || TERMINAL.has(row.status)) return;
  statement(
    db,
    `INSERT INTO webhook_events (id, project, type, batch_id, created_at_ms) VALUES (?, ?, ?, ?, ?)`,
  ).run(newEventId(nowMs), row.project, type, batchId, nowMs);
}

export function createWebhookRows(db: Database): WebhookOps {
  return {
    insertWebhookEndpoint: async (e) => {
      statement(
        db,
        `INSERT INTO webhook_endpoints (id, project, url, events, secret, created_at_ms)
         VALUES (@id, @project, @url, @events, @secret, @created_at_ms)`,
      ).run({ ...e, events: JSON.stringify(e.events) });
    },
    listWebhookEndpoints: async (project) =>
      (
        statement(
          db,
          `SELECT * FROM webhook_endpoints WHERE project = ? ORDER BY created_at_ms, id`,
        ).all(project) as EndpointRow[]
      ).map(toEndpoint),
    getWebhookEndpoint: async (id) => {
      const row = statement(db, `SELECT * FROM webhook_endpoints WHERE id = ?`).get(id) as
        EndpointRow | undefined;
      return row ? toEndpoint(row) : null;
    },
    deleteWebhookEndpoint: async (project, id) =>
      db.transaction(() => {
        const gone = statement(
          db,
          `DELETE FROM webhook_endpoints WHERE id = ? AND project = ?`,
        ).run(id, project).changes;
        if (gone === 1)
          statement(
            db,
            `UPDATE webhook_deliveries SET state = 'failed', last_error = 'endpoint deleted'
             WHERE endpoint_id = ? AND state = 'pending'`,
          ).run(id);
        return gone === 1;
      })(),
    fanOutWebhookEvents: async (everyProject, nowMs, limit) =>
      db.transaction(() => fanOut(db, everyProject, nowMs, limit))(),
    dueWebhookDeliveries: async (nowMs, limit, skip) => {
      const rows = statement(
        db,
        `SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_ms <= ?
         ORDER BY next_attempt_ms LIMIT ?`,
      ).all(nowMs, limit + skip.length) as WebhookDeliveryRecord[];
      const busy = new Set(skip);
      return rows.filter((r) => !busy.has(r.delivery_id)).slice(0, limit);
    },
    recordWebhookAttempt: async (deliveryId, u) => {
      statement(
        db,
        `UPDATE webhook_deliveries SET state = @state, attempts = @attempts,
           next_attempt_ms = @next_attempt_ms, last_status = @last_status,
           last_error = @last_error, finished_at_ms = @finished_at_ms
         WHERE delivery_id = @delivery_id AND state = 'pending'`,
      ).run({ ...u, delivery_id: deliveryId });
    },
    listWebhookDeliveries: async (project, endpointId, query) =>
      statement(
        db,
        `SELECT * FROM webhook_deliveries
         WHERE project = ? AND endpoint_id = ? AND delivery_id < ?
         ORDER BY delivery_id DESC LIMIT ?`,
      ).all(
        project,
        endpointId,
        query.before ?? Number.MAX_SAFE_INTEGER,
        query.limit + 1,
      ) as WebhookDeliveryRecord[],
  };
}

/** Each outbox event becomes one delivery per subscribed endpoint; the event row goes. */
function fanOut(
  db: Database,
  everyProject: { id: string; events: readonly WebhookEventType[] } | null,
  nowMs: number,
  limit: number,
): number {
  const events = statement(
    db,
    `SELECT id, project, type, batch_id, created_at_ms FROM webhook_events ORDER BY created_at_ms LIMIT ?`,
  ).all(limit) as {
    id: string;
    project: string;
    type: WebhookEventType;
    batch_id: string;
    created_at_ms: number;
  }[];
  let made = 0;
  for (const event of events) {
    const endpoints = (
      statement(db, `SELECT id, events FROM webhook_endpoints WHERE project = ?`).all(
        event.project,
      ) as { id: string; events: string }[]
    )
      .filter((e) => (JSON.parse(e.events) as string[]).includes(event.type))
      .map((e) => e.id);
    if (everyProject?.events.includes(event.type)) endpoints.push(everyProject.id);
    const payload = eventPayload(event.id, event.type, event.created_at_ms, event.batch_id);
    for (const endpointId of endpoints) {
      made += statement(
        db,
        `INSERT OR IGNORE INTO webhook_deliveries (event_id, endpoint_id, project, type, batch_id,
           payload, next_attempt_ms, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        event.id,
        endpointId,
        event.project,
        event.type,
        event.batch_id,
        payload,
        nowMs,
        nowMs,
      ).changes;
    }
    statement(db, `DELETE FROM webhook_events WHERE id = ?`).run(event.id);
  }
  return made;
}
