import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { targetsOpenAi } from '../../sdk/batch-client.ts';
import { fileLineSource, sha256OfFile } from '../../sdk/line-source.ts';
import { DEFAULT_SPLIT_LIMITS, type SplitLimits } from '../../sdk/split-plan.ts';
import { submitJob } from '../../sdk/submit-job.ts';
import {
  EXIT_OK,
  clientFor,
  clientOptions,
  fail,
  finishCommand,
  jobStoreFor,
  jobsOption,
  printJson,
  resolveApiKey,
  type ClientFlags,
  type JobsFlags,
  type OutputFlags,
} from '../command-kit.ts';
import { withInterrupt } from '../interrupt.ts';
import type { CliIo } from '../io.ts';
import { parseCount, parseEndpoint } from '../parse-flags.ts';
import { waitAndReport, type WaitFlags } from './wait.ts';

/** Flags and arguments of `openbatch submit`. */
export interface SubmitOptions extends ClientFlags, JobsFlags, OutputFlags, WaitFlags {
  input: string;
  endpoint?: string | undefined;
  window?: string | undefined;
  wait?: boolean | undefined;
  maxLines?: string | number | undefined;
  maxBytes?: string | number | undefined;
  maxEmbeddingInputs?: string | number | undefined;
  /** Default: on for api.openai.com, off otherwise. */
  oneModelPerFile?: boolean | undefined;
  jobId?: string | undefined;
}

/** Registers `openbatch submit` on the program. */
export function registerSubmit(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = program
    .command('submit')
    .description('validate, split, upload and create the batches of a JSONL file, as one job')
    .argument('<input.jsonl>', 'batch input file (OpenAI format)')
    .option('--endpoint <path>', "endpoint every line must use (default: each line's url)")
    .option('--window <window>', 'completion window', '24h')
    .option('--wait', 'wait for the job with a progress bar')
    .option('--max-lines <n>', 'lines per batch', String(DEFAULT_SPLIT_LIMITS.maxLines))
    .option('--max-bytes <n>', 'bytes per input file', String(DEFAULT_SPLIT_LIMITS.maxBytes))
    .option(
      '--max-embedding-inputs <n>',
      'embedding inputs per batch',
      String(DEFAULT_SPLIT_LIMITS.maxEmbeddingInputs),
    )
    .option('--one-model-per-file', 'one model per batch (default on for api.openai.com)')
    .option('--no-one-model-per-file', 'allow several models in one batch')
    .option('--job-id <id>', 'name the job (submitting again with the same id resumes it)')
    .option('--poll-interval-ms <ms>', 'with --wait: time between two looks', '5000');
  jobsOption(clientOptions(cmd));
  finishCommand(cmd, [
    'openbatch submit requests.jsonl --wait',
    'openbatch submit big.jsonl --base-url http://localhost:8080/v1 --max-lines 50000 --json',
  ]).action(async (input: string, opts: Omit<SubmitOptions, 'input'>) => {
    const tty = process.stderr.isTTY === true;
    setExit(await withInterrupt((signal) => runSubmit({ ...opts, input, tty, signal }, io)));
  });
}

/** Submits a file as one job (and waits with --wait); returns the exit code. */
export async function runSubmit(options: SubmitOptions, io: CliIo): Promise<number> {
  try {
    const input = resolve(options.input);
    await stat(input);
    const client = clientFor(options);
    const store = jobStoreFor(options);
    const { source: apiKeySource } = resolveApiKey(options, client.baseURL);
    const job = await submitJob({
      client,
      store,
      source: fileLineSource(input),
      jobId: options.jobId,
      endpoint: parseEndpoint(options.endpoint),
      completionWindow: options.window,
      limits: limitsFrom(options, targetsOpenAi(client)),
      input: { path: input, sha256: await sha256OfFile(input) },
      apiKeySource,
      onBatchCreated: (b, j) => {
        if (!options.json)
          io.stderr(
            `created ${b.id} (part ${b.part + 1}/${j.rounds[0]?.parts_planned ?? '?'}, ${b.lines.toLocaleString('en-US')} lines)\n`,
          );
      },
    });
    if (options.wait) return await waitAndReport(client, store, job, options, io);
    if (options.json)
      printJson(io, { job_id: job.id, lines: job.input.lines, batches: job.batches });
    else io.stdout(`${job.id}\n`);
    if (!options.json)
      io.stderr(
        `submitted job ${job.id}: ${job.input.lines.toLocaleString('en-US')} lines in ${job.batches.length} batch(es); follow it with 'openbatch wait ${job.id}'\n`,
      );
    return EXIT_OK;
  } catch (err) {
    return fail(io, 'submit', err, options);
  }
}

function limitsFrom(o: SubmitOptions, openAi: boolean): SplitLimits {
  return {
    maxLines: parseCount('--max-lines', o.maxLines, DEFAULT_SPLIT_LIMITS.maxLines),
    maxBytes: parseCount('--max-bytes', o.maxBytes, DEFAULT_SPLIT_LIMITS.maxBytes),
    maxEmbeddingInputs: parseCount(
      '--max-embedding-inputs',
      o.maxEmbeddingInputs,
      DEFAULT_SPLIT_LIMITS.maxEmbeddingInputs,
    ),
    oneModelPerFile: o.oneModelPerFile ?? openAi,
  };
}
