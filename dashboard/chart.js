import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 1160;
const H = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * Lines per second over time from samples of a batch's finished-line count ({ tMs, done }), as
 * an inline SVG line chart. Rates between samples closer than 500 ms apart are merged.
 */
export function throughputChart(samples, idleMessage = 'collecting samples…') {
  const points = [];
  let prev = samples[0];
  for (const cur of samples.slice(1)) {
    if (cur.tMs - prev.tMs < 500) continue;
    points.push({ tMs: cur.tMs, rate: ((cur.done - prev.done) * 1000) / (cur.tMs - prev.tMs) });
    prev = cur;
  }
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'data-testid': 'throughput-chart',
  });
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  svg.append(
    s('line', {
      class: 'axis',
      x1: PAD.left,
      y1: H - PAD.bottom,
      x2: W - PAD.right,
      y2: H - PAD.bottom,
    }),
  );
  svg.append(
    s('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
  );
  if (points.length < 2) {
    svg.append(s('text', { x: PAD.left + 8, y: PAD.top + 20 }, idleMessage));
    return h('div', { class: 'chart' }, svg);
  }
  const t0 = points[0].tMs;
  const span = Math.max(1, points.at(-1).tMs - t0);
  const max = Math.max(1, ...points.map((p) => p.rate)) * 1.1;
  const xy = points.map((p) => [
    PAD.left + (innerW * (p.tMs - t0)) / span,
    PAD.top + innerH * (1 - p.rate / max),
  ]);
  const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const base = H - PAD.bottom;
  svg.append(
    s('polygon', { class: 'area', points: `${PAD.left},${base} ${line} ${xy.at(-1)[0]},${base}` }),
  );
  svg.append(s('polyline', { class: 'series', points: line }));
  svg.append(s('text', { x: 4, y: PAD.top + 10 }, `${max.toFixed(0)}/s`));
  svg.append(s('text', { x: 4, y: base }, '0'));
  svg.append(s('text', { x: PAD.left, y: H - 4 }, `${Math.round(span / 1000)} s of samples`));
  svg.append(
    s(
      'text',
      { x: W - PAD.right - 120, y: H - 4 },
      `last ${points.at(-1).rate.toFixed(1)} lines/s`,
    ),
  );
  return h('div', { class: 'chart' }, svg);
}
