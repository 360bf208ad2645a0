import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { JobManifest } from '../../sdk/job-store.ts';
import { fetchJobStatus } from '../../sdk/job-status.ts';
import { loadPricingFile } from '../../sdk/pricing.ts';
import { buildUsageTable, formatUsageTable } from '../../sdk/usage-table.ts';
import {
  EXIT_FAILED,
  EXIT_OK,
  fail,
  finishCommand,
  jobCommand,
  openJob,
  printJson,
  type ClientFlags,
  type JobsFlags,
  type OutputFlags,
} from '../command-kit.ts';
import { followResults } from '../follow-results.ts';
import { withInterrupt } from '../interrupt.ts';
import type { CliIo } from '../io.ts';
import { parseCount } from '../parse-flags.ts';
import { defaultResultPaths } from '../local-run.ts';
import { describeErrorFile, writeJobResults } from '../write-results.ts';

/** Flags and arguments of `openbatch results`. */
export interface ResultsOptions extends ClientFlags, JobsFlags, OutputFlags {
  job: string;
  output?: string | undefined;
  errors?: string | undefined;
  ordered?: boolean | undefined;
  pricing?: string | undefined;
  follow?: boolean | undefined;
  pollIntervalMs?: string | number | undefined;
  signal?: AbortSignal | undefined;
}

/** Registers `openbatch results` on the program. */
export function registerResults(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const cmd = jobCommand(
    program,
    'results',
    "merge a job's output and error files into one of each, under the original custom_ids",
  )
    .option('-o, --output <file>', 'merged output file (default: <input>.<job>.output.jsonl)')
    .option(
      '--errors <file>',
      'merged error file (default: <input>.<job>.errors.jsonl, written only when a line failed)',
    )
    .option('--ordered', 'write both files in input order')
    .option('--pricing <file>', 'JSON prices per model for the cost table')
    .option(
      '--follow',
      'openbatch servers: print each line as JSONL on stdout as soon as it finishes, until the batches end (<job> may be a batch id)',
    )
    .option('--poll-interval-ms <ms>', 'with --follow: time between two looks', '1000');
  finishCommand(cmd, [
    'openbatch results job_m1abc2de -o answers.jsonl --ordered',
    'openbatch results last --json',
    'openbatch results batch_68a1… --follow --base-url http://127.0.0.1:8080/v1 | jq .custom_id',
  ]).action(async (job: string, opts: Omit<ResultsOptions, 'job'>) =>
    setExit(await withInterrupt((signal) => runResults({ ...opts, job, signal }, io))),
  );
}

/** `openbatch results`: returns the exit code (only main.ts exits). */
export async function runResults(options: ResultsOptions, io: CliIo): Promise<number> {
  try {
    if (options.follow) {
      const pollIntervalMs = parseCount('--poll-interval-ms', options.pollIntervalMs, 1_000);
      const lines = await followResults({ ...options, pollIntervalMs }, io);
      io.stderr(`${lines} line(s)\n`);
      return EXIT_OK;
    }
    const { store, job, client } = await openJob(options);
    const status = await fetchJobStatus(client, job);
    if (status.state !== 'finished') {
      const c = status.counts;
      throw new Error(
        `job ${job.id} is still ${status.state} (${c.completed + c.failed}/${c.total} done): run 'openbatch wait ${job.id}' first`,
      );
    }
    const pricing = options.pricing ? loadPricingFile(options.pricing) : {};
    const written = await writeJobResults(client, status, (await store.loadIds(job.id)) ?? [], {
      ...pathsFor(job, options),
      ordered: options.ordered === true,
    });
    const table = buildUsageTable(written.usageByModel, pricing);
    const { usageByModel: _byModel, ...files } = written;
    if (options.json)
      printJson(io, { job_id: job.id, counts: status.counts, ...files, usage_table: table });
    else
      io.stdout(
        `output: ${files.output} (${files.outputLines} lines)\n${describeErrorFile(files)}\n${formatUsageTable(table)}`,
      );
    return files.missing > 0 ? EXIT_FAILED : EXIT_OK;
  } catch (err) {
    return fail(io, 'results', err, options);
  }
}

function pathsFor(
  job: JobManifest,
  o: ResultsOptions,
): { output: string; errors: string; keepEmptyErrors: boolean } {
  const defaults = defaultResultPaths(job.input.path ?? resolve(`${job.id}.jsonl`), job.id);
  return {
    output: o.output ? resolve(o.output) : defaults.output,
    errors: o.errors ? resolve(o.errors) : defaults.errors,
    keepEmptyErrors: o.errors !== undefined,
  };
}
