/**
 * Slow clients (A8 #22): sockets that send their headers one byte a second (slowloris) and an
 * upload that trickles its body, against a spawned server, while a normal client keeps working.
 */
import { connect, type Socket } from 'node:net';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { jsonlOf, sleep, taggedLine, waitTerminal } from './chaos-env.ts';

export interface SlowSocket {
  socket: Socket;
  openedAt: number;
  /** When the server closed it (ms after opening), or null while open. */
  closedAfterMs: number | null;
  /** What the server answered before closing, if anything (e.g. a 408). */
  answer: string;
  stop(): void;
}

/** Opens a socket that sends a request line and then one header byte every `everyMs`. */
export function slowHeaders(port: number, everyMs = 1_000): SlowSocket {
  const socket = connect(port, '127.0.0.1');
  const s: SlowSocket = {
    socket,
    openedAt: Date.now(),
    closedAfterMs: null,
    answer: '',
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
  const header = 'X-Slow-Header-Name-That-Never-Ends: ' + 'a'.repeat(10_000);
  let i = 0;
  socket.on('connect', () => socket.write('GET /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(header.charAt(i++ % header.length));
  }, everyMs);
  timer.unref();
  socket.on('data', (d: Buffer) => (s.answer += d.toString().slice(0, 200)));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    clearInterval(timer);
    if (s.closedAfterMs === null) s.closedAfterMs = Date.now() - s.openedAt;
  });
  return s;
}

/** Opens a multipart upload and sends `bytesPerTick` of body every `everyMs`, forever. */
export function trickleUpload(port: number, bytesPerTick = 1_024, everyMs = 1_000): SlowSocket {
  const socket = connect(port, '127.0.0.1');
  const boundary = 'trickle-boundary';
  const s: SlowSocket = {
    socket,
    openedAt: Date.now(),
    closedAfterMs: null,
    answer: '',
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
  socket.on('connect', () => {
    socket.write(
      `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 104857600\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.jsonl"\r\n\r\n`,
    );
  });
  const line = Buffer.from(JSON.stringify(taggedLine('slow')) + '\n');
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return;
    const chunk = Buffer.alloc(bytesPerTick);
    for (let at = 0; at < bytesPerTick; at += line.length) line.copy(chunk, at);
    socket.write(chunk);
  }, everyMs);
  timer.unref();
  socket.on('data', (d: Buffer) => (s.answer += d.toString().slice(0, 200)));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    clearInterval(timer);
    if (s.closedAfterMs === null) s.closedAfterMs = Date.now() - s.openedAt;
  });
  return s;
}

/**
 * What a normal client does meanwhile: lists, an upload, a small batch to completion, a
 * download. Returns how long the slowest step took (ms) and a description of each.
 */
export async function normalTraffic(
  client: OpenAI,
): Promise<{ slowestMs: number; steps: string[] }> {
  const steps: string[] = [];
  let slowestMs = 0;
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const value = await fn();
    const ms = Date.now() - t0;
    slowestMs = Math.max(slowestMs, ms);
    steps.push(`${name} ${ms} ms`);
    return value;
  };
  for (let i = 0; i < 5; i++) await step(`list #${i}`, () => client.batches.list());
  const file = await step('upload', async () =>
    client.files.create({
      file: await toFile(Buffer.from(jsonlOf([taggedLine('n-1'), taggedLine('n-2')])), 'n.jsonl'),
      purpose: 'batch',
    }),
  );
  const batch = await step('create', () =>
    client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    }),
  );
  const done = await step('batch to completed', () => waitTerminal(client, batch.id, 20_000));
  await step('download', async () =>
    (await client.files.content(done.output_file_id ?? '')).text(),
  );
  await sleep(0);
  return { slowestMs, steps };
}
