/**
 * A tiny scripted OpenAI-compatible upstream (node:http on 127.0.0.1) for what the simulator does
 * not do: `retry-after` as an HTTP date or bare seconds, and capturing the exact request bodies
 * and headers the server forwards. Directives in the body: `[up:id=<custom_id>;ra=<kind>:<n>]`
 * where kind is `date` (seconds ahead, HTTP-date), `s` (seconds), `ms` (retry-after-ms) or `bad`
 * (an unparsable value); the 429 is answered on the first call of that id only.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedCall {
  atMs: number;
  id: string | null;
  status: number;
  /** Raw request body as received. */
  body: string;
  headers: IncomingHttpHeaders;
}

export interface ScriptedUpstream {
  url: string;
  calls: ScriptedCall[];
  close(): Promise<void>;
}

const DIRECTIVE = /\[up:([^\]]*)\]/;

function parts(body: string): Map<string, string> {
  const m = DIRECTIVE.exec(body);
  const out = new Map<string, string>();
  for (const p of (m?.[1] ?? '').split(';')) {
    const eq = p.indexOf('=');
    if (eq > 0) out.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  return out;
}

function completion(id: string | null): string {
  return JSON.stringify({
    id: `chatcmpl-${id ?? 'x'}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  });
}

export async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const calls: ScriptedCall[] = [];
  const seen = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const p = parts(body);
      const id = p.get('id') ?? null;
      const n = id === null ? 0 : (seen.get(id) ?? 0);
      if (id !== null) seen.set(id, n + 1);
      const ra = p.get('ra');
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-request-id': `req_up_${calls.length}`,
      };
      let status = 200;
      let text = completion(id);
      if (req.method === 'GET') {
        text = JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] });
      } else if (ra !== undefined && n === 0) {
        status = 429;
        const [kind, value] = ra.split(':');
        const amount = Number(value ?? '0');
        if (kind === 'date') {
          // Whole seconds, as an HTTP date can only say: at least `amount` s from now.
          const at = Math.ceil((Date.now() + amount * 1000) / 1000) * 1000;
          headers['retry-after'] = new Date(at).toUTCString();
        } else if (kind === 's') headers['retry-after'] = String(amount);
        else if (kind === 'ms') headers['retry-after-ms'] = String(amount);
        else headers['retry-after'] = 'soon, maybe';
        text = JSON.stringify({
          error: {
            message: 'Rate limit reached (scripted).',
            type: 'requests',
            param: null,
            code: 'rate_limit_exceeded',
          },
        });
      }
      calls.push({ atMs: Date.now(), id, status, body, headers: req.headers });
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
