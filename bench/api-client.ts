/**
 * A bare HTTP client for the server's Files and Batches routes. The benchmarks use it instead of
 * the openai SDK because the SDK reads an upload into memory and a download into one string: a
 * 200 MB input or a 1,000,000-line output would weigh on the benchmark process (or exceed V8's
 * string limit) and blur what is being measured. Uploads and downloads here stream.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { Client, request } from 'undici';

/** The fields of a batch object the benchmarks read. */
export interface BatchView {
  id: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts?: { total: number; completed: number; failed: number };
}

export const TERMINAL_STATUSES = ['completed', 'failed', 'expired', 'cancelled'];

/** What came back from downloading a file: its size and its number of JSONL lines. */
export interface Download {
  bytes: number;
  lines: number;
}

export interface ApiClient {
  uploadFile(path: string): Promise<string>;
  createBatch(inputFileId: string, endpoint?: string): Promise<BatchView>;
  retrieveBatch(id: string): Promise<BatchView>;
  cancelBatch(id: string): Promise<BatchView>;
  downloadFile(id: string): Promise<Download>;
}

/** `baseUrl` ends in /v1, as the server prints it. */
export function createApiClient(baseUrl: string): ApiClient {
  return {
    uploadFile: async (path) => (await uploadMultipart(`${baseUrl}/files`, path)).id,
    createBatch: (inputFileId, endpoint = '/v1/chat/completions') =>
      sendJson('POST', `${baseUrl}/batches`, {
        input_file_id: inputFileId,
        endpoint,
        completion_window: '24h',
      }),
    retrieveBatch: (id) => sendJson('GET', `${baseUrl}/batches/${id}`),
    cancelBatch: (id) => sendJson('POST', `${baseUrl}/batches/${id}/cancel`),
    downloadFile: (id) => countDownload(`${baseUrl}/files/${id}/content`),
  };
}

// A kept-alive connection the server drops as idle just as a request goes out (its keep-alive
// timer fires first when its event loop was blocked for longer than the timeout) is worth
// one more try for a GET; a POST is never repeated.
const GET_ATTEMPTS = 3;

async function sendJson<T>(method: 'GET' | 'POST', url: string, body?: object): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendJsonOnce<T>(method, url, body);
    } catch (err) {
      if (method !== 'GET' || attempt >= GET_ATTEMPTS || !isConnectionDrop(err)) throw err;
    }
  }
}

async function sendJsonOnce<T>(method: 'GET' | 'POST', url: string, body?: object): Promise<T> {
  const res = await request(url, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as T;
}

const isConnectionDrop = (err: unknown): boolean =>
  ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'].includes((err as { code?: string }).code ?? '');

/** multipart/form-data with `purpose=batch` and the file, streamed from disk with a known length. */
async function uploadMultipart(url: string, path: string): Promise<{ id: string }> {
  const boundary = `bench-${randomUUID()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${basename(path)}"\r\n` +
      'Content-Type: application/jsonl\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  async function* parts(): AsyncGenerator<Buffer> {
    yield head;
    yield* createReadStream(path) as AsyncIterable<Buffer>;
    yield tail;
  }
  const res = await request(url, {
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + statSync(path).size + tail.length),
    },
    body: Readable.from(parts()),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`upload ${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as { id: string };
}

/** Reads the body to the end, keeping only its length and its count of lines. */
async function countDownload(url: string): Promise<Download> {
  const res = await request(url);
  if (res.statusCode >= 400)
    throw new Error(`GET ${url}: ${res.statusCode} ${await res.body.text()}`);
  let bytes = 0;
  let newlines = 0;
  let last = 0x0a;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) newlines++;
    last = chunk[chunk.length - 1] ?? last;
  }
  return { bytes, lines: newlines + (last === 0x0a ? 0 : 1) };
}

/** One GET /health: how long it took, and whether the connection was dropped instead of answered. */
export interface HealthProbe {
  ms: number;
  dropped: boolean;
}

/**
 * Times GET /health over one kept-alive connection, so each probe measures the server's answer
 * rather than a TCP handshake. A dropped connection is a result, not an error: the next probe
 * reconnects.
 */
export function createHealthProbe(baseUrl: string): {
  probe(): Promise<HealthProbe>;
  close(): Promise<void>;
} {
  const client = new Client(new URL(baseUrl).origin);
  return {
    probe: async () => {
      const started = performance.now();
      try {
        const res = await client.request({ method: 'GET', path: '/health' });
        await res.body.text();
        return { ms: performance.now() - started, dropped: false };
      } catch (err) {
        if (!isConnectionDrop(err)) throw err;
        return { ms: performance.now() - started, dropped: true };
      }
    },
    close: () => client.close(),
  };
}
