import type { CliIo } from './io.ts';

/** Flags whose value is a secret, and the environment variable that is the better way. */
const SECRET_FLAGS: Record<string, string> = {
  '--api-key': 'OPENAI_API_KEY',
  '--upstream-api-key': 'OPENBATCH_UPSTREAM_API_KEY',
};

/**
 * A key on the command line is visible to every user of the machine (the process list) and
 * stays in shell history. Such a flag still works but is warned about (never echoing the key);
 * the value `-` reads the key from standard input instead (a prompt on a terminal).
 */
export async function resolveSecretFlags(
  argv: readonly string[],
  io: CliIo,
  readSecret: (prompt: string) => Promise<string>,
): Promise<string[]> {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const arg = out[i]!;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const env = SECRET_FLAGS[flag];
    if (env === undefined) continue;
    const valueAt = eq === -1 ? i + 1 : i;
    const value = eq === -1 ? out[i + 1] : arg.slice(eq + 1);
    if (value === undefined) continue;
    if (value === '-') {
      const secret = (await readSecret(`${flag.slice(2)}: `)).trim();
      out[valueAt] = eq === -1 ? secret : `${flag}=${secret}`;
    } else {
      io.stderr(
        `openbatch: warning: ${flag} puts the key in the process list and shell history; set ${env} or pass '${flag} -' to type it.\n`,
      );
    }
  }
  return out;
}

/** Reads one line from standard input, prompting on stderr when it is a terminal. */
export async function readStdinLine(prompt: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, terminal: false });
  if (process.stdin.isTTY) process.stderr.write(prompt);
  try {
    for await (const line of rl) return line;
    return '';
  } finally {
    rl.close();
  }
}
