// Changes: upload a module (with an optional manifest), and the audit
// trail, newest first. Rollbacks and deletes are on each plugin's page,
// beside the versions they act on.

import * as api from './api.js';
import { h, cards, setText, short, time, problemBox } from './dom.js';

const NAME = '[a-z0-9][a-z0-9_\\-]{0,63}';

export function changesView({ live, announce }, preset) {
  const names = h('datalist', { id: 'plugin-names' });
  const name = h('input', {
    id: 'upload-name',
    name: 'name',
    type: 'text',
    required: true,
    pattern: NAME,
    list: 'plugin-names',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': 'upload-target',
    oninput: () => describeTarget(),
  });
  name.value = preset;
  const target = h('p', { id: 'upload-target', class: 'hint' });
  const file = h('input', { id: 'upload-file', name: 'module', type: 'file', required: true, accept: '.wasm,application/wasm' });
  const manifest = h('textarea', { id: 'upload-manifest', name: 'manifest', rows: '6', spellcheck: 'false', 'aria-describedby': 'upload-manifest-hint' });
  const submit = h('button', { type: 'submit', id: 'upload-submit' }, 'Upload');
  const tokenNote = h('p', { class: 'hint' });
  const result = h('div', { id: 'upload-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'upload-form', onsubmit: upload },
    h('div', { class: 'field' }, h('label', { for: 'upload-name' }, 'Plugin name'), name, names, target),
    h('div', { class: 'field' }, h('label', { for: 'upload-file' }, 'Module (.wasm)'), file),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'upload-manifest' }, 'Manifest (TOML, optional)'),
      manifest,
      h('span', { id: 'upload-manifest-hint', class: 'hint' }, 'Left empty, the plugin keeps its current manifest.'),
    ),
    h('div', { class: 'field' }, submit, tokenNote),
  );
  const plugins = h('ul', { class: 'plugin-links' });
  let uploading = false;
  const element = h(
    'div',
    { class: 'view' },
    h('h1', { tabindex: '-1' }, 'Changes'),
    h(
      'p',
      { class: 'lede' },
      'Uploads go through the API with your token; the service checks the module (contract, signature, manifest) before anything is stored. ',
      h('a', { href: '#/audit' }, 'The audit trail'),
      ' records every change and every refusal.',
    ),
    h('section', { 'aria-labelledby': 'upload-heading' }, h('h2', { id: 'upload-heading' }, 'Upload a module'), form, result),
    h(
      'section',
      { 'aria-labelledby': 'manage-heading' },
      h('h2', { id: 'manage-heading' }, 'Roll back or delete'),
      h('p', {}, "Each plugin's page lists its versions, with a button to roll back to any earlier one, and a delete button."),
      plugins,
    ),
  );

  function describeTarget() {
    const existing = live.plugins.find((plugin) => plugin.name === name.value);
    setText(
      target,
      !name.value
        ? 'A new name creates a plugin; an existing one gets a new version.'
        : existing?.digest
          ? `Replaces ${existing.name}'s active version ${short(existing.digest)}.`
          : existing
            ? `${existing.name} has no version serving; this one becomes active if it loads.`
            : `Creates ${name.value}.`,
    );
  }

  function update() {
    const listed = live.plugins.map((plugin) => plugin.name);
    if (JSON.stringify(listed) !== JSON.stringify([...names.children].map((option) => option.value))) {
      names.replaceChildren(...listed.map((plugin) => h('option', { value: plugin })));
      plugins.replaceChildren(
        ...listed.map((plugin) => h('li', {}, h('a', { href: `#/plugins/${encodeURIComponent(plugin)}` }, plugin))),
      );
    }
    describeTarget();
    submit.disabled = uploading || !api.hasToken();
    setText(tokenNote, api.hasToken() ? '' : 'Uploading needs a token (above).');
  }

  async function upload(event) {
    event.preventDefault();
    if (!api.hasToken() || !form.reportValidity()) return;
    const module = file.files[0];
    uploading = true;
    submit.disabled = true;
    result.replaceChildren(h('p', {}, `Uploading ${module.name} as ${name.value}…`));
    const answer = await api.upload(name.value, await module.arrayBuffer(), manifest.value.trim() || null);
    uploading = false;
    submit.disabled = !api.hasToken();
    if (answer.ok) {
      const uploaded = answer.json;
      result.replaceChildren(
        h(
          'p',
          { class: 'done', dataset: { outcome: 'ok', digest: uploaded.digest } },
          `${answer.status === 201 ? 'Created' : 'Uploaded'} ${uploaded.name}: version `,
          h('code', { title: uploaded.digest }, short(uploaded.digest)),
          ' is active. ',
          h('a', { href: `#/plugins/${encodeURIComponent(uploaded.name)}`, id: 'upload-open' }, `Open ${uploaded.name}`),
        ),
      );
      announce(`Uploaded ${uploaded.name}; version ${short(uploaded.digest)} is active.`);
    } else {
      result.replaceChildren(problemBox(answer.problem, 'Upload refused'));
    }
    live.refresh();
  }

  return { title: 'Changes', element, update, tokenChanged: update };
}

const AUDIT_LIMIT = 200;
const AUDIT_EVERY_MS = 5000;

export function auditView({ live }) {
  let fetchedAt = 0;
  let fetching = false;
  let shown = null;
  const status = h('div', { 'aria-live': 'polite' });
  const body = h('div');
  const element = h(
    'div',
    { class: 'view' },
    h('h1', { tabindex: '-1' }, 'Audit trail'),
    h(
      'p',
      { class: 'lede' },
      `Every change and every refused change, newest first (the latest ${AUDIT_LIMIT}). Reading it needs an admin token without plugin patterns.`,
    ),
    h('p', {}, h('button', { type: 'button', id: 'audit-refresh', onclick: () => load() }, 'Refresh')),
    status,
    body,
  );

  async function load() {
    if (fetching) return;
    if (!api.hasToken()) {
      shown = null;
      body.replaceChildren();
      status.replaceChildren(h('p', { class: 'notice' }, 'Enter a token above to read the audit trail.'));
      return;
    }
    fetching = true;
    const answer = await api.audit(AUDIT_LIMIT);
    fetching = false;
    fetchedAt = Date.now();
    if (!answer.ok) {
      shown = null;
      body.replaceChildren();
      status.replaceChildren(problemBox(answer.problem, 'Cannot read the audit trail'));
      return;
    }
    status.replaceChildren();
    const entries = [...answer.json.entries].reverse();
    const key = JSON.stringify(entries);
    if (key === shown) return;
    shown = key;
    body.replaceChildren(auditTable(entries));
  }

  function update() {
    if (Date.now() - fetchedAt > AUDIT_EVERY_MS) load();
  }

  return {
    title: 'Audit trail',
    element,
    update,
    tokenChanged: () => {
      fetchedAt = 0;
      load();
    },
  };
}

function auditTable(entries) {
  if (!entries.length) return h('p', {}, 'No changes recorded yet.');
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': 'Audit trail', tabindex: '0' },
    cards(h(
      'table',
      { id: 'audit-table' },
      h('caption', {}, 'Changes, newest first'),
      h(
        'thead',
        {},
        h('tr', {}, ['Time', 'Who', 'Action', 'Plugin', 'Before', 'After', 'Signed by', 'Outcome'].map((column) => h('th', { scope: 'col' }, column))),
      ),
      h(
        'tbody',
        {},
        entries.map((entry) =>
          h(
            'tr',
            { dataset: { outcome: entry.outcome, action: entry.action, plugin: entry.plugin, time: entry.time } },
            h('td', { dataset: { column: 'Time' } }, time(entry.time)),
            h('td', { dataset: { column: 'Who' } }, entry.actor),
            h('td', { dataset: { column: 'Action' } }, entry.action.replace('_', ' ')),
            h(
              'td',
              { dataset: { column: 'Plugin' } },
              h('a', { href: `#/plugins/${encodeURIComponent(entry.plugin)}` }, entry.plugin),
            ),
            h('td', { dataset: { column: 'Before' } }, tagCell(entry.digest_before)),
            h('td', { dataset: { column: 'After' } }, tagCell(entry.digest_after)),
            h('td', { dataset: { column: 'Signed by' } }, entry.signed_by ?? '—'),
            h(
              'td',
              { class: entry.outcome === 'ok' ? 'ok' : 'refused', dataset: { column: 'Outcome' } },
              h(
                'div',
                {},
                entry.outcome === 'ok' ? 'ok' : h('code', {}, entry.outcome),
                entry.reason ? h('div', { class: 'reason' }, entry.reason) : null,
              ),
            ),
          ),
        ),
      ),
    )),
  );
}

/** A version tag (module digest, then `.` and the manifest's): both shortened. */
function tagCell(tag) {
  if (!tag) return '—';
  const [module, manifest] = tag.split('.');
  return h('code', { title: tag }, manifest ? `${short(module)}.${short(manifest)}` : short(module));
}
