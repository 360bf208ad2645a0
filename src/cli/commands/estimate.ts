import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { estimateBatch, DEFAULT_ASSUMED_MAX_TOKENS } from '../../sdk/estimate.ts';
import { fileLineSource } from '../../sdk/line-source.ts';
import { loadPricingFile } from '../../sdk/pricing.ts';
import {
  clientFor,
  clientOptions,
  EXIT_BAD_INPUT,
  EXIT_OK,
  fail,
  type ClientFlags,
  finishCommand,
  printJson,
  type OutputFlags,
} from '../command-kit.ts';
import { formatEstimate, formatServerEstimate } from '../format-estimate.ts';
import { estimateOnServer } from '../../sdk/server-estimate.ts';
import type { CliIo } from '../io.ts';
import { parseEndpoint, parseOptionalCount } from '../parse-flags.ts';

/** Flags and arguments of `openbatch estimate`. */
export interface EstimateCommandOptions extends OutputFlags, ClientFlags {
  input: string;
  endpoint?: string | undefined;
  defaultMaxTokens?: string | number | undefined;
  pricing?: string | undefined;
  completionWindow?: string | undefined;
  rpm?: string | number | undefined;
  tpm?: string | number | undefined;
}

/** Registers `openbatch estimate` on the program. */
export function registerEstimate(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const cmd = program
    .command('estimate')
    .description(
      'validate a batch file and estimate its tokens, cost and turnaround (no network unless --base-url)',
    )
    .argument('<input.jsonl>', 'batch input file (OpenAI format)')
    .option('--endpoint <path>', "endpoint every line must use (default: each line's url)")
    .option(
      '--default-max-tokens <n>',
      'output tokens assumed for a line without max_tokens',
      String(DEFAULT_ASSUMED_MAX_TOKENS),
    )
    .option(
      '--pricing <file>',
      'JSON prices per model: {"<model>": {"inputPerMTok", "cachedInputPerMTok", "outputPerMTok"}}',
    )
    .option('--rpm <n>', 'upstream requests per minute, for the turnaround estimate')
    .option('--tpm <n>', 'upstream tokens per minute, for the turnaround estimate');
  clientOptions(cmd);
  cmd.option(
    '--completion-window <w>',
    'with --base-url: the window the ETA is checked against',
    '24h',
  );
  finishCommand(cmd, [
    'openbatch estimate requests.jsonl',
    'openbatch estimate requests.jsonl --rpm 5000 --tpm 2000000 --json',
    'openbatch estimate requests.jsonl --base-url http://127.0.0.1:8080/v1   # the server prices and times it',
  ]).action(async (input: string, opts: Omit<EstimateCommandOptions, 'input'>) =>
    setExit(await runEstimate({ ...opts, input }, io)),
  );
}

/** Exit 0 when every line is valid, 2 when some are not (the estimate covers the valid ones). */
export async function runEstimate(options: EstimateCommandOptions, io: CliIo): Promise<number> {
  try {
    const input = resolve(options.input);
    await stat(input);
    if (options.baseUrl !== undefined) return await serverEstimate(input, options, io);
    const report = await estimateBatch(fileLineSource(input), {
      endpoint: parseEndpoint(options.endpoint),
      defaultMaxTokens: parseOptionalCount('--default-max-tokens', options.defaultMaxTokens),
      pricing: options.pricing ? loadPricingFile(options.pricing) : {},
      rpm: parseOptionalCount('--rpm', options.rpm),
      tpm: parseOptionalCount('--tpm', options.tpm),
    });
    if (options.json) printJson(io, report);
    else io.stdout(formatEstimate(report));
    if (report.invalid_count === 0) return EXIT_OK;
    const first = report.invalid[0];
    io.stderr(
      `openbatch estimate: ${report.invalid_count} invalid line(s) in ${input}${first ? ` (line ${first.line}: ${first.message})` : ''}\n`,
    );
    return EXIT_BAD_INPUT;
  } catch (err) {
    return fail(io, 'estimate', err, options);
  }
}

/** --base-url: the server's own estimate (its prices, learned limits and queue), with an ETA. */
async function serverEstimate(
  input: string,
  options: EstimateCommandOptions,
  io: CliIo,
): Promise<number> {
  const estimate = await estimateOnServer(clientFor(options), input, {
    endpoint: parseEndpoint(options.endpoint),
    completionWindow: options.completionWindow,
  });
  if (options.json) printJson(io, estimate);
  else io.stdout(formatServerEstimate(estimate));
  return estimate.invalid_lines === 0 ? EXIT_OK : EXIT_BAD_INPUT;
}
