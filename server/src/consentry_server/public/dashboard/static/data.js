// Loading the open-data files (data/v1/..., relative to the page) and the small helpers every view shares.
// Each file is fetched once per page load, and only when a view needs it.

const documents = new Map();
const tables = new Map();

export function fetchJSON(url) {
  if (!documents.has(url)) {
    documents.set(url, fetch(url).then((response) => {
      if (!response.ok) throw new Error(`${url}: ${response.status}`);
      return response.json();
    }));
  }
  return documents.get(url);
}

export const appPath = (app) => `data/v1/${encodeURIComponent(app)}`;

// A published table of an app as a list of row objects (suppressed cells are simply not there).
export async function table(app, name, period = "week") {
  const url = `${appPath(app)}/${name}-${period}.json`;
  if (!tables.has(url)) {
    tables.set(url, fetchJSON(url).then((doc) =>
      doc.rows.map((row) => Object.fromEntries(doc.columns.map((column, i) => [column, row[i]])))));
  }
  return tables.get(url);
}

const DAY = 86400000;

// The week starts of `rows` that the time range keeps: the last `range` weeks of the data, or all of them.
export function weeksIn(rows, range) {
  const weeks = [...new Set(rows.map((row) => row.start))].sort();
  if (range === "all" || !weeks.length) return weeks;
  const last = Date.parse(weeks[weeks.length - 1]);
  const first = new Date(last - (Number(range) - 1) * 7 * DAY).toISOString().slice(0, 10);
  return weeks.filter((week) => week >= first);
}

// A week (its Monday, "YYYY-MM-DD") is complete once it ended before the publication: the same rule as the
// badges (consentry_server.public.badges) and certificates, so every headline figure speaks of the same week.
export function isComplete(week, publishedAt) {
  return !publishedAt || Date.parse(week) + 7 * DAY <= Date.parse(publishedAt.slice(0, 10));
}

// The weeks of `weeks` still running at the publication: their numbers are partial, and are marked so.
export const partialWeeks = (weeks, publishedAt) => weeks.filter((week) => !isComplete(week, publishedAt));

// The last complete week among `weeks` (sorted), or null when every one is partial.
export function lastComplete(weeks, publishedAt) {
  const complete = weeks.filter((week) => isComplete(week, publishedAt));
  return complete.length ? complete[complete.length - 1] : null;
}

export const previousWeek = (week) => new Date(Date.parse(week) - 7 * DAY).toISOString().slice(0, 10);

// Categories with a natural order (the client's buckets, consentry.wire.schema): sorted in that order, others after
// them alphabetically.
export const DURATIONS = ["<1s", "1-10s", "10-60s", "1-10min", "10-60min", "1h+", "unknown"];
export const DATA_SIZES = ["SMALL", "MEDIUM", "LARGE", "VERY_LARGE"];

export function naturally(values, order) {
  const rank = (value) => (order.includes(value) ? order.indexOf(value) : order.length);
  return [...values].sort((a, b) => rank(a) - rank(b) || String(a).localeCompare(String(b)));
}

export function sum(rows, key, value) {
  const totals = new Map();
  for (const row of rows) totals.set(key(row), (totals.get(key(row)) ?? 0) + value(row));
  return totals;
}

export function peak(rows, key, value) {
  const peaks = new Map();
  for (const row of rows) peaks.set(key(row), Math.max(peaks.get(key(row)) ?? 0, value(row)));
  return peaks;
}

export const byValueDesc = (map) => [...map.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(b[0]));

// Event names are namespaced, "component:event" (or "component.event"); plugin events belong to their plugin.
export function splitEvent(row) {
  if (row.kind === "plugin_event") return [`plugin ${row.scope}`, row.name];
  const colon = row.name.indexOf(":");
  if (colon > 0) return [row.name.slice(0, colon), row.name.slice(colon + 1)];
  const dot = row.name.indexOf(".");
  if (dot > 0) return [row.name.slice(0, dot), row.name.slice(dot + 1)];
  return ["(no component)", row.name];
}

export function parseName(name) {
  try {
    return JSON.parse(name);
  } catch {
    return [name];
  }
}
