import type { Server } from 'node:net';

const BODY = (max: number): string =>
  JSON.stringify({
    error: {
      message: `The server has ${max} open connections, the most it accepts (OPENBATCH_MAX_CONNECTIONS). Retry shortly, or reuse a connection.`,
      type: 'rate_limit_error',
      param: null,
      code: 'too_many_connections',
    },
  });

/**
 * Caps open connections: one past `max` is answered 429 in OpenAI's envelope and closed before
 * any request on it is read (Node's own `maxConnections` drops it without a word).
 */
export function capConnections(server: Server, max: number): void {
  let open = 0;
  const body = BODY(max);
  const answer =
    'HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n' +
    `x-content-type-options: nosniff\r\nretry-after: 1\r\nconnection: close\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  server.on('connection', (socket) => {
    open++;
    socket.once('close', () => open--);
    if (open > max) socket.end(answer);
  });
}
