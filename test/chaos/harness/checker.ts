/**
 * The chaos checker: compares what went in (the input's custom_ids), what the upstream saw (the
 * simulator's call log, calls tagged `[sim:id=<custom_id>]`) and what came out (the output and
 * error files of a terminal batch). design.md §4 invariants 1 and 2 in numbers.
 */
import type { SimCall } from '../../../src/simulator/simulator.ts';

/** One parsed line of an output or error file. */
export type ResultLine = Record<string, any>;

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

export interface CheckInput {
  inputIds: readonly string[];
  calls: readonly SimCall[];
  outputLines: readonly ResultLine[];
  errorLines: readonly ResultLine[];
  /** The terminal batch's request_counts; the line count is checked against its total. */
  counts?: RequestCounts | null | undefined;
}

export interface CheckReport {
  /** Input custom_ids with no line in either file. */
  lost: string[];
  /** custom_ids with more than one line across both files. */
  duplicated: string[];
  /** Lines whose custom_id was not in the input (or that carry none). */
  unexpected: string[];
  /** custom_ids the upstream answered 2xx more than once, with how many 2xx answers. */
  duplicatePaid: { customId: string; paid: number }[];
  /** Extra 2xx answers in all: Σ (paid − 1). */
  duplicatePaidCalls: number;
  linesVsTotal: {
    ok: boolean;
    lines: number;
    outputLines: number;
    errorLines: number;
    total: number | null;
    completed: number | null;
    failed: number | null;
  };
  /** Error lines by `error.code` (or `status_<n>` for an upstream answer). */
  errorCodes: Record<string, number>;
  /** Upstream calls in all, and calls that carried no `id=` tag. */
  upstreamCalls: number;
  untaggedCalls: number;
  ok: boolean;
}

const ID_PART = /^id=(.+)$/;

/** The custom_id a call was tagged with (`[sim:...;id=<custom_id>;...]`), or null. */
export function idOfCall(call: Pick<SimCall, 'marker'>): string | null {
  if (call.marker === null) return null;
  for (const part of call.marker.split(';')) {
    const m = ID_PART.exec(part.trim());
    if (m?.[1] !== undefined) return m[1];
  }
  return null;
}

export const isPaid = (call: Pick<SimCall, 'status'>): boolean =>
  call.status >= 200 && call.status < 300;

/** Calls grouped by tagged custom_id, in log order. */
export function callsById(calls: readonly SimCall[]): Map<string, SimCall[]> {
  const byId = new Map<string, SimCall[]>();
  for (const call of calls) {
    const id = idOfCall(call);
    if (id === null) continue;
    let list = byId.get(id);
    if (!list) byId.set(id, (list = []));
    list.push(call);
  }
  return byId;
}

export function check(input: CheckInput): CheckReport {
  const expected = new Set(input.inputIds);
  const seen = new Map<string, number>();
  const unexpected: string[] = [];
  const errorCodes: Record<string, number> = {};
  for (const line of [...input.outputLines, ...input.errorLines]) {
    const id: unknown = line.custom_id;
    if (typeof id !== 'string' || !expected.has(id)) {
      unexpected.push(typeof id === 'string' ? id : JSON.stringify(line).slice(0, 120));
      continue;
    }
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  for (const line of input.errorLines) {
    const code =
      typeof line.error?.code === 'string'
        ? (line.error.code as string)
        : `status_${String(line.response?.status_code)}`;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  }
  const lost = input.inputIds.filter((id) => !seen.has(id));
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);

  const duplicatePaid: { customId: string; paid: number }[] = [];
  let untaggedCalls = 0;
  const paid = new Map<string, number>();
  for (const call of input.calls) {
    const id = idOfCall(call);
    if (id === null) {
      untaggedCalls++;
      continue;
    }
    if (isPaid(call)) paid.set(id, (paid.get(id) ?? 0) + 1);
  }
  for (const [customId, n] of paid) if (n > 1) duplicatePaid.push({ customId, paid: n });

  const outputLines = input.outputLines.length;
  const errorLines = input.errorLines.length;
  const lines = outputLines + errorLines;
  const counts = input.counts ?? null;
  const linesOk =
    counts === null
      ? lines === input.inputIds.length
      : lines === counts.total &&
        outputLines === counts.completed &&
        counts.completed + counts.failed <= counts.total;
  const report: CheckReport = {
    lost,
    duplicated,
    unexpected,
    duplicatePaid,
    duplicatePaidCalls: duplicatePaid.reduce((sum, d) => sum + d.paid - 1, 0),
    linesVsTotal: {
      ok: linesOk,
      lines,
      outputLines,
      errorLines,
      total: counts?.total ?? null,
      completed: counts?.completed ?? null,
      failed: counts?.failed ?? null,
    },
    errorCodes,
    upstreamCalls: input.calls.length,
    untaggedCalls,
    ok: false,
  };
  report.ok = lost.length === 0 && duplicated.length === 0 && unexpected.length === 0 && linesOk;
  return report;
}

/** One line of figures for logs and assertion messages. */
export function formatReport(report: CheckReport, tag = ''): string {
  const sample = (ids: string[]) =>
    ids.length === 0 ? '0' : `${ids.length} (${ids.slice(0, 5).join(', ')}…)`;
  const l = report.linesVsTotal;
  return (
    `${tag} checker: lost=${sample(report.lost)} duplicated=${sample(report.duplicated)} ` +
    `unexpected=${sample(report.unexpected)} duplicatePaidCalls=${report.duplicatePaidCalls} ` +
    `(ids ${report.duplicatePaid.length}) lines=${l.lines} (output ${l.outputLines} + error ${l.errorLines}) ` +
    `vs total=${String(l.total)} completed=${String(l.completed)} failed=${String(l.failed)} ` +
    `linesVsTotal=${l.ok ? 'ok' : 'MISMATCH'} upstreamCalls=${report.upstreamCalls} ` +
    `errorCodes=${JSON.stringify(report.errorCodes)}`
  ).trim();
}

// ---------------------------------------------------------------------------------------------
// Per-kill figures for crash loops.

/** What the test saw at one kill: the log position and the database right after the process died. */
export interface KillPoint {
  /** The last call-log seq once the process was gone (later calls come from the next run). */
  seqAtKill: number;
  /** Wall-clock time of the kill (same clock as the simulator's `atMs`). */
  atMs: number;
  /** Items the database held as `leased` (claimed, no recorded outcome) after the kill. */
  leased: ReadonlySet<string>;
  /** Items whose outcome the database held as recorded (succeeded/failed) after the kill. */
  recorded: ReadonlySet<string>;
}

export interface KillFigures {
  kill: number;
  /** Items sent in the run that ended here and still without a recorded outcome. */
  inFlightSent: number;
  /** Of those, the ones the upstream answered 2xx (paid, answer lost with the process). */
  inFlightPaid: number;
  /** Extra 2xx answers whose earlier 2xx answer was lost to this kill. */
  duplicatePaid: number;
  /** Leased rows at the kill (in flight + claimed ahead, not yet sent). */
  leased: number;
  /** Recorded items that were sent again after this kill (must be none). */
  resentRecorded: string[];
  /** Age at the kill of the oldest 2xx answer still unrecorded (ms; answers come ≤ latency later). */
  oldestUnrecordedPaidMs: number;
}

export interface KillAnalysis {
  perKill: KillFigures[];
  /** Second 2xx answers with no kill between them and the first (must be none in a kill loop). */
  unexplainedDuplicates: string[];
}

/** Attributes every duplicate paid call to the kill that lost the first answer. */
export function analyseKills(calls: readonly SimCall[], kills: readonly KillPoint[]): KillAnalysis {
  const byId = callsById(calls);
  const perKill: KillFigures[] = kills.map((k, i) => {
    const from = i === 0 ? 0 : (kills[i - 1]?.seqAtKill ?? 0);
    let inFlightSent = 0;
    let inFlightPaid = 0;
    let oldestUnrecordedPaidMs = 0;
    for (const id of k.leased) {
      const inRun = (byId.get(id) ?? []).filter((c) => c.seq > from && c.seq <= k.seqAtKill);
      if (inRun.length > 0) inFlightSent++;
      const paid = inRun.filter(isPaid);
      if (paid.length > 0) inFlightPaid++;
      for (const c of paid)
        oldestUnrecordedPaidMs = Math.max(oldestUnrecordedPaidMs, k.atMs - c.atMs);
    }
    const resentRecorded = [...k.recorded].filter((id) =>
      (byId.get(id) ?? []).some((c) => c.seq > k.seqAtKill),
    );
    return {
      kill: i + 1,
      inFlightSent,
      inFlightPaid,
      duplicatePaid: 0,
      leased: k.leased.size,
      resentRecorded,
      oldestUnrecordedPaidMs,
    };
  });
  const unexplainedDuplicates: string[] = [];
  for (const [id, list] of byId) {
    const paid = list.filter(isPaid).map((c) => c.seq);
    for (let j = 1; j < paid.length; j++) {
      const a = paid[j - 1] as number;
      const b = paid[j] as number;
      const k = kills.findIndex((kp) => kp.seqAtKill >= a && kp.seqAtKill < b);
      const figures = perKill[k];
      if (figures) figures.duplicatePaid++;
      else unexplainedDuplicates.push(id);
    }
  }
  return { perKill, unexplainedDuplicates };
}

export function formatKills(analysis: KillAnalysis): string {
  const rows = analysis.perKill.map(
    (k) =>
      `#${k.kill}: dupPaid=${k.duplicatePaid} inFlightPaid=${k.inFlightPaid} inFlightSent=${k.inFlightSent} leased=${k.leased} oldestUnrecordedPaid=${k.oldestUnrecordedPaidMs}ms` +
      (k.resentRecorded.length > 0 ? ` RESENT=${k.resentRecorded.length}` : ''),
  );
  return rows.join('\n');
}
