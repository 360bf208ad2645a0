import type { Command } from 'commander';
import {
  EXIT_OK,
  fail,
  finishCommand,
  jobStoreFor,
  jobsOption,
  printJson,
  type JobsFlags,
  type OutputFlags,
} from '../command-kit.ts';
import type { CliIo } from '../io.ts';
import { parseOptionalCount } from '../parse-flags.ts';

/** Flags and arguments of `openbatch list`. */
export interface ListOptions extends JobsFlags, OutputFlags {
  limit?: string | number | undefined;
}

/** Registers `openbatch list` on the program. */
export function registerList(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = program
    .command('list')
    .description('list local jobs, newest last, with the counts last seen (no network)')
    .option('--limit <n>', 'show only the newest n jobs');
  jobsOption(cmd);
  finishCommand(cmd, ['openbatch list', 'openbatch list --limit 5 --json']).action(
    async (opts: ListOptions) => setExit(await runList(opts, io)),
  );
}

/** `openbatch list`: returns the exit code (only main.ts exits). */
export async function runList(options: ListOptions, io: CliIo): Promise<number> {
  try {
    const limit = parseOptionalCount('--limit', options.limit);
    const all = await jobStoreFor(options).list();
    const jobs = limit === undefined ? all : all.slice(-limit);
    const rows = jobs.map((j) => ({
      job_id: j.id,
      created_at: new Date(j.created_at_ms).toISOString(),
      lines: j.input.lines,
      batches: j.batches.length,
      rounds: j.rounds.length,
      state: j.last_counts?.state ?? 'unknown',
      completed: j.last_counts?.completed ?? null,
      failed: j.last_counts?.failed ?? null,
      input: j.input.path,
      base_url: j.base_url,
    }));
    if (options.json) printJson(io, rows);
    else if (rows.length === 0) io.stdout('no jobs yet\n');
    else io.stdout(formatRows(rows));
    return EXIT_OK;
  } catch (err) {
    return fail(io, 'list', err, options);
  }
}

function formatRows(
  rows: {
    job_id: string;
    created_at: string;
    lines: number;
    batches: number;
    state: string;
    completed: number | null;
    failed: number | null;
    input: string | null;
  }[],
): string {
  const table = [
    ['JOB', 'CREATED', 'LINES', 'BATCHES', 'STATE', 'COMPLETED', 'FAILED', 'INPUT'],
    ...rows.map((r) => [
      r.job_id,
      r.created_at.slice(0, 19).replace('T', ' '),
      String(r.lines),
      String(r.batches),
      r.state,
      r.completed === null ? '-' : String(r.completed),
      r.failed === null ? '-' : String(r.failed),
      r.input ?? '-',
    ]),
  ];
  const widths =
    table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
  return (
    table
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
