// A tiny DOM builder: every value becomes a text node or an attribute, never HTML, so batch
// metadata, file names and upstream error messages cannot inject markup into the page.

/** h('td', { class: 'num' }, 'text', childNode) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US')),
  usd: (n) =>
    n === null || n === undefined ? '–' : `$${n < 0.01 && n > 0 ? n.toFixed(5) : n.toFixed(2)}`,
  rate: (n) => (n ? `${n.toFixed(1)}/s` : '–'),
  bytes: (n) => {
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v.toFixed(1)} ${units[i]}`;
  },
  /** 42 s, 5 min, 3 h, 2 d */
  duration: (s) => {
    if (s === null || s === undefined) return '–';
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${Math.round(s / 86400)} d`;
  },
  age: (unixS) => fmt.duration(Date.now() / 1000 - unixS),
  time: (unixS) => (unixS ? new Date(unixS * 1000).toLocaleString() : '–'),
};

/** The progress bar of a batch: finished lines in green, failed in red. */
export function progressBar(counts, big = false) {
  const total = counts?.total ?? 0;
  const pct = (n) => (total > 0 ? `${(100 * n) / total}%` : '0%');
  const done = h('div', { class: 'done' });
  const fail = h('div', { class: 'fail' });
  done.style.width = pct(counts?.completed ?? 0);
  fail.style.width = pct(counts?.failed ?? 0);
  return h('div', { class: big ? 'bar big' : 'bar', 'data-testid': 'progress' }, done, fail);
}

export const statusBadge = (status) =>
  h('span', { class: `status ${status}`, 'data-testid': 'status' }, status);
