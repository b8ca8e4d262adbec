// The console's entry point: the router (`#/plugins`, `#/plugins/NAME`,
// `#/changes`, `#/audit`), the token bar, and the live loop that polls
// /v1/plugins and /metrics every two seconds and hands the views what it
// found.

import * as api from './api.js';
import { History, parse } from './metrics.js';
import { setText } from './dom.js';
import { pluginsView } from './view-plugins.js';
import { pluginView } from './view-plugin.js';
import { changesView, auditView } from './view-changes.js';

const POLL_MS = 2000;

/** What the views read: the latest plugin list and the scrapes so far. */
const live = {
  plugins: [],
  listProblem: null,
  history: new History(),
  metricsProblem: null,
  updated: null,
  /** Polls now (after a change), instead of at the next tick. */
  refresh: () => poll(),
};

let current = null;
let timer = null;
let polling = null;

// A malformed escape in the address (`#/plugins/%`) names no plugin: it
// must not stop the console from starting.
function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function route() {
  const hash = location.hash.replace(/^#/, '');
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodePart);
  if (parts[0] === 'plugins' && parts[1]) return { nav: 'plugins', make: () => pluginView(context, parts[1]) };
  if (parts[0] === 'changes') return { nav: 'changes', make: () => changesView(context, params.get('plugin') ?? '') };
  if (parts[0] === 'audit') return { nav: 'audit', make: () => auditView(context) };
  return { nav: 'plugins', make: () => pluginsView(context) };
}

const context = {
  live,
  announce(text) {
    const region = document.getElementById('announce');
    region.textContent = '';
    // A fresh text node, so the same message twice is announced twice.
    setTimeout(() => (region.textContent = text), 50);
  },
};

function show(focus) {
  current?.destroy?.();
  const { nav, make } = route();
  current = make();
  const main = document.getElementById('main');
  main.replaceChildren(current.element);
  document.title = `${current.title} · wasmplug console`;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  current.update?.();
  if (focus) current.element.querySelector('h1')?.focus();
}

async function poll() {
  if (polling) return polling;
  polling = (async () => {
    const [list, metrics] = await Promise.all([api.listPlugins(), api.metrics()]);
    if (list.ok) {
      live.plugins = list.json.plugins;
      live.listProblem = null;
    } else {
      live.listProblem = list.problem;
    }
    if (metrics.ok) {
      live.history.add(Date.now(), parse(metrics.text));
      live.metricsProblem = null;
    } else {
      live.metricsProblem = metrics.problem;
    }
    live.updated = new Date();
    const status = document.getElementById('live');
    const problem = live.listProblem ?? live.metricsProblem;
    status.classList.toggle('down', Boolean(problem));
    setText(
      status,
      problem
        ? `Not updating: ${problem.code}`
        : `Live · updated ${live.updated.toLocaleTimeString()}`,
    );
    current?.update?.();
  })();
  try {
    await polling;
  } finally {
    polling = null;
  }
}

function loop() {
  clearTimeout(timer);
  // A hidden tab skips its scrapes; the charts show the gap.
  const next = document.hidden ? Promise.resolve() : poll();
  next.finally(() => (timer = setTimeout(loop, POLL_MS)));
}

function tokenBar() {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token');
  const state = document.getElementById('token-state');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      input.focus();
      return;
    }
    api.setToken(input.value);
    input.value = '';
  });
  document.getElementById('token-forget').addEventListener('click', () => {
    api.setToken(null);
    input.focus();
  });
  api.onTokenChange((present) => {
    form.hidden = present;
    state.hidden = !present;
    context.announce(present ? 'Token in use.' : 'Token forgotten.');
    if (present) document.getElementById('token-forget').focus();
    current?.tokenChanged?.();
    poll();
  });
}

document.getElementById('skip').addEventListener('click', (event) => {
  // The hash is the router's: move focus without touching it.
  event.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', () => show(true));
tokenBar();
show(false);
loop();
