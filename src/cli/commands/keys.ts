import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { hashApiKey, storeApiKey } from '../../compose.ts';
import { loadConfig } from '../../config/config.ts';
import type { CliIo } from '../io.ts';

const PROJECT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function registerKeys(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const keys = program.command('keys').description('manage API keys');
  keys
    .command('create')
    .description('create an API key for a project (shown once, stored only as a hash)')
    .requiredOption('--project <name>', 'project the key belongs to')
    .option('--data-dir <dir>', 'data directory of the server (env OPENBATCH_DATA_DIR)')
    .option('--admin', "the key also sees every project's scheduler state on /admin")
    .action(async (opts: { project: string; dataDir?: string; admin?: boolean }) =>
      setExit(await runKeysCreate(opts, io)),
    );
}

export async function runKeysCreate(
  opts: { project: string; dataDir?: string | undefined; admin?: boolean | undefined },
  io: CliIo,
): Promise<number> {
  if (!PROJECT_NAME.test(opts.project)) {
    io.stderr('openbatch keys create: --project must be 1-64 letters, digits, ".", "_" or "-"\n');
    return 2;
  }
  const dataDir = opts.dataDir ? resolve(opts.dataDir) : loadConfig({}).dataDir;
  const key = `sk-ob-${randomBytes(24).toString('base64url')}`;
  const role = opts.admin ? 'admin' : 'member';
  await storeApiKey(dataDir, hashApiKey(key), { project: opts.project, role }, Date.now());
  io.stdout(`${key}\n`);
  io.stderr(
    `Created an ${role === 'admin' ? 'admin ' : ''}API key for project '${opts.project}'. It is shown only once: store it now.\n`,
  );
  return 0;
}
