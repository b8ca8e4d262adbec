// The service's API, on this page's own origin only. The token lives in
// this module's memory and nowhere else: never in localStorage,
// sessionStorage, a cookie or the URL. Reloading the page forgets it.

let token = null;
const listeners = new Set();

export function setToken(value) {
  token = value ? value.trim() || null : null;
  for (const listener of listeners) listener(token !== null);
}

export function hasToken() {
  return token !== null;
}

/** Calls `listener(hasToken)` whenever the token is set or forgotten. */
export function onTokenChange(listener) {
  listeners.add(listener);
}

/**
 * One request to the service. Resolves to
 * `{ok, status, headers, text, json, problem}`: `problem` is the API's
 * problem+json (`code`, `detail`, `status`), or one made up here for a
 * request that never got an answer (`code: "network"`).
 */
export async function request(method, path, { body, headers = {}, json } = {}) {
  if (!path.startsWith('/') || path.startsWith('//')) {
    throw new Error(`not a path on this service: ${path}`);
  }
  const sent = new Headers(headers);
  if (token !== null && path.startsWith('/v1/')) sent.set('Authorization', `Bearer ${token}`);
  if (json !== undefined) {
    sent.set('Content-Type', 'application/json');
    body = typeof json === 'string' ? json : JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
      referrerPolicy: 'no-referrer',
    });
  } catch (error) {
    return {
      ok: false,
      status: 0,
      headers: new Headers(),
      text: '',
      json: null,
      problem: { code: 'network', status: 0, detail: `the service did not answer: ${error.message}` },
    };
  }
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let parsed = null;
  if (type.includes('json')) {
    try {
      parsed = JSON.parse(text, keepLargeIntegers);
    } catch {
      parsed = null;
    }
  }
  let problem = null;
  if (!response.ok) {
    problem =
      parsed && typeof parsed.code === 'string'
        ? parsed
        : { code: `http_${response.status}`, status: response.status, detail: text.slice(0, 500) };
  }
  return { ok: response.ok, status: response.status, headers: response.headers, text, json: parsed, problem };
}

// An i64 past 2^53 would lose digits as a JavaScript number: keep the
// digits the service sent, as text (where the browser tells us them).
function keepLargeIntegers(_key, value, context) {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value) && context?.source) {
    return context.source;
  }
  return value;
}

const plugin = (name) => `/v1/plugins/${encodeURIComponent(name)}`;

export const listPlugins = () => request('GET', '/v1/plugins');
export const describePlugin = (name) => request('GET', plugin(name));
export const metrics = () => request('GET', '/metrics');

/** A typed call; `argsJson` is the JSON text of the arguments array. */
export const call = (name, fn, argsJson) =>
  request('POST', `${plugin(name)}/call/${encodeURIComponent(fn)}`, { json: `{"args":${argsJson}}` });

export const invoke = (name, fn, input) =>
  request('POST', `${plugin(name)}/invoke/${encodeURIComponent(fn)}?format=json`, {
    body: input,
    headers: { 'Content-Type': 'application/octet-stream' },
  });

/** Uploads a new version; with `manifest` (TOML text) it replaces the manifest, else keeps it. */
export function upload(name, module, manifest, ifMatch) {
  const query = manifest ? `?manifest=${encodeURIComponent(manifest)}` : '';
  const headers = { 'Content-Type': 'application/wasm' };
  if (ifMatch) headers['If-Match'] = `"${ifMatch}"`;
  return request('PUT', `${plugin(name)}${query}`, { body: module, headers });
}

/**
 * Rolls back to the newest version whose module has `digest` (or, with
 * `digest` null, to the one before the active version), if the active
 * version is still `ifMatch`.
 */
export const rollback = (name, digest, ifMatch) =>
  request('POST', `${plugin(name)}/rollback${digest ? `?digest=${encodeURIComponent(digest)}` : ''}`, {
    headers: ifMatch ? { 'If-Match': `"${ifMatch}"` } : {},
  });

export const remove = (name, ifMatch) =>
  request('DELETE', plugin(name), { headers: ifMatch ? { 'If-Match': `"${ifMatch}"` } : {} });

export const audit = (limit) => request('GET', `/v1/audit?limit=${limit}`);
