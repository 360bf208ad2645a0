import { Command } from 'commander';
import { registerCancel } from './commands/cancel.ts';
import { registerEstimate } from './commands/estimate.ts';
import { registerKeys } from './commands/keys.ts';
import { registerList } from './commands/list.ts';
import { registerResults } from './commands/results.ts';
import { registerRetry } from './commands/retry.ts';
import { registerRun } from './commands/run.ts';
import { registerServe } from './commands/serve.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerStatus } from './commands/status.ts';
import { registerSubmit } from './commands/submit.ts';
import { registerWait } from './commands/wait.ts';
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
registerRun(program, processIo, setExit);
registerSubmit(program, processIo, setExit);
registerStatus(program, processIo, setExit);
registerWait(program, processIo, setExit);
registerResults(program, processIo, setExit);
registerCancel(program, processIo, setExit);
registerRetry(program, processIo, setExit);
registerList(program, processIo, setExit);
registerEstimate(program, processIo, setExit);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`openbatch: ${(err as Error).message}\n`);
  exitCode = 1;
}
process.exit(exitCode);
