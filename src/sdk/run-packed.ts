import {
  packDocuments,
  unpackResults,
  type DocumentResult,
  type PackDocument,
  type PackOptions,
  type PackingTokens,
} from './pack-documents.ts';
import { runBatch, type RunBatchOptions } from './run-batch.ts';
import { buildUsageTable, type UsageTable } from './usage-table.ts';
import { addUsage, emptyUsage, type TokenUsage } from '../protocol/token-usage.ts';

/** What `runPackedDocuments` returns: one result per document, in document order. */
export interface PackedRunResult {
  documents: DocumentResult[];
  /** Requests sent: the packed ones, then one per retried document. */
  requests: number;
  /** Documents sent again alone because their packed answer was missing or malformed. */
  retried: string[];
  tokens: PackingTokens;
  usage: TokenUsage;
  table: UsageTable;
}

/**
 * The "many short documents in one request" strategy end to end: pack k per request, run the
 * batch, unpack, and send each document whose answer was missing or malformed again on its own.
 */
export async function runPackedDocuments(
  documents: readonly PackDocument[],
  options: PackOptions & Omit<RunBatchOptions, 'endpoint'>,
): Promise<PackedRunResult> {
  const packed = await packDocuments(documents, options);
  const first = await runBatch(packed.requests, options);
  const firstPass = unpackResults(packed, first.results);
  const byId = new Map(firstPass.documents.map((d) => [d.id, d]));
  const usageByModel = new Map(
    Object.entries(first.usageByModel).map(([model, u]) => [model, { ...u }] as const),
  );
  let requests = packed.requests.length;
  if (firstPass.retry.length > 0) {
    const again = new Set(firstPass.retry);
    const singles = await packDocuments(
      documents.filter((d) => again.has(d.id)),
      { ...options, k: 1, idPrefix: 'single' },
    );
    const jobId = options.jobId === undefined ? undefined : `${options.jobId}-singles`;
    const second = await runBatch(singles.requests, { ...options, jobId });
    for (const d of unpackResults(singles, second.results).documents) byId.set(d.id, d);
    for (const [model, u] of Object.entries(second.usageByModel))
      usageByModel.set(model, addUsage(usageByModel.get(model) ?? emptyUsage(), u));
    requests += singles.requests.length;
  }
  const table = buildUsageTable(usageByModel, options.pricing);
  return {
    documents: documents.flatMap((d) => byId.get(d.id) ?? []),
    requests,
    retried: firstPass.retry,
    tokens: packed.tokens,
    usage: table.usage,
    table,
  };
}
