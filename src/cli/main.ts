import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { processIo, type CliIo } from './io.ts';
import { readStdinLine, resolveSecretFlags } from './secret-flags.ts';

type Register = (program: Command, io: CliIo, setExit: (code: number) => void) => void;

// Commands load on demand: `serve` never pays for the OpenAI SDK, the price tables or the progress
// bars (~40 MB of a server's resident memory). Help without a command lists them all.
const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./commands/serve.ts')).registerServe,
  simulate: async () => (await import('./commands/simulate.ts')).registerSimulate,
  keys: async () => (await import('./commands/keys.ts')).registerKeys,
  run: async () => (await import('./commands/run.ts')).registerRun,
  submit: async () => (await import('./commands/submit.ts')).registerSubmit,
  status: async () => (await import('./commands/status.ts')).registerStatus,
  wait: async () => (await import('./commands/wait.ts')).registerWait,
  results: async () => (await import('./commands/results.ts')).registerResults,
  cancel: async () => (await import('./commands/cancel.ts')).registerCancel,
  retry: async () => (await import('./commands/retry.ts')).registerRetry,
  list: async () => (await import('./commands/list.ts')).registerList,
  estimate: async () => (await import('./commands/estimate.ts')).registerEstimate,
};

// The only place that turns a command's result into the process exit status.
let exitCode = 0;
const setExit = (code: number): void => {
  exitCode = code;
};

// package.json sits two folders up from both src/cli/ and dist/cli/.
const { version } = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
) as { version: string };

const program = new Command()
  .name('openbatch')
  .description('Self-hostable, OpenAI-compatible Batch API for any OpenAI-compatible endpoint')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError();
const invoked = process.argv[2];
const wanted =
  invoked !== undefined && Object.hasOwn(COMMANDS, invoked) ? [invoked] : Object.keys(COMMANDS);
for (const name of wanted) {
  const register = await COMMANDS[name]!();
  register(program, processIo, setExit);
}

try {
  await program.parseAsync(await resolveSecretFlags(process.argv, processIo, readStdinLine));
} catch (err) {
  process.stderr.write(`openbatch: ${(err as Error).message}\n`);
  exitCode = 1;
}
process.exit(exitCode);
