import { Command } from 'commander';
import { registerKeys } from './commands/keys.ts';
import { registerServe } from './commands/serve.ts';
import { registerSimulate } from './commands/simulate.ts';
import { processIo } from './io.ts';

// The only place that turns a command's result into the process exit status.
let exitCode = 0;
const setExit = (code: number): void => {
  exitCode = code;
};

const program = new Command()
  .name('openbatch')
  .description('Self-hostable, OpenAI-compatible Batch API for any OpenAI-compatible endpoint')
  .showHelpAfterError();
registerServe(program, processIo, setExit);
registerSimulate(program, processIo, setExit);
registerKeys(program, processIo, setExit);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`openbatch: ${(err as Error).message}\n`);
  exitCode = 1;
}
process.exit(exitCode);
