// The plugins table: one row per plugin, its active version and its calls
// over the last minute, updated in place at every poll (so keyboard focus
// on a link survives the updates), and a chart pair per plugin.

import { h, cards, setText, short, bytes, rate, percent, seconds, problemBox } from './dom.js';
import { lineChart } from './charts.js';
import { HISTORY_MS, WINDOW_MS } from './metrics.js';

const COLUMNS = [
  'Name',
  'Active digest',
  'Signed by',
  'Size',
  'Engine',
  'State',
  'Calls/s',
  'Error rate',
  'p50',
  'p99',
  'In flight',
];

export function pluginsView({ live }) {
  const rows = new Map();
  const panels = new Map();
  let table = null;
  const tbody = h('tbody');
  const summary = h('p', { class: 'lede' });
  const problem = h('div');
  const charts = h('div', { class: 'charts' });
  const element = h(
    'div',
    { class: 'view' },
    h('h1', { tabindex: '-1' }, 'Plugins'),
    summary,
    problem,
    h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-labelledby': 'plugins-caption', tabindex: '0' },
      (table = h(
        'table',
        { class: 'plugins', id: 'plugins-table' },
        h(
          'caption',
          { id: 'plugins-caption' },
          `Loaded plugins: the active version, and calls over the last ${WINDOW_MS / 1000} s (latency from the service's histogram)`,
        ),
        h('thead', {}, h('tr', {}, COLUMNS.map((name) => h('th', { scope: 'col' }, name)))),
        tbody,
      )),
    ),
    h(
      'section',
      { 'aria-labelledby': 'charts-heading' },
      h('h2', { id: 'charts-heading' }, 'Calls per second and p99 latency'),
      h(
        'p',
        { class: 'hint' },
        `Since this page opened (up to the last ${HISTORY_MS / 60000} minutes), from its scrapes of /metrics every 2 s, kept in the page's memory only.`,
      ),
      charts,
    ),
  );

  function update() {
    // Replaced only when it changes: an alert is announced each time it
    // is inserted.
    const problemKey = JSON.stringify(live.listProblem);
    if (problem.dataset.shown !== problemKey) {
      problem.dataset.shown = problemKey;
      problem.replaceChildren(live.listProblem ? problemBox(live.listProblem, 'Cannot list the plugins') : '');
    }
    const plugins = live.plugins;
    const failed = plugins.filter((plugin) => plugin.last_error).length;
    setText(
      summary,
      `${plugins.length} plugin${plugins.length === 1 ? '' : 's'}` +
        (failed ? `, ${failed} with a failed load` : '') +
        (live.updated ? ` · updated ${live.updated.toLocaleTimeString()}` : ''),
    );
    const names = new Set(plugins.map((plugin) => plugin.name));
    for (const [name, row] of rows) {
      if (!names.has(name)) {
        row.main.remove();
        row.error.remove();
        rows.delete(name);
      }
    }
    let cursor = tbody.firstChild;
    for (const plugin of plugins) {
      let row = rows.get(plugin.name);
      if (!row) {
        row = makeRow(plugin.name);
        rows.set(plugin.name, row);
      }
      for (const node of [row.main, row.error]) {
        if (node === cursor) cursor = cursor.nextSibling;
        else tbody.insertBefore(node, cursor);
      }
      fill(row, plugin, live.history.summary(plugin.name));
    }
    cards(table);
    const now = live.history.latest()?.time ?? Date.now();
    const charted = plugins.filter((plugin) => plugin.digest);
    const chartedNames = new Set(charted.map((plugin) => plugin.name));
    for (const [name, panel] of panels) {
      if (!chartedNames.has(name)) {
        panel.element.remove();
        panels.delete(name);
      }
    }
    cursor = charts.firstChild;
    for (const plugin of charted) {
      let panel = panels.get(plugin.name);
      if (!panel) {
        panel = chartPanel(plugin.name, true);
        panels.set(plugin.name, panel);
      }
      if (panel.element === cursor) cursor = cursor.nextSibling;
      else charts.insertBefore(panel.element, cursor);
      panel.draw(live.history.series(plugin.name), now, live.history.samples[0]?.time ?? now);
    }
  }

  return { title: 'Plugins', element, update };
}

function makeRow(name) {
  const cells = {};
  const link = h('a', { href: `#/plugins/${encodeURIComponent(name)}` }, name);
  cells.badge = h('span', { class: 'badge' });
  const main = h(
    'tr',
    { dataset: { plugin: name } },
    h('th', { scope: 'row' }, link, ' ', cells.badge),
    COLUMNS.slice(1).map((column) => (cells[column] = h('td', { dataset: { column } }))),
  );
  cells.errorText = h('span');
  const error = h(
    'tr',
    { class: 'load-error', dataset: { pluginError: name }, hidden: true },
    h('td', { colspan: String(COLUMNS.length) }, cells.errorText),
  );
  return { main, error, cells };
}

function fill(row, plugin, figures) {
  const { cells } = row;
  const state = !plugin.digest ? 'failed' : plugin.last_error ? 'stale' : 'ok';
  row.main.dataset.state = state;
  setText(cells.badge, { failed: 'not loaded', stale: 'latest version failed', ok: '' }[state]);
  cells.badge.hidden = state === 'ok';
  row.error.hidden = !plugin.last_error;
  setText(
    cells.errorText,
    plugin.last_error
      ? `${state === 'failed' ? 'Load failed' : 'The latest version failed to load; the previous one still serves'}: ${plugin.last_error}`
      : '',
  );
  const digest = cells['Active digest'];
  if (digest.dataset.digest !== (plugin.digest ?? '')) {
    digest.dataset.digest = plugin.digest ?? '';
    digest.replaceChildren(plugin.digest ? h('code', { title: plugin.digest }, short(plugin.digest)) : '—');
  }
  setText(cells['Signed by'], signer(plugin.signature));
  setText(cells.Size, bytes(plugin.size_bytes));
  setText(cells.Engine, plugin.engine ?? '—');
  setText(cells.State, plugin.stateless === null ? '—' : plugin.stateless ? 'stateless' : 'stateful');
  setText(cells['Calls/s'], figures ? rate(figures.callsPerSecond ?? null) : '—');
  setText(cells['Error rate'], figures ? percent(figures.errorRate) : '—');
  setText(cells.p50, latency(figures?.p50));
  setText(cells.p99, latency(figures?.p99));
  setText(cells['In flight'], figures ? String(figures.inFlight) : '—');
}

/** Who signed the active module: the trusted key that verified it, else what it claims. */
export function signer(signature) {
  if (!signature) return '—';
  if (signature.trusted_key) return signature.trusted_key;
  if (signature.signed) return `unverified (${signature.key_ids.join(', ') || 'no key id'})`;
  return 'unsigned';
}

export function latency(quantile) {
  if (!quantile) return '—';
  return quantile.over ? `> ${seconds(quantile.value)}` : seconds(quantile.value);
}

/**
 * A plugin's two charts, calls/s and p99, redrawn in place (its caption
 * link, when it has one, keeps focus across redraws).
 */
export function chartPanel(name, withLink) {
  const calls = h('div', { class: 'chart-slot' });
  const p99 = h('div', { class: 'chart-slot' });
  const element = h(
    'figure',
    { class: 'chart-pair', dataset: { chart: name } },
    h('figcaption', {}, withLink ? h('a', { href: `#/plugins/${encodeURIComponent(name)}` }, name) : name),
    calls,
    p99,
  );
  /** Draws `series` up to `now`, over what the page has kept since `since` (one to ten minutes). */
  function draw(series, now, since) {
    const spanMs = Math.min(HISTORY_MS, Math.max(60_000, now - since));
    calls.replaceChildren(
      lineChart({
        title: 'calls/s',
        points: series.map((point) => ({ time: point.time, value: point.callsPerSecond })),
        spanMs,
        now,
        format: rate,
      }),
    );
    p99.replaceChildren(
      lineChart({
        title: 'p99',
        points: series.map((point) => ({ time: point.time, value: point.p99 })),
        spanMs,
        now,
        format: seconds,
      }),
    );
  }
  return { element, draw };
}
