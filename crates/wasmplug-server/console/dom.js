// Building the page without innerHTML: every text a plugin or the service
// sent (names, errors, manifests) goes in as a text node, never as markup.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * h('a', {href: '#/plugins', class: 'x', onclick: fn, dataset: {k: 'v'}}, 'text', child…)
 * Attributes named on… become listeners; `false`, null and undefined
 * attributes are left out; `true` sets an empty attribute.
 */
export function h(tag, attributes = {}, ...children) {
  return build(document.createElement(tag), attributes, children);
}

/** The same, in the SVG namespace. */
export function s(tag, attributes = {}, ...children) {
  return build(document.createElementNS(SVG, tag), attributes, children);
}

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces a node's children, leaving out `null`, `undefined` and `false`. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
}

/**
 * Gives a table the ARIA roles it has as a table, so it keeps them when
 * narrow screens lay its rows out as cards (CSS `display: block` makes
 * some browsers forget them). Cells carry their column's name in
 * `data-column`, which the cards show as labels.
 */
export function cards(table) {
  table.classList.add('cards');
  table.setAttribute('role', 'table');
  for (const group of table.querySelectorAll('thead, tbody')) group.setAttribute('role', 'rowgroup');
  for (const row of table.querySelectorAll('tr')) row.setAttribute('role', 'row');
  for (const cell of table.querySelectorAll('th[scope="col"]')) cell.setAttribute('role', 'columnheader');
  for (const cell of table.querySelectorAll('th[scope="row"]')) cell.setAttribute('role', 'rowheader');
  for (const cell of table.querySelectorAll('td')) cell.setAttribute('role', 'cell');
  return table;
}

/** Replaces a node's text only when it changed (no needless repaints). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** The first 12 hex digits of a digest, as `git` shows commits. */
export function short(digest) {
  return digest ? digest.slice(0, 12) : '—';
}

export function bytes(count) {
  if (count === null || count === undefined) return '—';
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

/** Seconds as a latency: µs, ms or s with three significant figures. */
export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (value < 1e-3) return `${(value * 1e6).toPrecision(3)} µs`;
  if (value < 1) return `${(value * 1e3).toPrecision(3)} ms`;
  return `${value.toPrecision(3)} s`;
}

export function rate(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (value === 0) return '0';
  return value < 10 ? value.toFixed(2) : value.toFixed(0);
}

export function percent(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return `${(value * 100).toFixed(value > 0 && value < 0.01 ? 2 : 1)} %`;
}

/** An RFC 3339 time in the reader's locale, with the original in `datetime`. */
export function time(text) {
  if (!text) return h('span', { class: 'muted' }, 'unknown');
  const parsed = new Date(text);
  const shown = Number.isNaN(parsed.getTime()) ? text : parsed.toLocaleString();
  return h('time', { datetime: text }, shown);
}

/** A problem (an API error) as people read it: its code first. */
export function problemBox(problem, label = 'Error') {
  return h(
    'div',
    { class: 'problem', role: 'alert', dataset: { code: problem.code, status: String(problem.status ?? '') } },
    h('strong', {}, `${label}: `),
    h('code', { class: 'code' }, problem.code),
    problem.status ? ` (HTTP ${problem.status})` : '',
    h('p', {}, problem.detail ?? ''),
    problem.details ? h('pre', {}, JSON.stringify(problem.details, null, 2)) : null,
  );
}
