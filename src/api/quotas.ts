import { AppError } from '../domain/app-error.ts';
import type { Store } from '../store/store.ts';

/** What one project may hold at once (configurable; defaults in config.ts). */
export interface ProjectQuotas {
  /** Batches validating, in progress, finalizing or cancelling. @default 500 */
  maxActiveBatches: number;
  /** Files stored (uploads and batch outputs). @default 10,000 */
  maxFiles: number;
  /** Bytes of those files. @default 50 GiB */
  maxStoredBytes: number;
  /** Uploads streaming in at once. @default 4 */
  maxConcurrentUploads: number;
}

const quotaError = (message: string): AppError =>
  new AppError('rate_limited', message, { wireCode: 'quota_exceeded' });

/**
 * Per-project quotas, answered with 429 in OpenAI's envelope before any work is done: a
 * project cannot fill the disk, the batch queue or the upload slots that others share.
 */
export class Quotas {
  readonly #store: Store;
  readonly #limits: ProjectQuotas;
  readonly #uploading = new Map<string, number>();

  constructor(store: Store, limits: ProjectQuotas) {
    this.#store = store;
    this.#limits = limits;
  }

  async checkNewBatch(project: string): Promise<void> {
    const { activeBatches } = await this.#store.projectUsage(project);
    if (activeBatches >= this.#limits.maxActiveBatches)
      throw quotaError(
        `Project '${project}' has ${activeBatches} active batches, the most allowed (OPENBATCH_MAX_ACTIVE_BATCHES=${this.#limits.maxActiveBatches}). Wait for some to finish, or cancel them.`,
      );
  }

  /** Takes one of the project's upload slots (checking its files first); returns the release. */
  async beginUpload(project: string): Promise<() => void> {
    const running = this.#uploading.get(project) ?? 0;
    if (running >= this.#limits.maxConcurrentUploads)
      throw quotaError(
        `Project '${project}' already has ${running} uploads in progress, the most allowed at once (OPENBATCH_MAX_CONCURRENT_UPLOADS). Retry when one finishes.`,
      );
    await this.checkStored(project, 0);
    this.#uploading.set(project, running + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#uploading.get(project) ?? 1) - 1;
      if (left > 0) this.#uploading.set(project, left);
      else this.#uploading.delete(project);
    };
  }

  /** Refuses a new file of `bytes` that would take the project past its files or bytes quota. */
  async checkStored(project: string, bytes: number): Promise<void> {
    const usage = await this.#store.projectUsage(project);
    if (usage.files >= this.#limits.maxFiles)
      throw quotaError(
        `Project '${project}' stores ${usage.files} files, the most allowed (OPENBATCH_MAX_FILES=${this.#limits.maxFiles}). Delete some first.`,
      );
    if (usage.fileBytes + bytes > this.#limits.maxStoredBytes)
      throw quotaError(
        `Project '${project}' would store ${usage.fileBytes + bytes} bytes of files, more than allowed (OPENBATCH_MAX_STORED_BYTES=${this.#limits.maxStoredBytes}). Delete some first.`,
      );
  }
}
