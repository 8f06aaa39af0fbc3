/** A small SVG line chart (no library): one series, an optional ±band, axis labels, accessible summary. */

const NS = 'http://www.w3.org/2000/svg';

/** One chart's data. */
export interface ChartSeries {
  title: string;
  xs: number[];
  ys: number[];
  /** Half-width of a shaded band around each point (e.g. the reward std). */
  band?: number[];
}

function el(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Formats a tick value compactly (1.2e-5, 0.123, 12.3). */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

/** Draws `s` into an `<svg>` of width x height; an empty series shows "no data yet". */
export function lineChart(s: ChartSeries, width = 320, height = 160): SVGSVGElement {
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart' }) as SVGSVGElement;
  const last = s.ys.length ? s.ys[s.ys.length - 1] : NaN;
  svg.setAttribute('aria-label', `${s.title}: ${s.ys.length} epochs${s.ys.length ? `, latest ${fmt(last)}` : ''}`);
  const pad = { l: 48, r: 10, t: 22, b: 24 };
  const title = el('text', { x: pad.l, y: 14, class: 'chart-title' });
  title.textContent = `${s.title}${s.ys.length ? ` — ${fmt(last)}` : ''}`;
  svg.append(title);
  const pts = s.xs.map((x, i) => ({ x, y: s.ys[i], b: s.band?.[i] ?? 0 })).filter((p) => Number.isFinite(p.y));
  if (pts.length === 0) {
    const t = el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' });
    t.textContent = 'no epochs yet';
    svg.append(t);
    return svg;
  }
  let lo = Math.min(...pts.map((p) => p.y - p.b)), hi = Math.max(...pts.map((p) => p.y + p.b));
  if (hi - lo < 1e-12) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
  const x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
  const sx = (x: number) => pad.l + (x1 === x0 ? (width - pad.l - pad.r) / 2 : ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r));
  const sy = (y: number) => pad.t + (1 - (y - lo) / (hi - lo)) * (height - pad.t - pad.b);
  svg.append(el('line', { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: 'axis' }));
  svg.append(el('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: 'axis' }));
  for (const [v, anchor] of [[hi, 'hi'], [lo, 'lo']] as const) {
    const t = el('text', { x: pad.l - 4, y: sy(v) + (anchor === 'hi' ? 8 : 0), 'text-anchor': 'end', class: 'tick' });
    t.textContent = fmt(v);
    svg.append(t);
  }
  for (const x of x0 === x1 ? [x0] : [x0, x1]) {
    const anchor = x0 === x1 ? 'middle' : x === x0 ? 'start' : 'end';
    const t = el('text', { x: sx(x), y: height - 8, 'text-anchor': anchor, class: 'tick' });
    t.textContent = `epoch ${x + 1}`;
    svg.append(t);
  }
  if (pts.some((p) => p.b > 0)) {
    const upper = pts.map((p) => `${sx(p.x)},${sy(p.y + p.b)}`);
    const lower = [...pts].reverse().map((p) => `${sx(p.x)},${sy(p.y - p.b)}`);
    svg.append(el('polygon', { points: [...upper, ...lower].join(' '), class: 'band' }));
  }
  svg.append(el('polyline', { points: pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' '), class: 'line' }));
  for (const p of pts) svg.append(el('circle', { cx: sx(p.x), cy: sy(p.y), r: 3, class: 'dot' }));
  return svg;
}
