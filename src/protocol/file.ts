import { z } from 'zod';

/** Purposes a client may upload with. */
export const UPLOAD_PURPOSES = [
  'assistants',
  'batch',
  'fine-tune',
  'vision',
  'user_data',
  'evals',
] as const;
/** Every purpose a file object can carry (uploads plus system-made files). */
export const FILE_PURPOSES = [
  ...UPLOAD_PURPOSES,
  'batch_output',
  'assistants_output',
  'fine-tune-results',
] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];
/** Purposes whose content may be downloaded. */
export const DOWNLOADABLE_PURPOSES: readonly FilePurpose[] = [
  'batch',
  'batch_output',
  'fine-tune-results',
  'evals',
];

/** OpenAI's File object, field for field. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: FilePurpose;
  status: 'uploaded' | 'processed' | 'error';
  status_details: string | null;
}

export interface FileDeleted {
  id: string;
  object: 'file';
  deleted: boolean;
}

/** Query of GET /v1/files. */
export const fileListQuerySchema = z.object({
  purpose: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: z.string().optional(),
});
export type FileListQuery = z.infer<typeof fileListQuerySchema>;

/** `expires_after` bounds shared by uploads and batch outputs (1 hour … 30 days). */
export const EXPIRES_AFTER_MIN_SECONDS = 3600;
export const EXPIRES_AFTER_MAX_SECONDS = 2_592_000;
