import type { CliIo } from '../../../src/cli/io.ts';

/** A CliIo that keeps what a command wrote. */
export interface CapturedIo {
  io: CliIo;
  stdout(): string;
  stderr(): string;
  /** stderr without the periodic progress lines. */
  errorLines(): string[];
}

export function captureIo(): CapturedIo {
  let out = '';
  let err = '';
  return {
    io: { stdout: (t) => void (out += t), stderr: (t) => void (err += t) },
    stdout: () => out,
    stderr: () => err,
    errorLines: () => err.split('\n').filter((l) => l.startsWith('openbatch ')),
  };
}
