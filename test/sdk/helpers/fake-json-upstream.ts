import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A chat upstream that answers packed-document requests with the JSON object they ask for. */
export interface FakeJsonUpstream {
  url: string;
  /** Document ids seen per call, in call order. */
  calls: string[][];
  close(): Promise<void>;
}

/**
 * Reads the documents (a JSON array of {id, text}) from the user message and answers
 * `{ "<id>": "answer to <text>" }`, leaving out `omit` whenever it is packed with others, so
 * the client must send it again alone.
 */
export async function startFakeJsonUpstream(omit: string): Promise<FakeJsonUpstream> {
  const calls: string[][] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      // Only chat completions exist here: anything else (the engine's probe for a Batch API,
      // GET /v1/batches) gets OpenAI's 404, as from a server without that route.
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Not found', type: 'invalid_request_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer(raw, omit, calls)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A chat.completion whose content is the JSON object of answers keyed by document id. */
function answer(raw: string, omit: string, calls: string[][]): object {
  const body = JSON.parse(raw) as { model: string; messages: { content: string }[] };
  const docs = JSON.parse(body.messages[1]!.content) as { id: string; text: string }[];
  calls.push(docs.map((d) => d.id));
  const answers = Object.fromEntries(
    docs
      .filter((d) => docs.length === 1 || d.id !== omit)
      .map((d) => [d.id, `answer to ${d.text}`]),
  );
  const message = { role: 'assistant', content: JSON.stringify(answers) };
  return {
    id: `chatcmpl-${calls.length}`,
    object: 'chat.completion',
    created: 0,
    model: body.model,
    choices: [{ index: 0, message, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: 10 * docs.length + 20,
      completion_tokens: 5 * docs.length,
      total_tokens: 25 * docs.length + 20,
    },
  };
}
