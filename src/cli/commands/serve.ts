import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { serve } from '@hono/node-server';
import { loadConfig, upstreamConfig, type CliOverrides, type Config } from '../../config/config.ts';
import { createServerRuntime } from '../../compose.ts';
import { capConnections } from '../../lib/connection-cap.ts';
import { createLogger } from '../../lib/logger.ts';
import { createSimulator, type Simulator } from '../../simulator/simulator.ts';
import { waitForShutdownSignal, type CliIo } from '../io.ts';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

export function registerServe(program: Command, io: CliIo, setExit: (code: number) => void): void {
  program
    .command('serve')
    .description('run the OpenAI-compatible Files + Batches server')
    .option('--host <host>', 'address to bind (env OPENBATCH_HOST)')
    .option('--port <port>', 'port to listen on (env OPENBATCH_PORT)')
    .option('--data-dir <dir>', 'where the database and files live (env OPENBATCH_DATA_DIR)')
    .option('--config <file>', 'JSON config file with upstreams and limits (env OPENBATCH_CONFIG)')
    .option(
      '--log-format <format>',
      'json, pretty, or auto: pretty on a terminal (env OPENBATCH_LOG_FORMAT)',
    )
    .action(async (opts: CliOverrides) => setExit(await runServe(opts, io)));
}

/** Serves until SIGTERM/SIGINT, then drains and returns 0. */
export async function runServe(
  opts: CliOverrides,
  io: CliIo,
  shutdown: Promise<unknown> = waitForShutdownSignal(),
): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(opts);
  } catch (err) {
    io.stderr(`openbatch: ${(err as Error).message}\n`);
    return 2;
  }
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stderr.isTTY);
  const logger = createLogger(config.logLevel, pretty ? 'pretty' : 'json');
  const simulator =
    config.upstreams.length === 0
      ? createSimulator({ latencyMs: 200, latencyJitterMs: 150 })
      : null;
  if (simulator) config = await withSimulator(config, simulator, io);
  const runtime = await createServerRuntime(config, logger);
  if (
    !LOOPBACK.test(config.host) &&
    config.apiKeys.size === 0 &&
    !(await runtime.store.hasApiKeys()) &&
    !config.allowPublicWithoutKeys
  ) {
    io.stderr(
      `openbatch: refusing to serve ${config.host} without API keys. Create one with 'openbatch keys create --project NAME', set OPENBATCH_API_KEYS, or set OPENBATCH_ALLOW_PUBLIC_WITHOUT_KEYS=1.\n`,
    );
    await runtime.close();
    await simulator?.close();
    return 2;
  }
  // Slow clients must not hold sockets forever: headers within 30 s, a whole request (a 200 MB
  // upload included) within the configured limit. Node checks both only every
  // connectionsCheckingInterval (30 s by default, so a cut came up to 30 s late): check every 5 s.
  const server = serve({
    fetch: runtime.app.fetch,
    hostname: config.host,
    port: config.port,
    serverOptions: {
      // Node refuses a headers timeout longer than the request timeout.
      headersTimeout: Math.min(30_000, config.requestTimeoutMs),
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: 5_000,
    },
  });
  capConnections(server, config.http.maxConnections);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  io.stdout(`openbatch listening on http://${config.host}:${port}/v1\n`);
  const signal = await shutdown;
  logger.info({ signal }, 'shutting down: no new claims, draining in-flight requests');
  // Stop claiming at once, whatever HTTP requests are still open; then close the server, giving
  // open requests a few seconds before their sockets are cut, then the database.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await runtime.engine.stop();
  const cut = setTimeout(
    () => (server as unknown as { closeAllConnections(): void }).closeAllConnections(),
    5_000,
  );
  await closed;
  clearTimeout(cut);
  await runtime.close();
  await simulator?.close();
  return 0;
}

async function withSimulator(config: Config, simulator: Simulator, io: CliIo): Promise<Config> {
  const { url } = await simulator.listen(config.simulatorPort, '127.0.0.1');
  io.stdout(
    [
      '',
      '************************************************************************',
      '*  NO UPSTREAM CONFIGURED: answering with the built-in SIMULATOR.      *',
      '*  Replies are synthetic. Set OPENBATCH_UPSTREAM_URL (vLLM, Ollama,    *',
      '*  llama.cpp, ...) or OPENAI_API_KEY, or pass --config, for real work. *',
      '************************************************************************',
      `simulator listening on ${url}/v1`,
      '',
    ].join('\n'),
  );
  return {
    ...config,
    upstreams: [upstreamConfig({ name: 'simulator', baseUrl: `${url}/v1`, apiKey: null })],
  };
}
