import type { EstimateReport } from '../sdk/estimate.ts';
import type { ServerEstimate } from '../sdk/server-estimate.ts';
import { formatDuration } from './progress-display.ts';

const SHOWN_ISSUES = 20;
const n = (v: number): string => v.toLocaleString('en-US');
const usd = (v: number | null | undefined): string =>
  v === null || v === undefined ? 'n/a' : `$${v.toFixed(6)}`;

/** The estimate as text: invalid lines, a per-model token and cost table, assumptions, turnaround. */
export function formatEstimate(r: EstimateReport): string {
  const out = [
    `${r.source}: ${n(r.lines)} lines, ${n(r.valid)} valid, ${n(r.invalid_count)} invalid`,
  ];
  for (const issue of r.invalid.slice(0, SHOWN_ISSUES))
    out.push(`  line ${issue.line}: ${issue.code}: ${issue.message}`);
  if (r.invalid_count > SHOWN_ISSUES)
    out.push(`  … and ${n(r.invalid_count - SHOWN_ISSUES)} more (--json lists up to 1,000)`);
  out.push('', table(r));
  if (r.total.savings_usd !== null && r.total.standard_usd)
    out.push(
      `Batch saves ${usd(r.total.savings_usd)} (${Math.round((r.total.savings_usd / r.total.standard_usd) * 100)}%) against standard prices.`,
    );
  out.push(...assumptions(r), turnaround(r));
  return `${out.join('\n')}\n`;
}

function table(r: EstimateReport): string {
  const header = [
    'Model',
    'Lines',
    'Input tokens',
    'Max output tokens',
    'Standard price',
    'Batch price',
  ];
  const rows = r.models.map((m) => [
    m.model,
    n(m.lines),
    n(m.input_tokens),
    n(m.max_output_tokens),
    usd(m.standard?.total),
    usd(m.batch?.total),
  ]);
  const total = [
    'Total',
    n(r.valid),
    n(r.total.input_tokens),
    n(r.total.max_output_tokens),
    usd(r.total.standard_usd),
    usd(r.total.batch_usd),
  ];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...[...rows, total].map((row) => (row[i] ?? '').length)),
  );
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const fmt = (c: string[]): string =>
    `| ${c.map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [rule, fmt(header), rule, ...rows.map(fmt), rule, fmt(total), rule].join('\n');
}

function assumptions(r: EstimateReport): string[] {
  const lines = [
    "Output tokens are an upper bound: each line's max_completion_tokens / max_tokens / max_output_tokens.",
  ];
  const assumed = r.models.reduce((s, m) => s + m.lines_assumed_max_output, 0);
  if (assumed > 0)
    lines.push(
      `${n(assumed)} line(s) set no output limit and were counted at ${n(r.default_max_tokens)} (--default-max-tokens).`,
    );
  const approx = r.models.reduce((s, m) => s + m.approximate_lines, 0);
  if (approx > 0)
    lines.push(
      `${n(approx)} line(s) have approximate input counts (images, tools, schemas, or a model without a known tokenizer).`,
    );
  if (r.unpriced.length > 0)
    lines.push(`No price known for ${r.unpriced.join(', ')}: pass --pricing FILE.`);
  return lines;
}

function turnaround(r: EstimateReport): string {
  const t = r.turnaround;
  if (t.seconds === null)
    return 'Turnaround: pass --rpm and/or --tpm (the upstream limits) for an estimate.';
  const limits = [t.rpm ? `${n(t.rpm)} RPM` : null, t.tpm ? `${n(t.tpm)} TPM` : null]
    .filter(Boolean)
    .join(' / ');
  return `Turnaround at ${limits}: about ${formatDuration(t.seconds)} (bound by ${t.bound?.toUpperCase() ?? '?'}).`;
}

/** The server's estimate (`estimate --base-url`) as text. */
export function formatServerEstimate(e: ServerEstimate): string {
  const l = e.limits;
  const limit =
    l.binding === 'rpm' || l.binding === 'tpm'
      ? `${l.binding} ${n((l.binding === 'rpm' ? l.rpm : l.tpm) ?? 0)} (${l.source})`
      : l.binding;
  const eta =
    e.eta_seconds === null
      ? 'unknown (no limits known for this upstream yet)'
      : `${formatDuration(e.eta_seconds)}, bound by ${limit}${e.queued_ahead > 0 ? `, behind ${n(e.queued_ahead)} queued lines` : ''}`;
  return `${[
    `${n(e.requests)} requests (${n(e.invalid_lines)} invalid) to ${e.endpoint}`,
    `Tokens: ${n(e.input_tokens)} input, at most ${n(e.max_output_tokens)} output`,
    `Cost (at most): ${usd(e.cost_usd.standard)} standard, ${usd(e.cost_usd.batch)} batch`,
    `ETA: ${eta}${e.fits_completion_window === false ? ` — longer than the ${e.completion_window} window` : ''}`,
  ].join('\n')}\n`;
}
