// Small line charts as inline SVG: no library, no canvas, readable by
// screen readers through their label (the latest and the highest value).

import { s } from './dom.js';

/**
 * A chart of `points` ({time, value}; value null for "no data") over the
 * last `spanMs`, ending at `now`. `format` renders a value for the label.
 * An empty interval (no calls, so no p99) leaves no point.
 */
export function lineChart({ title, points, spanMs, now, format, width = 320, height = 90 }) {
  const pad = { left: 4, right: 4, top: 16, bottom: 14 };
  const plotted = points.filter((point) => point.value !== null && now - point.time <= spanMs);
  const highest = Math.max(0, ...plotted.map((point) => point.value));
  const top = highest > 0 ? highest * 1.1 : 1;
  const x = (time) => pad.left + ((time - (now - spanMs)) / spanMs) * (width - pad.left - pad.right);
  const y = (value) => height - pad.bottom - (value / top) * (height - pad.top - pad.bottom);
  const latest = plotted.at(-1);
  const span = spanText(spanMs);
  const summary = plotted.length
    ? `${title}: latest ${format(latest.value)}, highest ${format(highest)} over the last ${span}`
    : `${title}: no data yet`;
  return s(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': summary,
      dataset: { points: String(plotted.length) },
    },
    s('title', {}, summary),
    s('text', { x: pad.left, y: 11, class: 'chart-title' }, `${title} — max ${plotted.length ? format(highest) : '—'}`),
    s('line', {
      x1: pad.left,
      x2: width - pad.right,
      y1: height - pad.bottom,
      y2: height - pad.bottom,
      class: 'chart-axis',
    }),
    s('text', { x: pad.left, y: height - 2, class: 'chart-tick' }, `−${span}`),
    s('text', { x: width - pad.right, y: height - 2, class: 'chart-tick', 'text-anchor': 'end' }, 'now'),
    plotted.length > 1
      ? s('polyline', {
          class: 'chart-line',
          points: plotted.map((point) => `${x(point.time).toFixed(1)},${y(point.value).toFixed(1)}`).join(' '),
        })
      : null,
    plotted.length
      ? s('circle', { class: 'chart-dot', cx: x(latest.time).toFixed(1), cy: y(latest.value).toFixed(1), r: 2.5 })
      : null,
  );
}

/** A span as the axis and the label say it: seconds under two minutes. */
function spanText(ms) {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
