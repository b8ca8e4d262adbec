// One plugin: its active version, a "try it" form, its calls, exports,
// version history (with rollback), manifest, inspector report, and
// delete. Changes carry `If-Match` with the version this page shows, so
// a change made meanwhile by someone else is refused (409), not undone.

import * as api from './api.js';
import { h, fill, cards, setText, short, bytes, rate, percent, seconds, time, problemBox } from './dom.js';
import { signer, latency, chartPanel } from './view-plugins.js';

/** How often the page re-reads the plugin while it is open. */
const DESCRIBE_EVERY_MS = 5000;

export function pluginView({ live, announce }, name) {
  let detail = null;
  let tag = null;
  let shownKey = null;
  let fetching = null;
  let fetchedAt = 0;
  let destroyed = false;

  const overview = h('div', { class: 'overview' });
  const figures = h('dl', { class: 'figures' });
  const panel = chartPanel(name, false);
  const exports = h('div');
  const versions = h('div');
  const changeStatus = h('div', { id: 'change-status', 'aria-live': 'polite' });
  const manifest = h('div');
  const report = h('div');
  const danger = h('div');
  const tryIt = tryItForm(name, live.refresh);
  const sections = [
    section('try', 'Try it', tryIt.element),
    section('calls', 'Calls', figures, panel.element),
    section('exports', 'Exports', exports),
    section('versions', 'Versions', changeStatus, versions),
    section('manifest', 'Manifest and configuration', manifest),
    section('report', 'Inspector report', report),
    section('delete', 'Delete', danger),
  ];
  const element = h(
    'div',
    { class: 'view' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/plugins' }, 'Plugins'), ' / ', name),
    h('h1', { tabindex: '-1' }, name),
    overview,
    sections,
  );

  async function load(force) {
    if (fetching) return fetching;
    fetching = (async () => {
      const answer = await api.describePlugin(name);
      fetchedAt = Date.now();
      if (destroyed) return;
      if (!answer.ok) {
        detail = null;
        tag = null;
        shownKey = null;
        overview.replaceChildren(problemBox(answer.problem, `Cannot read ${name}`));
        for (const part of sections) part.hidden = true;
        return;
      }
      const etag = answer.headers.get('etag');
      const json = answer.json;
      const key = JSON.stringify([etag, json.last_error, json.versions]);
      detail = json;
      tag = etag ? etag.replace(/^"|"$/g, '') : null;
      if (force || key !== shownKey) {
        shownKey = key;
        render();
      }
    })();
    try {
      await fetching;
    } finally {
      fetching = null;
    }
  }

  function render() {
    for (const part of sections) part.hidden = false;
    const serving = Boolean(detail.active_digest);
    fill(
      overview,
      serving
        ? h(
            'p',
            { class: 'lede' },
            'Active version ',
            h('code', { id: 'active-digest', title: detail.active_digest, dataset: { digest: detail.active_digest } }, short(detail.active_digest)),
          )
        : h('p', { class: 'lede', id: 'active-digest', dataset: { digest: '' } }, 'No version is serving.'),
      detail.last_error
        ? h(
            'div',
            { class: 'load-error', role: 'alert', id: 'load-error' },
            h('strong', {}, serving ? 'The latest version failed to load; the active one still serves: ' : 'Load failed: '),
            detail.last_error,
          )
        : null,
      serving
        ? h(
            'dl',
            { class: 'facts' },
            fact('Engine', detail.engine),
            fact('Size', bytes(detail.report?.size_bytes)),
            fact('State', stateText(detail.report)),
            fact('Signed by', signer(detail.signature)),
            fact('Version tag', h('code', { class: 'wrap' }, tag ?? '—')),
          )
        : null,
      h('p', { class: 'actions' }, h('a', { href: `#/changes?plugin=${encodeURIComponent(name)}` }, 'Upload a new version')),
    );
    for (const part of sections.slice(0, 4)) part.hidden = !serving && part.id !== 'section-versions';
    tryIt.setFunctions(detail.functions);
    exports.replaceChildren(exportsTable(detail.functions));
    versions.replaceChildren(versionsTable());
    fill(manifest, manifestParts(detail));
    fill(report, reportParts(detail));
    fill(danger, deleteParts());
  }

  function versionsTable() {
    const history = detail.versions;
    if (!history.length) return h('p', {}, 'No stored versions.');
    const serving = Boolean(detail.active_digest);
    const active = history.length - 1;
    const rows = history
      .map((version, index) => ({ version, index }))
      .reverse()
      .map(({ version, index }) => {
        const isActive = serving && index === active;
        const previous = serving && index === active - 1;
        // `?digest=` reaches the newest version with that module; the one
        // just before the active version is also reachable as "previous".
        const newestWithModule = history.findLastIndex((other) => other.digest === version.digest) === index;
        const reachable = !isActive && (previous || newestWithModule);
        const action = isActive
          ? h('span', { class: 'badge ok' }, 'active')
          : reachable
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'rollback',
                  dataset: { digest: version.digest },
                  disabled: !api.hasToken(),
                  'aria-describedby': api.hasToken() ? null : 'token-hint',
                  onclick: () => rollbackTo(version, previous),
                },
                'Roll back to this version',
              )
            : h('span', { class: 'muted' }, 'a newer version has this module');
        return h(
          'tr',
          { dataset: { version: version.digest, active: isActive ? 'true' : 'false' } },
          h('td', { dataset: { column: '#' } }, String(index + 1)),
          h('td', { dataset: { column: 'Module' } }, h('code', { title: version.digest }, short(version.digest))),
          h(
            'td',
            { dataset: { column: 'Manifest' } },
            version.manifest_digest ? h('code', { title: version.manifest_digest }, short(version.manifest_digest)) : 'none',
          ),
          h('td', { dataset: { column: 'Became active' } }, time(version.activated)),
          h('td', { dataset: { column: 'Status' } }, action),
        );
      });
    return h(
      'div',
      { class: 'table-wrap', role: 'region', 'aria-label': 'Versions', tabindex: '0' },
      cards(
        h(
          'table',
          { id: 'versions-table' },
          h('caption', {}, 'Versions, newest first: a module and the manifest it runs with'),
          h('thead', {}, h('tr', {}, ['#', 'Module', 'Manifest', 'Became active', 'Status'].map((column) => h('th', { scope: 'col' }, column)))),
          h('tbody', {}, rows),
        ),
      ),
      api.hasToken() ? null : h('p', { class: 'hint' }, 'Rolling back needs a token (above).'),
    );
  }

  async function rollbackTo(version, previous) {
    if (!api.hasToken()) return;
    changeStatus.replaceChildren(h('p', {}, `Rolling back to ${short(version.digest)}…`));
    // The version just before the active one is the plain rollback's
    // target; any other is reached by its module's digest.
    const answer = await api.rollback(name, previous ? null : version.digest, tag);
    if (answer.ok) {
      changeStatus.replaceChildren(
        h('p', { class: 'done', dataset: { outcome: 'ok' } }, `Rolled back: ${short(answer.json.digest)} is active.`),
      );
      announce(`Rolled back ${name} to ${short(answer.json.digest)}.`);
    } else {
      changeStatus.replaceChildren(problemBox(answer.problem, 'Roll back refused'));
    }
    live.refresh();
    await load(true);
  }

  function deleteParts() {
    const status = h('div', { 'aria-live': 'polite' });
    const confirmBox = h(
      'div',
      { class: 'confirm', hidden: true },
      h('p', {}, `Delete ${name}? Calls to it fail with no_such_plugin until a version is uploaded again. Its stored versions stay in the registry.`),
      h('button', { type: 'button', class: 'danger', id: 'delete-confirm', onclick: remove }, `Delete ${name}`),
      ' ',
      h('button', { type: 'button', onclick: () => ((confirmBox.hidden = true), start.focus()) }, 'Cancel'),
    );
    const start = h(
      'button',
      {
        type: 'button',
        class: 'danger',
        id: 'delete-start',
        disabled: !api.hasToken(),
        onclick: () => {
          confirmBox.hidden = false;
          confirmBox.querySelector('#delete-confirm').focus();
        },
      },
      `Delete ${name}…`,
    );
    async function remove() {
      const answer = await api.remove(name, tag);
      if (answer.ok) {
        announce(`Deleted ${name}.`);
        live.refresh();
        location.hash = '#/plugins';
      } else {
        status.replaceChildren(problemBox(answer.problem, 'Delete refused'));
      }
    }
    return [
      h('p', {}, 'Takes the plugin out of service (an admin token).'),
      start,
      api.hasToken() ? null : h('span', { class: 'hint' }, ' Deleting needs a token (above).'),
      confirmBox,
      status,
    ];
  }

  function update() {
    const figuresNow = live.history.summary(name);
    figures.replaceChildren(
      fact(figuresNow?.sinceStart ? 'Calls since the service started' : 'Calls, last 60 s', figuresNow ? String(figuresNow.calls) : '—'),
      fact('Calls/s', rate(figuresNow?.callsPerSecond ?? null)),
      fact('Error rate', percent(figuresNow?.errorRate ?? null)),
      fact('p50', latency(figuresNow?.p50)),
      fact('p99', latency(figuresNow?.p99)),
      fact('In flight', figuresNow ? String(figuresNow.inFlight) : '—'),
    );
    const now = live.history.latest()?.time ?? Date.now();
    panel.draw(live.history.series(name), now, live.history.samples[0]?.time ?? now);
    const listed = live.plugins.find((plugin) => plugin.name === name);
    const moved = detail && listed && (listed.digest !== detail.active_digest || listed.last_error !== detail.last_error);
    if (!detail || moved || Date.now() - fetchedAt > DESCRIBE_EVERY_MS) load(false);
  }

  return {
    title: name,
    element,
    update,
    tokenChanged: () => detail && render(),
    destroy: () => (destroyed = true),
  };
}

function section(id, title, ...children) {
  return h(
    'section',
    { id: `section-${id}`, 'aria-labelledby': `heading-${id}` },
    h('h2', { id: `heading-${id}` }, title),
    ...children,
  );
}

function fact(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value ?? '—'));
}

function stateText(report) {
  if (!report) return '—';
  if (!report.state_writer) return 'stateless: no call can change an instance';
  return 'stateful';
}

function exportsTable(functions) {
  if (!functions.length) return h('p', {}, 'No callable exports.');
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': 'Exports', tabindex: '0' },
    cards(
      h(
        'table',
        { id: 'exports-table' },
        h('caption', {}, 'Exported functions'),
        h('thead', {}, h('tr', {}, ['Name', 'Signature', 'Called through'].map((column) => h('th', { scope: 'col' }, column)))),
        h(
          'tbody',
          {},
          functions.map((fn) =>
            h(
              'tr',
              { dataset: { export: fn.name } },
              h('td', { dataset: { column: 'Name' } }, h('code', {}, fn.name)),
              h('td', { dataset: { column: 'Signature' } }, h('code', {}, fn.signature)),
              h('td', { dataset: { column: 'Called through' } }, fn.bytes_abi ? 'invoke (bytes in, bytes out)' : 'call (numbers)'),
            ),
          ),
        ),
      ),
    ),
  );
}

function manifestParts(detail) {
  return [
    detail.manifest
      ? h('pre', { id: 'manifest-text', class: 'code-block' }, detail.manifest)
      : h('p', { id: 'manifest-text' }, 'No manifest: every setting at its default.'),
    detail.config
      ? h(
          'details',
          {},
          h('summary', {}, 'Configuration as it runs (JSON)'),
          h('pre', { class: 'code-block' }, JSON.stringify(detail.config, null, 2)),
        )
      : null,
  ];
}

function reportParts(detail) {
  if (!detail.report) return [h('p', {}, 'No report: no version is serving.')];
  const warnings = detail.warnings ?? [];
  const report = detail.report;
  return [
    h(
      'dl',
      { class: 'facts' },
      fact('Imports', String(report.imports.length)),
      fact('Exports', String(report.exports.length)),
      fact('Functions', String(report.functions.length)),
      fact('Memories', String(report.memories.length)),
      fact('Data', bytes(report.data_size_bytes)),
      fact('State', report.state_writer ? `stateful: ${describeWriter(report.state_writer)}` : 'stateless'),
    ),
    warnings.length
      ? h(
          'ul',
          { class: 'warnings' },
          warnings.map((warning) => h('li', {}, h('code', {}, warning.code), ` (${warning.severity}): ${warning.message}`)),
        )
      : h('p', {}, 'No contract warnings.'),
    h('details', {}, h('summary', {}, 'Full report (JSON)'), h('pre', { class: 'code-block' }, JSON.stringify(report, null, 2))),
  ];
}

function describeWriter(writer) {
  if (typeof writer === 'string') return writer;
  return Object.entries(writer)
    .map(([key, value]) => `${key} ${typeof value === 'object' ? JSON.stringify(value) : value}`)
    .join(', ');
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * Arguments as the JSON text of an array: numbers exactly as typed (an
 * i64 keeps all its digits), anything else as a string (`nan`, `inf`),
 * which the service accepts for floats and refuses, typed, otherwise.
 */
function argsJson(text) {
  const tokens = text.split(/[\s,]+/).filter(Boolean);
  return `[${tokens.map((token) => (NUMBER.test(token) ? token : JSON.stringify(token))).join(',')}]`;
}

function tryItForm(name, refresh) {
  let functions = [];
  const select = h('select', { id: 'try-export', onchange: () => shape() });
  const args = h('input', { id: 'try-args', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'try-args-hint' });
  const argsHint = h('span', { id: 'try-args-hint', class: 'hint' });
  const argsField = h('div', { class: 'field' }, h('label', { for: 'try-args' }, 'Arguments'), args, argsHint);
  const input = h('textarea', { id: 'try-input', rows: '3', spellcheck: 'false' });
  const inputField = h('div', { class: 'field', hidden: true }, h('label', { for: 'try-input' }, 'Input text'), input);
  const run = h('button', { type: 'submit', id: 'try-run', disabled: true }, 'Call');
  const result = h('div', { id: 'try-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'try-form', onsubmit: submit },
    h('div', { class: 'field' }, h('label', { for: 'try-export' }, 'Export'), select),
    argsField,
    inputField,
    h('div', { class: 'field' }, run),
  );

  function chosen() {
    return functions.find((fn) => fn.name === select.value);
  }

  function shape() {
    const fn = chosen();
    const bytesAbi = Boolean(fn?.bytes_abi);
    argsField.hidden = bytesAbi;
    inputField.hidden = !bytesAbi;
    setText(run, bytesAbi ? 'Invoke' : 'Call');
    setText(argsHint, fn ? `Signature ${fn.signature}; separate arguments with spaces or commas.` : '');
  }

  function setFunctions(list) {
    const same = JSON.stringify(list) === JSON.stringify(functions);
    if (same) return;
    const previous = select.value;
    functions = list;
    select.replaceChildren(
      ...list.map((fn) => h('option', { value: fn.name }, `${fn.name} ${fn.signature}${fn.bytes_abi ? ' (bytes)' : ''}`)),
    );
    if (list.some((fn) => fn.name === previous)) select.value = previous;
    run.disabled = list.length === 0;
    shape();
  }

  async function submit(event) {
    event.preventDefault();
    const fn = chosen();
    if (!fn) return;
    run.disabled = true;
    form.setAttribute('aria-busy', 'true');
    const started = performance.now();
    const answer = fn.bytes_abi
      ? await api.invoke(name, fn.name, new TextEncoder().encode(input.value))
      : await api.call(name, fn.name, argsJson(args.value));
    const elapsed = (performance.now() - started) / 1000;
    // The call is in the service's counters now: show it without waiting
    // for the next poll.
    refresh();
    run.disabled = false;
    form.removeAttribute('aria-busy');
    const duration = fact('Round trip', `${seconds(elapsed)} (measured in this page)`);
    if (!answer.ok) {
      result.dataset.outcome = 'error';
      result.replaceChildren(problemBox(answer.problem, `${fn.name} failed`), h('dl', { class: 'facts' }, duration));
      return;
    }
    const json = answer.json;
    result.dataset.outcome = 'ok';
    const value = fn.bytes_abi
      ? h('pre', { id: 'try-output', class: 'code-block' }, json.output)
      : h('output', { id: 'try-output', for: 'try-args' }, json.results.length ? json.results.join(', ') : '(no results)');
    result.replaceChildren(
      h(
        'dl',
        { class: 'facts result' },
        fact(fn.bytes_abi ? 'Output' : 'Results', value),
        duration,
        fact('stdout', stream(json.stdout)),
        fact('stderr', stream(json.stderr)),
        json.logs?.length
          ? fact('Logs', h('pre', { class: 'code-block' }, json.logs.map((log) => `${log.level}: ${log.message}`).join('\n')))
          : null,
      ),
    );
  }

  return { element: h('div', {}, form, result), setFunctions };
}

function stream(text) {
  return text ? h('pre', { class: 'code-block' }, text) : h('span', { class: 'muted' }, '(empty)');
}
