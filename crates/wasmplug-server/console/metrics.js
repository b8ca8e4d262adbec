// What the charts and the table's live columns come from: successive
// scrapes of /metrics (Prometheus text), kept in this page's memory for
// the last few minutes. Rates and latency quantiles are differences
// between scrapes, computed here; the service keeps only its counters.

/** How long scrapes are kept: what the charts span. */
export const HISTORY_MS = 10 * 60 * 1000;

/** The window the table's rates and quantiles cover. */
export const WINDOW_MS = 60 * 1000;

/** The shortest interval a chart point covers. */
const MIN_INTERVAL_MS = 1500;

const LINE = /^([a-z_:][a-z0-9_:]*)\{([^}]*)\}\s+(\S+)/i;
const LABEL = /([a-z_][a-z0-9_]*)="((?:[^"\\]|\\.)*)"/gi;

/**
 * Parses the service's metrics: plugin name → {ok, errors, buckets,
 * inFlight}, where `buckets` are cumulative counts by upper bound (the
 * last one `Infinity`).
 */
export function parse(text) {
  const plugins = new Map();
  const get = (name) => {
    if (!plugins.has(name)) plugins.set(name, { ok: 0, errors: 0, buckets: [], inFlight: 0 });
    return plugins.get(name);
  };
  for (const line of text.split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, metric, labelText, valueText] = match;
    const labels = {};
    for (const [, key, value] of labelText.matchAll(LABEL)) labels[key] = value;
    if (!labels.plugin) continue;
    const value = Number(valueText);
    const plugin = get(labels.plugin);
    switch (metric) {
      case 'wasmplug_calls_total':
        plugin.ok = value;
        break;
      case 'wasmplug_call_errors_total':
        plugin.errors += value;
        break;
      case 'wasmplug_call_duration_seconds_bucket':
        plugin.buckets.push({ le: labels.le === '+Inf' ? Infinity : Number(labels.le), count: value });
        break;
      case 'wasmplug_instances_in_flight':
        plugin.inFlight = value;
        break;
    }
  }
  for (const plugin of plugins.values()) plugin.buckets.sort((a, b) => a.le - b.le);
  return plugins;
}

/** Scrapes, oldest first, each `{time, plugins}` (time in ms). */
export class History {
  constructor() {
    this.samples = [];
  }

  add(time, plugins) {
    this.samples.push({ time, plugins });
    while (this.samples.length > 2 && time - this.samples[0].time > HISTORY_MS) this.samples.shift();
  }

  latest() {
    return this.samples.at(-1) ?? null;
  }

  /**
   * A plugin's figures over the last `WINDOW_MS`: calls per second, error
   * rate, p50 and p99 (seconds; `over` when past the largest bucket), and
   * in-flight calls now. With one scrape only, the figures count every
   * call since the service started (`sinceStart`).
   */
  summary(name) {
    const last = this.latest();
    const now = last?.plugins.get(name);
    if (!now) return null;
    const first = this.samples.find((sample) => last.time - sample.time <= WINDOW_MS && sample !== last);
    const before = first?.plugins.get(name);
    const delta = difference(before, now);
    const seconds = first ? (last.time - first.time) / 1000 : null;
    const calls = delta.ok + delta.errors;
    return {
      sinceStart: !first,
      calls,
      callsPerSecond: seconds ? calls / seconds : null,
      errorRate: calls > 0 ? delta.errors / calls : null,
      p50: quantile(delta.buckets, 0.5),
      p99: quantile(delta.buckets, 0.99),
      inFlight: now.inFlight,
    };
  }

  /**
   * A plugin's calls per second and p99 between successive scrapes. A
   * scrape right after another (the page polls at once after a change or a
   * call) is merged into the next interval: one call over a tenth of a
   * second would read as ten calls a second.
   */
  series(name) {
    const points = [];
    let before = this.samples[0];
    for (let index = 1; index < this.samples.length; index++) {
      const after = this.samples[index];
      if (after.time - before.time < MIN_INTERVAL_MS) continue;
      const now = after.plugins.get(name);
      if (!now) {
        before = after;
        continue;
      }
      const delta = difference(before.plugins.get(name), now);
      const seconds = (after.time - before.time) / 1000;
      const p99 = quantile(delta.buckets, 0.99);
      points.push({
        time: after.time,
        callsPerSecond: seconds > 0 ? (delta.ok + delta.errors) / seconds : 0,
        p99: p99 ? p99.value : null,
      });
      before = after;
    }
    return points;
  }
}

// Counters only grow, unless the plugin's slot was made anew (a delete,
// then an upload) or the service restarted: then the newer counts are all
// there is.
function difference(before, now) {
  if (!before || now.ok < before.ok || now.errors < before.errors) {
    return { ok: now.ok, errors: now.errors, buckets: now.buckets };
  }
  const counts = new Map(before.buckets.map((bucket) => [bucket.le, bucket.count]));
  const buckets = now.buckets.map((bucket) => ({ le: bucket.le, count: bucket.count - (counts.get(bucket.le) ?? 0) }));
  if (buckets.some((bucket) => bucket.count < 0)) {
    return { ok: now.ok, errors: now.errors, buckets: now.buckets };
  }
  return { ok: now.ok - before.ok, errors: now.errors - before.errors, buckets };
}

/**
 * The `q` quantile of cumulative buckets, interpolated linearly inside the
 * bucket it falls in (as Prometheus's histogram_quantile does): `{value,
 * over}`, `over` when it falls past the largest finite bound; `null` with
 * no calls.
 */
export function quantile(buckets, q) {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (bucket.le === Infinity) return { value: lower, over: true };
      const inside = bucket.count - below;
      const fraction = inside > 0 ? (rank - below) / inside : 1;
      return { value: lower + (bucket.le - lower) * fraction, over: false };
    }
    lower = bucket.le;
    below = bucket.count;
  }
  return { value: lower, over: true };
}
