import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SplitLimits } from './split-plan.ts';

/** One batch of a job: part `part` of round `round` (round 0 = the input, 1… = retries). */
export interface JobBatch {
  id: string;
  input_file_id: string;
  round: number;
  part: number;
  endpoint: string;
  model: string | null;
  lines: number;
}

/** One submission round: the input (round 0) or a retry of the lines that did not succeed. */
export interface JobRound {
  round: number;
  /** Parts the round was split into; fewer batches than this means submission was interrupted. */
  parts_planned: number;
  /** Lines resubmitted that the previous round had counted as failed (not expired/cancelled). */
  retried_failed: number;
}

/** What is remembered locally about a job, so later commands work on it by one id. */
export interface JobManifest {
  version: 1;
  id: string;
  created_at_ms: number;
  base_url: string | null;
  /**
   * Where the key came from at submit (`--api-key`, `OPENBATCH_API_KEY`, `OPENAI_API_KEY`,
   * `open-mode`), never the key itself: later commands on the job read the same variable.
   */
  api_key_source?: string | null;
  completion_window: string;
  input: { path: string | null; sha256: string | null; lines: number };
  limits: SplitLimits;
  rounds: JobRound[];
  batches: JobBatch[];
  /** The aggregate last seen by status/wait, for `list` without network. */
  last_counts: { total: number; completed: number; failed: number; state: string } | null;
}

/** Persistence for job manifests and each job's custom_ids in input order. */
export interface JobStore {
  load(id: string): Promise<JobManifest | null>;
  save(job: JobManifest): Promise<void>;
  list(): Promise<JobManifest[]>;
  saveIds(id: string, ids: readonly string[]): Promise<void>;
  /** Forgets a job (a submission that failed before anything was created). */
  remove(id: string): Promise<void>;
  loadIds(id: string): Promise<string[] | null>;
}

/** The directory the CLI and SDK keep jobs in unless told otherwise. */
export function defaultJobsDir(): string {
  return join(homedir(), '.openbatch', 'jobs');
}

/** A fresh job id: time-ordered, short, safe as a file name. */
export function newJobId(nowMs: number = Date.now()): string {
  return `job_${nowMs.toString(36)}${randomBytes(4).toString('hex')}`;
}

const JOB_ID = /^[A-Za-z0-9_.-]{1,100}$/;

/** Job manifests as `<dir>/<id>.json` plus `<dir>/<id>.ids.jsonl`, each written atomically. */
export function fsJobStore(dir: string = defaultJobsDir()): JobStore {
  const path = (id: string, suffix: string): string => {
    if (!JOB_ID.test(id)) throw new Error(`invalid job id '${id}'`);
    return join(dir, `${id}${suffix}`);
  };
  return {
    load: async (id) => readJson<JobManifest>(path(id, '.json')),
    save: async (job) => writeAtomic(dir, path(job.id, '.json'), JSON.stringify(job, null, 2)),
    list: async () => listJobs(dir),
    remove: async (id) => {
      await rm(path(id, '.json'), { force: true });
      await rm(path(id, '.ids.jsonl'), { force: true });
    },
    saveIds: async (id, ids) =>
      writeAtomic(dir, path(id, '.ids.jsonl'), ids.map((x) => JSON.stringify(x)).join('\n')),
    loadIds: async (id) => {
      const text = await readText(path(id, '.ids.jsonl'));
      if (text === null) return null;
      return text === '' ? [] : text.split('\n').map((x) => JSON.parse(x) as string);
    },
  };
}

/** Jobs kept in memory only (the SDK's default when no jobs directory is given). */
export function memoryJobStore(): JobStore {
  const jobs = new Map<string, JobManifest>();
  const ids = new Map<string, string[]>();
  return {
    load: async (id) => structuredClone(jobs.get(id) ?? null),
    save: async (job) => void jobs.set(job.id, structuredClone(job)),
    list: async () => [...jobs.values()].map((j) => structuredClone(j)),
    remove: async (id) => {
      jobs.delete(id);
      ids.delete(id);
    },
    saveIds: async (id, list) => void ids.set(id, [...list]),
    loadIds: async (id) => ids.get(id) ?? null,
  };
}

async function listJobs(dir: string): Promise<JobManifest[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const jobs: JobManifest[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const job = await readJson<JobManifest>(join(dir, name));
    if (job?.version === 1) jobs.push(job);
  }
  return jobs.sort((a, b) => a.created_at_ms - b.created_at_ms);
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function readJson<T>(path: string): Promise<T | null> {
  const text = await readText(path);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`job file ${path} is not valid JSON`);
  }
}

/** Temp file then rename: a crash leaves the old manifest or the new one, never half of one. */
async function writeAtomic(dir: string, path: string, text: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
