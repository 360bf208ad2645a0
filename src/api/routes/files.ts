import { Hono } from 'hono';
import {
  EXPIRES_AFTER_MAX_SECONDS,
  EXPIRES_AFTER_MIN_SECONDS,
  UPLOAD_PURPOSES,
  fileListQuerySchema,
  type FilePurpose,
} from '../../protocol/file.ts';
import { toListPage } from '../../protocol/list-page.ts';
import { badRequest, fileNotFound } from '../../domain/app-error.ts';
import { truncateEcho } from '../../domain/echo-limits.ts';
import { toFileObject } from '../../domain/batch-view.ts';
import { newFileId } from '../../domain/ids.ts';
import type { FileRecord } from '../../domain/records.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { fileDownload } from '../batch-actions.ts';
import { receiveUpload, type ReceivedUpload } from '../multipart-upload.ts';
import { IdempotencyKey } from '../idempotency.ts';
import { parseQuery } from '../parse-query.ts';

/** /v1/files: upload (streamed), list, retrieve, content, delete. */
export function filesRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const id = newFileId();
    const project = c.get('project');
    const keyed = c.req.header('idempotency-key') !== undefined;
    const release = await deps.quotas.beginUpload(project);
    try {
      const upload = await receiveUpload(
        c.req.raw.body,
        c.req.header('content-type') ?? '',
        deps.blobs,
        id,
        deps.limits.maxFileBytes,
        keyed,
      );
      try {
        const record = checkUpload(deps, upload, id, project);
        const idem = uploadKey(deps, c.req.raw.headers, project, upload, record);
        const heldId = await idem?.heldObjectId();
        if (idem && heldId) {
          await upload.file?.writer.abort();
          return c.json(toFileObject(await replayedFile(deps, idem, project, heldId)));
        }
        await deps.quotas.checkStored(project, record.bytes);
        record.bytes = await upload.file!.writer.commit();
        const held = await deps.store.insertFile(record, idem?.claim(record.id));
        if (idem && held) {
          // Another upload with the same key won the race: its file is the answer, ours goes.
          await deps.blobs.remove(record.id);
          return c.json(toFileObject(await replayedFile(deps, idem, project, idem.replayOf(held))));
        }
        deps.logger.info(
          {
            event: 'file.uploaded',
            request_id: c.get('requestId'),
            project,
            file_id: record.id,
            purpose: record.purpose,
            filename: record.filename,
            bytes: record.bytes,
          },
          'file uploaded',
        );
        return c.json(toFileObject(record));
      } catch (err) {
        await upload.file?.writer.abort();
        throw err;
      }
    } finally {
      release();
    }
  });

  app.get('/', async (c) => {
    const query = parseQuery(fileListQuerySchema, c.req.query());
    const rows = await deps.store.listFiles(c.get('project'), query);
    const page = toListPage(rows, query.limit);
    return c.json({ ...page, data: page.data.map(toFileObject) });
  });

  app.get('/:id', async (c) =>
    c.json(toFileObject(await getOwnFile(deps, c.get('project'), c.req.param('id')))),
  );

  app.get('/:id/content', async (c) => {
    const file = await getOwnFile(deps, c.get('project'), c.req.param('id'));
    return fileDownload(deps, file);
  });

  app.delete('/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await deps.store.deleteFile(c.get('project'), id))) throw fileNotFound(id);
    // A running batch reads its lines from its input file: the blob goes when the batch ends.
    if (!(await deps.store.fileInUse(id))) await deps.blobs.remove(id);
    return c.json({ id, object: 'file', deleted: true });
  });

  return app;
}

/** The upload's Idempotency-Key; "the same request" means the same fields and the same bytes. */
function uploadKey(
  deps: ApiDeps,
  headers: Headers,
  project: string,
  upload: ReceivedUpload,
  record: FileRecord,
): IdempotencyKey | null {
  const body = {
    fields: Object.fromEntries(upload.fields),
    filename: record.filename,
    sha256: upload.file?.sha256 ?? null,
  };
  const nowMs = deps.clock.nowMs();
  return IdempotencyKey.from(headers, { store: deps.store, project, scope: 'files', nowMs, body });
}

async function replayedFile(
  deps: ApiDeps,
  idem: IdempotencyKey,
  project: string,
  id: string,
): Promise<FileRecord> {
  const file = await deps.store.getFile(project, id);
  if (!file) throw idem.gone(id);
  return file;
}

async function getOwnFile(deps: ApiDeps, project: string, id: string): Promise<FileRecord> {
  const file = await deps.store.getFile(project, id);
  if (!file) throw fileNotFound(id);
  return file;
}

/** Checks an upload once all its parts are in (the SDK sends `file` before `purpose`). */
function checkUpload(
  deps: ApiDeps,
  upload: ReceivedUpload,
  id: string,
  project: string,
): FileRecord {
  const purpose = upload.fields.get('purpose');
  if (purpose === undefined)
    throw badRequest("Missing required parameter: 'purpose'.", {
      param: 'purpose',
      wireCode: 'missing_required_parameter',
    });
  if (!(UPLOAD_PURPOSES as readonly string[]).includes(purpose))
    throw badRequest('Invalid value for purpose.', { param: 'purpose', wireCode: 'invalid_value' });
  const file = upload.file;
  if (!file)
    throw badRequest("Missing required parameter: 'file'.", {
      param: 'file',
      wireCode: 'missing_required_parameter',
    });
  const limit = purpose === 'batch' ? deps.limits.maxBatchFileBytes : deps.limits.maxFileBytes;
  if (file.truncated || file.bytes > limit) throw badRequest('File is too large.');
  const problem = purpose === 'batch' ? jsonlProblem(file.filename, file.head) : null;
  // OpenAI's message first (clients match on it), then what is wrong with this file.
  if (problem !== null)
    throw badRequest(`Invalid file format for Batch API. Must be .jsonl${problem}`);
  const nowMs = deps.clock.nowMs();
  const expiresAfterS = parseExpiresAfter(upload.fields) ?? defaultExpiry(deps.retention, purpose);
  return {
    id,
    project,
    purpose: purpose as FilePurpose,
    filename: file.filename,
    bytes: file.bytes,
    created_at_ms: nowMs,
    expires_at_ms: expiresAfterS === null ? null : nowMs + expiresAfterS * 1000,
  };
}

/**
 * Like OpenAI, only the start of the file is checked at upload: a `.jsonl` name and a first
 * line that is a JSON object (or longer than we sniff). Later lines are checked by the batch.
 * Returns what is wrong (appended to OpenAI's message; '' for the name), or null when it looks right.
 */
function jsonlProblem(filename: string, head: string): string | null {
  if (!filename.toLowerCase().endsWith('.jsonl')) return '';
  const trimmed = head.replace(/^\s+/, '');
  if (trimmed === '') return ': the file holds no line.';
  const newline = trimmed.indexOf('\n');
  if (newline === -1 && head.length >= 64 * 1024) return null;
  const first = newline === -1 ? trimmed : trimmed.slice(0, newline);
  try {
    const value: unknown = JSON.parse(first);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return null;
  } catch {
    // reported below
  }
  return ': its first line is not one JSON object. Each line must hold one whole request as JSON on a single line (a request pretty-printed over several lines is not JSONL).';
}

function parseExpiresAfter(fields: Map<string, string>): number | null {
  const anchor = fields.get('expires_after[anchor]');
  const secondsText = fields.get('expires_after[seconds]');
  if (anchor === undefined && secondsText === undefined) return null;
  if (anchor !== 'created_at') {
    throw badRequest(
      `Invalid value: '${truncateEcho(anchor ?? '')}'. Supported values are: 'created_at'.`,
      {
        param: 'expires_after.anchor',
        wireCode: 'invalid_value',
      },
    );
  }
  const seconds = Number(secondsText);
  if (
    !Number.isInteger(seconds) ||
    seconds < EXPIRES_AFTER_MIN_SECONDS ||
    seconds > EXPIRES_AFTER_MAX_SECONDS
  ) {
    throw badRequest(
      `Invalid 'expires_after.seconds': expected an integer from ${EXPIRES_AFTER_MIN_SECONDS} to ${EXPIRES_AFTER_MAX_SECONDS}.`,
      { param: 'expires_after.seconds', wireCode: 'invalid_value' },
    );
  }
  return seconds;
}

/** Seconds an upload without `expires_after` lives (null: until deleted). */
function defaultExpiry(retention: ApiDeps['retention'], purpose: string): number | null {
  if (purpose === 'batch') return retention.batchFileExpiresAfterSeconds;
  return retention.otherFileExpiresAfterSeconds > 0 ? retention.otherFileExpiresAfterSeconds : null;
}
