// The pages of one application. Each takes the state from the URL and returns the elements to show.

import {
  appPath, byValueDesc, DATA_SIZES, DURATIONS, fetchJSON, isComplete, lastComplete, naturally, parseName, partialWeeks,
  peak, previousWeek, splitEvent, sum, table, weeksIn,
} from "./data.js";
import { chartFigure, countryName, dataTable, fmt, h, mapFigure, numeric } from "./ui.js";

export const FILTERS = { version: "app_version", os: "system.os", country: "country" };
const RANGES = [["1", "Latest week"], ["4", "Last 4 weeks"], ["12", "Last 12 weeks"], ["26", "Last 26 weeks"], ["52", "Last 52 weeks"],
  ["all", "All weeks"]];

export function link(state, changes) {
  const next = { ...state, ...changes };
  const query = new URLSearchParams();
  for (const key of ["range", "version", "os", "country", "component"]) if (next[key]) query.set(key, next[key]);
  const path = ["", next.app, next.page, next.arg].filter((part) => part !== undefined && part !== null)
    .map(encodeURIComponent).join("/");
  return `#${path}${query.toString() ? `?${query}` : ""}`;
}

function select(id, label, value, options, onchange) {
  return h("label", { for: id }, label, h("select", { id, onchange },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text))));
}

function filterForm(state, values, { all }) {
  const go = (key) => (event) => { location.hash = link(state, { [key]: event.target.value || undefined }); };
  const fields = [select("filter-range", "Time range", state.range, RANGES, go("range"))];
  if (all) {
    for (const [key, field] of Object.entries(FILTERS)) {
      const seen = [...new Set(values.filter((row) => row.field === field).map((row) => row.value))].sort();
      const text = key === "country" ? (code) => `${countryName(code)} (${code})` : (v) => v;
      const label = { version: "Version", os: "Operating system", country: "Country" }[key];
      fields.push(select(`filter-${key}`, label, state[key] ?? "", [["", "All"], ...seen.map((v) => [v, text(v)])],
        go(key)));
    }
  }
  return h("form", { class: "filters", role: "search", "aria-label": "Filters", onsubmit: (e) => e.preventDefault() },
    fields);
}

const breakdownNote = (k) => "Version, operating-system and country filters select the matching series of installs; "
  + "feature usage is not broken down by them, because the published data has no cross-tabulation (every "
  + `published number must rest on at least ${k} installations).`;

// The week a snapshot (versions, systems, countries, plugins) shows: the last complete week of `weeks`, as the
// headline figures and the badges, or the latest one, marked partial, when none of them has ended yet.
function snapshot(rows, weeks, publishedAt) {
  const week = lastComplete(weeks, publishedAt) ?? weeks[weeks.length - 1];
  const partial = week !== undefined && !isComplete(week, publishedAt);
  return [week, rows.filter((row) => row.start === week), partial ? `${week} (partial week)` : week];
}

function distribution(id, title, rows, field, week, k) {
  const counts = byValueDesc(sum(rows.filter((row) => row.field === field), (r) => r.value, (r) => r.reporters));
  if (!counts.length) return h("p", { id, class: "note" }, `${title}: no value reached ${k} installations.`);
  return chartFigure({ id, title, type: "bar", horizontal: true, labels: counts.map(([v]) => v),
    datasets: [{ label: `Installs, week of ${week}`, data: counts.map(([, n]) => n) }] });
}

const activeIn = (installs, week) => {
  const rows = installs.filter((row) => row.start === week);
  return rows.length ? Math.max(...rows.map((row) => row.reporters)) : null;
};

function figureBox(id, term, value, detail) {
  const hidden = value === null;
  return h("div", {}, h("dt", {}, term), h("dd", { id, class: hidden ? "hidden" : null },
    hidden ? "hidden" : value, detail ? h("small", {}, detail) : null));
}

// The figures at the top of an application's overview, all of the last complete week (the badges' week): active
// installs (at the most common level, which every install reports), the change against the week before, new
// installs and the most used versions. A number that is not published says "hidden", never 0.
function headline(installs, values, index) {
  const weeks = [...new Set(installs.map((row) => row.start))].sort();
  const week = lastComplete(weeks, index.published_at);
  const running = partialWeeks(weeks, index.published_at);
  const published = (index.published_at ?? "").slice(0, 10);
  if (!week) {
    return h("p", { class: "note", id: "headline-note" }, "No week with published installations has ended yet: "
      + "the headline figures come with the first complete week.");
  }
  const now = activeIn(installs, week);
  const before = previousWeek(week);
  const then = activeIn(installs, before);
  let change = null;
  if (then !== null) {
    const sign = now >= then ? "+" : "−";
    const percent = then ? ` (${sign}${(Math.abs(now - then) / then * 100).toFixed(1)}%)` : "";
    change = `${sign}${fmt(Math.abs(now - then))}${percent}`;
  }
  const fresh = installs.filter((row) => row.start === week && row.new_installs !== null && row.new_installs !== undefined);
  const versions = byValueDesc(sum(values.filter((r) => r.start === week && r.field === "app_version"), (r) => r.value,
    (r) => r.reporters)).slice(0, 3);
  return [
    h("dl", { class: "headline", id: "headline" },
      figureBox("headline-installs", "Weekly active installs", fmt(now), `week of ${week}`),
      figureBox("headline-change", "Change against the week before", change,
        then === null ? `the week of ${before} has no published number` : `${fmt(then)} in the week of ${before}`),
      figureBox("headline-new", "New installs", fresh.length ? fmt(Math.max(...fresh.map((r) => r.new_installs))) : null,
        fresh.length ? `week of ${week}` : "fewer than the threshold, or not known"),
      h("div", {}, h("dt", {}, "Top versions"), versions.length
        ? h("dd", { id: "headline-versions" }, h("ol", {}, versions.map(([version, n]) =>
          h("li", {}, `${version}: ${fmt(n)}`))))
        : h("dd", { id: "headline-versions", class: "hidden" }, "hidden"))),
    h("p", { class: "note", id: "headline-note" }, `Figures of the week of ${week}, the last complete week before `
      + `the publication of ${published} (the badges show the same week).`
      + (running.length ? ` The week of ${running.join(", ")} was still running: its numbers are partial, and `
        + "marked \"partial week\" in the charts and tables." : "")),
  ];
}

export async function overview(state, index, info) {
  const [installs, values] = await Promise.all([table(state.app, "installs"), table(state.app, "values")]);
  const weeks = weeksIn(installs, state.range);
  const inRange = new Set(weeks);
  const levels = [...new Set(installs.map((row) => row.level))];
  const datasets = levels.map((level) => {
    const per = new Map(installs.filter((r) => r.level === level).map((r) => [r.start, r.reporters]));
    return { label: `Installs reporting at level ${level}`, data: weeks.map((w) => per.get(w) ?? null) };
  });
  for (const [key, field] of Object.entries(FILTERS)) {
    if (!state[key]) continue;
    const per = new Map(values.filter((r) => r.field === field && r.value === state[key]).map((r) => [r.start, r.reporters]));
    datasets.push({ label: `Installs with ${field} = ${state[key]}`, data: weeks.map((w) => per.get(w) ?? null) });
  }
  const fresh = peak(installs.filter((r) => r.new_installs !== null && r.new_installs !== undefined), (r) => r.start,
    (r) => r.new_installs);
  const [, lastValues, weekText] = snapshot(values.filter((r) => inRange.has(r.start)), weeks, index.published_at);
  const partial = partialWeeks(weeks, index.published_at);
  const countries = byValueDesc(sum(lastValues.filter((r) => r.field === "country"), (r) => r.value, (r) => r.reporters));
  return [
    h("h1", {}, info.title),
    info.homepage ? h("p", {}, h("a", { href: info.homepage, rel: "noreferrer" }, info.homepage)) : null,
    headline(installs, values, index),
    filterForm(state, values, { all: true }),
    h("p", { class: "note", id: "breakdown-note" }, breakdownNote(index.threshold)),
    weeks.length ? [
      chartFigure({ id: "chart-installs", title: "Weekly active installs", labels: weeks, datasets, partial }),
      chartFigure({ id: "chart-new", title: "New installs per week", type: "bar", labels: weeks, partial,
        missing: "hidden or unknown",
        datasets: [{ label: "New installs", data: weeks.map((w) => fresh.get(w) ?? null) }] }),
      weeks.some((w) => !fresh.has(w))
        ? h("p", { class: "note", id: "new-installs-note" }, "A week without a bar has its new installs hidden "
          + `(fewer than ${index.threshold}) or unknown: installs that report over OTLP or a seed format cannot `
          + "say whether they are new, so no number is shown rather than a wrong one.")
        : null,
      h("h2", {}, `Installations in the week of ${weekText}`),
      h("div", { class: "grid" },
        distribution("chart-versions", "Versions", lastValues, "app_version", weekText, index.threshold),
        distribution("chart-os", "Operating systems", lastValues, "system.os", weekText, index.threshold),
        distribution("chart-python", "Python versions", lastValues, "system.python", weekText, index.threshold),
        distribution("chart-arch", "Architectures", lastValues, "system.arch", weekText, index.threshold)),
      countries.length
        ? mapFigure({ id: "chart-countries", title: "Countries", counts: countries, note: "A country in grey has no "
          + `published number: fewer than ${index.threshold} installations there, or none.` })
        : h("p", { class: "note", id: "chart-countries" }, `No country reached ${index.threshold} installations.`),
    ] : h("p", {}, `No week has ${index.threshold} installations or more yet.`),
  ];
}

function totalsTable(rows, label) {
  return dataTable([label, "Total", "Most installs in a week"], rows.map(([name, total, most]) => [name, total, most]));
}

// The share of installs that used each event, per week: the installs that counted it over the installs reporting
// at its level (the manifest's; the most common level for a plugin's event). Hidden either way: no point.
function shareTimeline(component, mine, weekList, installs, manifest, partial) {
  const levelOf = new Map((manifest.events ?? []).map((event) => [event.name, event.level]));
  const active = (week, level) => {
    const rows = installs.filter((row) => row.start === week && (level === undefined || row.level === level));
    return rows.length ? Math.max(...rows.map((row) => row.reporters)) : null;
  };
  const names = byValueDesc(sum(mine, (r) => r.event, (r) => r.total)).map(([event]) => event).slice(0, TIMELINES);
  const datasets = names.map((event) => {
    const rows = mine.filter((r) => r.event === event);
    return { label: event, data: weekList.map((week) => {
      const row = rows.find((r) => r.start === week);
      const base = row && active(week, row.kind === "event" ? levelOf.get(row.name) : undefined);
      return row && base ? Math.round(1000 * Math.min(row.reporters / base, 1)) / 10 : null;
    }) };
  });
  return chartFigure({ id: "chart-event-share", title: `Share of installs using each event of ${component}, per week (%)`,
    labels: weekList, datasets, partial, note: "Installs that counted the event in the week, in percent of the "
      + "installs reporting at the event's level that week. A hidden number (fewer installs than the threshold) "
      + "is no point, not a 0." + (names.length === TIMELINES ? ` The ${TIMELINES} most used events.` : "") });
}

const TIMELINES = 12;

export async function usage(state, index) {
  const [counters, installs, manifest] = await Promise.all([table(state.app, "counters"), table(state.app, "installs"),
    fetchJSON(`${appPath(state.app)}/manifest.json`)]);
  const weekList = weeksIn(counters, state.range);
  const weeks = new Set(weekList);
  const rows = counters.filter((r) => weeks.has(r.start));
  const events = rows.filter((r) => r.kind === "event" || r.kind === "plugin_event")
    .map((r) => ({ ...r, component: splitEvent(r)[0], event: splitEvent(r)[1] }));
  const components = byValueDesc(sum(events, (r) => r.component, (r) => r.total));
  const most = peak(events, (r) => r.component, (r) => r.reporters);
  const parts = [
    h("h1", {}, "Usage"),
    filterForm(state, [], { all: false }),
    h("p", { class: "note" }, breakdownNote(index.threshold)),
    h("h2", { id: "components-heading" }, "Components"),
    components.length ? [
      h("p", { class: "note" }, "Choose a component to see its events, and the share of installs using each of them "
        + "week by week."),
      h("ul", { class: "components", "aria-labelledby": "components-heading" }, components.map(([name]) =>
        h("li", {}, h("a", { href: link(state, { component: name }),
          "aria-current": name === state.component ? "true" : null }, name))))] : null,
    components.length ? chartFigure({ id: "chart-components", title: "Events per component", type: "bar",
      horizontal: true, labels: components.slice(0, 20).map(([c]) => c),
      datasets: [{ label: "Events counted", data: components.slice(0, 20).map(([, n]) => n) }] })
      : h("p", { class: "note" }, "No event was counted by enough installations."),
  ];
  if (state.component) {
    const mine = events.filter((r) => r.component === state.component);
    const totals = byValueDesc(sum(mine, (r) => r.event, (r) => r.total));
    const reach = peak(mine, (r) => r.event, (r) => r.reporters);
    parts.push(h("section", { id: "events", "aria-labelledby": "events-heading" },
      h("h2", { id: "events-heading", tabindex: "-1" }, `Events of ${state.component}`),
      totals.length ? [
        chartFigure({ id: "chart-events", title: `Events of ${state.component}`, type: "bar", horizontal: true,
          labels: totals.map(([e]) => e), datasets: [{ label: "Times counted", data: totals.map(([, n]) => n) }] }),
        totalsTable(totals.map(([e, n]) => [e, n, reach.get(e)]), "Event"),
        shareTimeline(state.component, mine, weekList, installs, manifest, partialWeeks(weekList, index.published_at)),
      ] : h("p", {}, "Nothing published for this component in this time range.")));
  } else {
    parts.push(totalsTable(components.map(([c, n]) => [c, n, most.get(c)]), "Component"));
  }
  parts.push(...commands(rows), ...dataKinds(rows));
  return parts;
}

function commands(rows) {
  const runs = sum(rows.filter((r) => r.kind === "command_runs"), (r) => r.name, (r) => r.total);
  if (!runs.size) return [];
  const failed = sum(rows.filter((r) => r.kind === "command_failed"), (r) => r.name, (r) => r.total);
  const durations = rows.filter((r) => r.kind === "command_duration").map((r) => [...parseName(r.name), r.total]);
  const buckets = naturally(new Set(durations.map(([, bucket]) => bucket)), DURATIONS);
  const names = byValueDesc(runs).map(([name]) => name);
  const cell = (name, bucket) => durations.filter(([n, b]) => n === name && b === bucket).reduce((a, [, , t]) => a + t, 0);
  const rate = (name) => (failed.has(name) ? numeric(`${(100 * (1 - failed.get(name) / runs.get(name))).toFixed(1)}%`)
    : null);
  return [
    h("h2", {}, "Commands"),
    h("p", { class: "note" }, "Success rate: runs without a non-zero exit code. A number of failures below the "
      + "threshold is not published: \"hidden\" means few or no failures."),
    dataTable(["Command", "Runs", "Failed", "Success rate"],
      names.map((name) => [name, runs.get(name), failed.get(name) ?? null, rate(name)]), null, { missing: "hidden" }),
    buckets.length ? chartFigure({ id: "chart-durations", title: "Command durations (runs per bucket)", type: "bar",
      horizontal: true, stacked: true, labels: names,
      datasets: buckets.map((bucket) => ({ label: bucket, data: names.map((name) => cell(name, bucket) || null) })) })
      : null,
  ];
}

function dataKinds(rows) {
  const kinds = byValueDesc(sum(rows.filter((r) => r.kind === "data_kind"), (r) => r.name, (r) => r.total));
  if (!kinds.length) return [];
  const sizes = rows.filter((r) => r.kind === "data_size").map((r) => [...parseName(r.name), r.total]);
  const sizeNames = naturally(new Set(sizes.map(([, size]) => size)), DATA_SIZES);
  const labels = kinds.map(([kind]) => kind);
  const cell = (kind, size) => sizes.filter(([k, s]) => k === kind && s === size).reduce((a, [, , t]) => a + t, 0);
  return [
    h("h2", {}, "Data types and sizes"),
    chartFigure({ id: "chart-data", title: "Data opened, by type and size category", type: "bar", horizontal: true,
      stacked: true, labels,
      datasets: sizeNames.length ? sizeNames.map((size) => ({ label: size, data: labels.map((k) => cell(k, size) || null) }))
        : [{ label: "Times", data: kinds.map(([, n]) => n) }] }),
  ];
}

function pluginRows(values, weeks) {
  return values.filter((r) => r.field.startsWith("plugin.") && weeks.has(r.start))
    .map((r) => ({ ...r, plugin: r.field.slice("plugin.".length) }));
}

export async function plugins(state, index, info) {
  const values = await table(state.app, "values");
  const all = pluginRows(values, new Set(values.map((r) => r.start)));
  const weeks = weeksIn(all, state.range);
  const [, last, week] = snapshot(pluginRows(values, new Set(weeks)), weeks, index.published_at);
  const totals = byValueDesc(sum(last, (r) => r.plugin, (r) => r.reporters));
  const listed = new Set([...info.plugins, ...totals.map(([p]) => p)]);
  return [
    h("h1", {}, "Plugins"),
    filterForm(state, [], { all: false }),
    totals.length ? [
      chartFigure({ id: "chart-plugins", title: `Installs per plugin, week of ${week}`, type: "bar", horizontal: true,
        labels: totals.map(([p]) => p), datasets: [{ label: "Installs", data: totals.map(([, n]) => n) }] }),
      h("h2", {}, "Installs per plugin version"),
      dataTable(["Plugin", "Version", "Installs"], last.sort((a, b) => a.plugin.localeCompare(b.plugin)
        || b.reporters - a.reporters).map((r) => [r.plugin, r.value, r.reporters])),
    ] : h("p", { class: "note" }, `No plugin reached ${index.threshold} installations in this time range.`),
    h("h2", {}, "A page per plugin, for its maintainers"),
    h("ul", {}, [...listed].sort().map((p) => h("li", {}, h("a", { href: link(state, { page: "plugin", arg: p }) }, p)))),
  ];
}

export async function plugin(state, index) {
  const name = state.arg;
  const [values, counters] = await Promise.all([table(state.app, "values"), table(state.app, "counters")]);
  const rows = values.filter((r) => r.field === `plugin.${name}`);
  const weeks = weeksIn(rows, state.range);
  const inRange = new Set(weeks);
  const perWeek = sum(rows.filter((r) => inRange.has(r.start)), (r) => r.start, (r) => r.reporters);
  const [, last, week] = snapshot(rows.filter((r) => inRange.has(r.start)), weeks, index.published_at);
  const events = counters.filter((r) => r.kind === "plugin_event" && r.scope === name && inRange.has(r.start));
  const totals = byValueDesc(sum(events, (r) => r.name, (r) => r.total));
  const reach = peak(events, (r) => r.name, (r) => r.reporters);
  const badge = `badges/${encodeURIComponent(state.app)}/${encodeURIComponent(name)}.svg`;
  const absolute = new URL(badge, document.baseURI).href;
  const snippet = `![${name} users](${absolute})`;
  const copy = (event) => {
    const area = document.getElementById("badge-markdown");
    area.select();
    navigator.clipboard?.writeText(snippet).catch(() => {});
    event.target.textContent = "Copied";
  };
  return [
    h("h1", {}, `Plugin ${name}`),
    filterForm(state, [], { all: false }),
    weeks.length ? [
      chartFigure({ id: "chart-plugin-installs", title: "Weekly installs with this plugin", labels: weeks,
        partial: partialWeeks(weeks, index.published_at),
        datasets: [{ label: "Installs", data: weeks.map((w) => perWeek.get(w) ?? null) }] }),
      chartFigure({ id: "chart-plugin-versions", title: `Versions, week of ${week}`, type: "bar", horizontal: true,
        labels: last.map((r) => r.value), datasets: [{ label: "Installs", data: last.map((r) => r.reporters) }] }),
    ] : h("p", { class: "note" }, `No week had ${index.threshold} installations of this plugin or more.`),
    h("h2", {}, "Events"),
    totals.length ? totalsTable(totals.map(([e, n]) => [e, n, reach.get(e)]), "Event")
      : h("p", { class: "note" }, "No event of this plugin was counted by enough installations."),
    h("h2", {}, "Badge"),
    h("p", {}, h("img", { src: badge, alt: `${name}: weekly users badge` })),
    h("label", { for: "badge-markdown" }, "Markdown for a README"),
    h("textarea", { id: "badge-markdown", readonly: true, rows: "2" }, snippet),
    h("p", {}, h("button", { type: "button", onclick: copy }, "Copy")),
  ];
}

function levelFacts(manifest, name) {
  const level = manifest.levels[name] ?? {};
  const features = ["activity", "exceptions", "plugins", "data"].filter((feature) => level[feature]);
  const events = (manifest.events ?? []).filter((event) => event.level === name);
  const commandsHere = (manifest.commands ?? []).filter((command) => command.level === name);
  return [
    level.system?.length ? h("p", {}, "System information (binned): ", level.system.join(", ")) : null,
    level.dependencies?.length ? h("p", {}, "Versions of: ", level.dependencies.join(", ")) : null,
    features.length ? h("p", {}, "Also: ", features.join(", ")) : null,
    events.length ? dataTable(["Event", "Why"], events.map((e) => [e.name, e.purpose ?? ""])) : null,
    commandsHere.length ? dataTable(["Command", "Parameters", "Why"], commandsHere.map((c) =>
      [c.name, Object.keys(c.params ?? {}).join(", ") || "none", c.purpose ?? ""])) : null,
  ];
}

// The privacy ledger: every release of each published table, and the privacy loss added up (ledger.json).
function privacyLedger(ledger) {
  const column = (name) => ledger.columns.indexOf(name);
  const total = ledger.cumulative_epsilon;
  const rows = ledger.rows.map((row) => [row[column("publication")], row[column("released_at")].slice(0, 19)
    .replace("T", " "), row[column("dataset")], row[column("k")], row[column("mechanism")],
  row[column("epsilon_per_number")], row[column("numbers")], row[column("epsilon")], row[column("delta")],
  row[column("reporter_cap")], row[column("total_cap_per_day")], row[column("cumulative_epsilon")]]);
  return h("section", { id: "privacy-ledger" },
    h("h2", {}, "Privacy ledger"),
    h("p", { id: "cumulative-epsilon" }, total === null
      ? "Exact numbers of this application have been published: their privacy loss has no finite bound (epsilon)."
      : `Privacy loss of everything published so far: epsilon ${fmt(total)} in all (basic sequential `
        + "composition: each release of a table spends epsilon per number times its numbers; the releases add up)."),
    h("p", { class: "note" }, "Which numbers are published at all depends on exact counts (the threshold above), "
      + "which epsilon does not account for. Caps: how often one installation counts in a number of installations, "
      + "and how much it may add to a counter's total in a day."),
    rows.length ? dataTable(["Publication", "Released (UTC)", "Table", "k", "Mechanism", "ε per number", "Numbers",
      "ε", "δ", "Cap per install", "Total cap per day", "Cumulative ε"], rows, "One row per release of a table")
      : h("p", {}, "Nothing has been released yet."));
}

export async function transparency(state, index, info) {
  const [manifest, facts, ledger] = await Promise.all([
    fetchJSON(`${appPath(state.app)}/manifest.json`),
    fetchJSON(`transparency/${encodeURIComponent(state.app)}.json`),
    fetchJSON(`${appPath(state.app)}/ledger.json`),
  ]);
  const key = facts.certificate_key; // in the document, so that no request answers 404 where there is no key
  return [
    h("h1", {}, `What ${info.title} collects`),
    h("p", {}, manifest.app?.consent_text ?? ""),
    h("h2", {}, "Levels"),
    h("p", { class: "note" }, "Consenting to a level sends what that level adds and what every level before it adds. "
      + "Each level is sent to its own host name: block a host name to block that level."),
    facts.levels.map((level) => h("section", { class: "level", id: `level-${level.name}` },
      h("h3", {}, `Level ${level.name}`),
      h("p", {}, level.description),
      level.host ? h("p", {}, "Sent to host ", h("code", {}, level.host)) : null,
      levelFacts(manifest, level.name),
      level.example ? h("details", {}, h("summary", {}, `Example report of level ${level.name}`),
        h("pre", {}, level.example)) : null)),
    h("h2", {}, "Publication"),
    h("p", {}, `Every published number rests on at least ${index.threshold} distinct installations; `
      + `smaller ones are suppressed (${index.suppression ?? "not published"}).`),
    h("p", {}, index.noise ? ["Noise: ", h("code", {}, JSON.stringify(index.noise))] : "No noise is added."),
    privacyLedger(ledger),
    h("h2", {}, "Retention"),
    h("ul", {},
      h("li", {}, `Raw reports are deleted after ${facts.retention.raw_days} days.`),
      h("li", {}, `Request logs (never with addresses) are deleted after ${facts.retention.log_days} days.`),
      h("li", {}, "Published aggregates are kept.")),
    h("h2", {}, "How to opt out"),
    h("p", {}, "Telemetry is off until you say yes. To switch it off again, any of:"),
    h("ul", {}, facts.opt_out.commands.map((c) => h("li", {}, h("code", {}, c))),
      facts.opt_out.variables.map((v) => h("li", {}, "set ", h("code", {}, v)))),
    h("h2", {}, "Certificate signing key"),
    key?.key ? [h("p", {}, `${key.algorithm ?? ""} key ${key.key_id ?? ""} signs usage certificates:`),
      h("pre", { id: "signing-key" }, key.key)]
      : h("p", { class: "note" }, "This site publishes no certificate signing key."),
  ];
}

export function home(index) {
  return [
    h("h1", {}, "Applications"),
    h("p", { class: "note" }, `Published ${index.published_at ?? "never"}. Every number rests on at least `
      + `${index.threshold} distinct installations.`),
    index.apps.length ? h("ul", {}, index.apps.map((app) => h("li", {},
      h("a", { href: link({}, { app: app.name, page: "overview" }) }, app.title),
      app.plugins.length ? ` (${app.plugins.length} plugins)` : "")))
      : h("p", {}, "Nothing has been published yet."),
  ];
}

export { fmt };
