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

/**
 * Reads one line from standard input. On a terminal it prompts on stderr and reads with echo
 * off, so the key never shows on the screen; piped input is read as it comes.
 */
export async function readStdinLine(prompt: string): Promise<string> {
  if (process.stdin.isTTY) return readHidden(prompt);
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) return line;
    return '';
  } finally {
    rl.close();
  }
}

async function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows: a key typed (or pasted) at once must not echo.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  const typed = new HiddenLine();
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        const state = typed.feed(chunk.toString('utf8'));
        if (state === 'more') return;
        stdin.off('data', onData);
        if (state === 'interrupted') reject(new Error('interrupted'));
        else resolve(typed.value);
      };
      stdin.on('data', onData);
      stdin.resume();
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/** What a raw-mode terminal sends while a secret is typed: characters, erase, enter, Ctrl-C/D. */
export class HiddenLine {
  #chars: string[] = [];

  get value(): string {
    return this.#chars.join('');
  }

  feed(text: string): 'more' | 'done' | 'interrupted' {
    for (const ch of text) {
      if (ch === '\r' || ch === '\n' || ch === '\u0004') return 'done';
      if (ch === '\u0003') return 'interrupted';
      if (ch === '\u007f' || ch === '\b') this.#chars.pop();
      else if (ch >= ' ') this.#chars.push(ch);
    }
    return 'more';
  }
}
