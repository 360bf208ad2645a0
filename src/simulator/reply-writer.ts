import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SimAction } from './directives.ts';

/** Socket-level delivery of a decided answer, including the network faults. */

export interface Delivery {
  action: SimAction | null;
  trickleMs: number | null;
}

const TRICKLE_CHUNK_BYTES = 64;

export function isGone(res: ServerResponse): boolean {
  return res.destroyed || res.writableEnded || res.socket?.destroyed === true;
}

/** Writes `body` with `status`, or performs the delivery fault instead. */
export function deliver(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body: string,
  delivery: Delivery,
): void {
  if (isGone(res)) return;
  switch (delivery.action) {
    case 'hang':
      // Never answer: the socket stays open until the client gives up or close() destroys it.
      return;
    case 'reset':
      resetSocket(res.socket);
      return;
    case 'reset-mid-body':
      writeHalfThenReset(res, status, headers, body);
      return;
    case 'malformed':
      writeWhole(res, status, headers, body.slice(0, Math.max(1, Math.floor(body.length / 2))));
      return;
    case null:
      if (delivery.trickleMs === null) writeWhole(res, status, headers, body);
      else writeTrickled(res, status, headers, Buffer.from(body), delivery.trickleMs);
  }
}

function writeWhole(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body: string,
): void {
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(body);
}

function resetSocket(socket: Socket | null): void {
  if (socket === null) return;
  // An RST (not a FIN) is what a crashed upstream or a load balancer cut looks like to a client.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function writeHalfThenReset(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body: string,
): void {
  const bytes = Buffer.from(body);
  headers['content-length'] = bytes.length;
  res.writeHead(status, headers);
  const socket = res.socket;
  // Reset only once the first half has reached the kernel, so the client really sees a partial body.
  res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => resetSocket(socket));
}

function writeTrickled(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  bytes: Buffer,
  intervalMs: number,
): void {
  headers['content-length'] = bytes.length;
  res.writeHead(status, headers);
  let offset = 0;
  const step = (): void => {
    if (isGone(res)) return;
    const end = Math.min(bytes.length, offset + TRICKLE_CHUNK_BYTES);
    const chunk = bytes.subarray(offset, end);
    offset = end;
    if (offset >= bytes.length) {
      res.end(chunk);
      return;
    }
    res.write(chunk);
    setTimeout(step, intervalMs).unref();
  };
  step();
}
