/**
 * Prints benchmark figures as `name: value (target …)`, one block per scenario. Benchmarks assert
 * nothing; a figure that misses its target says MISSED so a reader (or a grep) finds it.
 */
import { fmt } from './bench-helpers.ts';

export interface FigureOptions {
  /** Appended to the number as written: '×', ' MiB', ' s'. */
  unit?: string;
  /** @default 0 */
  digits?: number;
  atLeast?: number;
  atMost?: number;
  below?: number;
  exactly?: number;
}

export function heading(title: string): void {
  console.log(`\n${title}`);
}

/** A figure with no number to check (a list of phases, a status). */
export function note(name: string, text: string): void {
  console.log(`  ${name}: ${text}`);
}

export function figure(name: string, value: number, options: FigureOptions = {}): void {
  const show = (n: number): string =>
    Number.isFinite(n) ? `${fmt(n, options.digits ?? 0)}${options.unit ?? ''}` : 'n/a';
  console.log(`  ${name}: ${show(value)}${targetText(value, options, show)}`);
}

function targetText(value: number, o: FigureOptions, show: (n: number) => string): string {
  if (o.atLeast !== undefined) return verdict(`≥ ${show(o.atLeast)}`, value >= o.atLeast);
  if (o.atMost !== undefined) return verdict(`≤ ${show(o.atMost)}`, value <= o.atMost);
  if (o.below !== undefined) return verdict(`< ${show(o.below)}`, value < o.below);
  if (o.exactly !== undefined) return verdict(show(o.exactly), value === o.exactly);
  return '';
}

// A comparison with NaN is false, so a figure that could not be measured also reads MISSED.
const verdict = (target: string, met: boolean): string =>
  ` (target ${target})${met ? '' : ' MISSED'}`;
