import { Option, type Command } from 'commander';
import type OpenAI from 'openai';
import { APIConnectionError, APIError, AuthenticationError, OpenAIError } from 'openai';
import { createBatchClient } from '../sdk/batch-client.ts';
import { InputChangedError, InvalidLinesError, JobNotFoundError } from '../sdk/errors.ts';
import { defaultJobsDir, fsJobStore, type JobManifest, type JobStore } from '../sdk/job-store.ts';
import type { CliIo } from './io.ts';
import { clientEnv } from '../config/client-env.ts';

/** Exit codes of the client commands: 2 = bad input or usage, 1 = the work failed. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

/** A bad flag or argument: reported in one line with exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Flags every command against a Batch API takes. */
export interface ClientFlags {
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
}

/** Where job manifests live (--jobs-dir). */
export interface JobsFlags {
  jobsDir?: string | undefined;
}

/** How a command prints. */
export interface OutputFlags {
  json?: boolean | undefined;
  /** Draw a live progress bar (the terminal is interactive); tests leave it off. */
  tty?: boolean | undefined;
}

/** Adds --base-url and --api-key (keys: --api-key, OPENBATCH_API_KEY, then OPENAI_API_KEY). */
export function clientOptions(cmd: Command): Command {
  return cmd
    .option('--base-url <url>', 'Batch API base URL (default: OPENAI_BASE_URL, else OpenAI)')
    .option(
      '--api-key <key>',
      'API key (default: OPENBATCH_API_KEY, then OPENAI_API_KEY; none needed for a local openbatch in open mode)',
    );
}

/** Adds --jobs-dir (env OPENBATCH_JOBS_DIR, read by commander). */
export function jobsOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--jobs-dir <dir>', `where job manifests live (default: ${defaultJobsDir()})`).env(
      'OPENBATCH_JOBS_DIR',
    ),
  );
}

/** Adds --json and an "Examples" section to the help. */
export function finishCommand(cmd: Command, examples: readonly string[]): Command {
  return cmd
    .option('--json', 'print a JSON result on stdout (for scripts)')
    .addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
}

/** The client for a job: explicit flags win, then the base URL the job was submitted to. */
export function clientFor(flags: ClientFlags, job?: JobManifest): OpenAI {
  const baseURL = flags.baseUrl ?? job?.base_url ?? clientEnv().OPENAI_BASE_URL;
  return createBatchClient({ baseURL, apiKey: resolveApiKey(flags, baseURL, job).key });
}

const LOOPBACK_URL = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/i;
/** What a local openbatch in open mode is sent: it takes any bearer token. */
const OPEN_MODE_KEY = 'openbatch-open-mode';

/**
 * The API key and where it came from: --api-key, then the variable the job was submitted with,
 * then OPENBATCH_API_KEY, then OPENAI_API_KEY; a loopback server with none of them gets a
 * placeholder (open mode needs no key). Anything else is a one-line usage error naming them.
 */
export function resolveApiKey(
  flags: ClientFlags,
  baseURL: string | undefined,
  job?: JobManifest,
): { key: string; source: string } {
  if (flags.apiKey) return { key: flags.apiKey, source: '--api-key' };
  const env = clientEnv();
  const remembered = job?.api_key_source;
  for (const name of ['OPENBATCH_API_KEY', 'OPENAI_API_KEY'] as const)
    if (remembered === name && env[name]) return { key: env[name], source: name };
  for (const name of ['OPENBATCH_API_KEY', 'OPENAI_API_KEY'] as const)
    if (env[name]) return { key: env[name], source: name };
  if (baseURL && LOOPBACK_URL.test(baseURL)) return { key: OPEN_MODE_KEY, source: 'open-mode' };
  const hint =
    remembered === '--api-key' ? ` (job ${job?.id ?? ''} was submitted with --api-key)` : '';
  throw new UsageError(
    `no API key${hint}: pass --api-key KEY, or set OPENBATCH_API_KEY (an openbatch server) or OPENAI_API_KEY (OpenAI)`,
  );
}

/** The job store of --jobs-dir (or OPENBATCH_JOBS_DIR, or ~/.openbatch/jobs). */
export function jobStoreFor(flags: JobsFlags): JobStore {
  return fsJobStore(flags.jobsDir ?? defaultJobsDir());
}

/** Loads a job by id, or the newest one for `last`. */
export async function loadJob(store: JobStore, id: string, flags: JobsFlags): Promise<JobManifest> {
  const job = id === 'last' ? ((await store.list()).at(-1) ?? null) : await store.load(id);
  if (!job) throw new JobNotFoundError(id, flags.jobsDir ?? defaultJobsDir());
  return job;
}

/** `openbatch <name> <job>`: a command about one job, with the client and --jobs-dir options. */
export function jobCommand(program: Command, name: string, description: string): Command {
  return jobsOption(
    clientOptions(
      program.command(name).description(description).argument('<job>', "job id (or 'last')"),
    ),
  );
}

/** What a job command works with: the manifest store, the named job and a client for it. */
export async function openJob(
  flags: ClientFlags & JobsFlags & { job: string },
): Promise<{ store: JobStore; job: JobManifest; client: OpenAI }> {
  const store = jobStoreFor(flags);
  const job = await loadJob(store, flags.job, flags);
  return { store, job, client: clientFor(flags, job) };
}

/** Writes a value as pretty JSON on stdout. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Reports a failure as exactly one line on stderr (and a JSON error on stdout with --json) and
 * returns the exit code: 2 for bad input, 1 for everything else.
 */
export function fail(
  io: CliIo,
  command: string,
  err: unknown,
  flags: OutputFlags & ClientFlags = {},
): number {
  const described = describeError(err);
  const { code, kind } = described;
  const message = described.message + baseUrlHint(err, flags.baseUrl);
  io.stderr(`openbatch ${command}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (flags.json) printJson(io, { error: { kind, message } });
  return code;
}

/** How a failure is reported: one line, an exit code, and a kind for --json. */
export interface DescribedError {
  message: string;
  code: number;
  kind: string;
}

/** A one-line message and exit code for any error a client command can meet. */
export function describeError(err: unknown): DescribedError {
  const bad = (message: string, kind = 'bad_input'): DescribedError => ({
    message,
    code: EXIT_BAD_INPUT,
    kind,
  });
  const failed = (message: string, kind: string): DescribedError => ({
    message,
    code: EXIT_FAILED,
    kind,
  });
  if (err instanceof InvalidLinesError) return bad(err.message, 'invalid_lines');
  if (err instanceof JobNotFoundError || err instanceof InputChangedError) return bad(err.message);
  if (err instanceof UsageError) return bad(err.message);
  if (err instanceof AuthenticationError)
    return failed(`the server rejected the API key (401): ${err.message}`, 'auth');
  if (err instanceof APIConnectionError)
    return failed(`cannot reach the Batch API: ${rootCause(err)}`, 'connection');
  if (err instanceof APIError) return failed(err.message, 'api');
  // Raised by the client before any request, e.g. no API key anywhere.
  if (err instanceof OpenAIError) return bad(err.message, 'config');
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return bad(`file not found: ${e.path ?? e.message}`);
  if (e?.code === 'EISDIR') return bad(`not a file: ${e.path ?? e.message}`);
  return failed(e instanceof Error ? e.message : String(err), 'error');
}

/** The innermost cause's message ("connect ECONNREFUSED 127.0.0.1:9" rather than "fetch failed"). */
function rootCause(err: Error): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/** A 404 "Invalid URL" from a base URL without /v1 almost always means the /v1 was left out. */
function baseUrlHint(err: unknown, baseUrl: string | undefined): string {
  if (!(err instanceof APIError) || err.status !== 404 || baseUrl === undefined) return '';
  if (!/Invalid URL/i.test(err.message) || /\/v1\/?$/.test(baseUrl)) return '';
  return ` (did you mean --base-url ${baseUrl.replace(/\/+$/, '')}/v1 ?)`;
}
