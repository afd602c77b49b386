// Building the DOM (text is always set as text, never parsed as HTML) and drawing charts with Chart.js.
// Every chart carries its numbers twice for people and tests: a data-chart attribute and a table below it.

import { NUMERIC } from "./countries.js";
import { fetchJSON } from "./data.js";

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const number = new Intl.NumberFormat("en");
export const fmt = (value) => (value === null || value === undefined ? "—" : number.format(value));
const regions = new Intl.DisplayNames(["en"], { type: "region" });
export function countryName(code) {
  try {
    return regions.of(code) ?? code;
  } catch {
    return code;
  }
}

// A cell is a number (formatted, right-aligned), null (a number that is not published: shown as `missing`), text,
// or numeric(text) for a number already formatted (a percentage). A column of numbers is right-aligned, its
// header too; a table without rows is not drawn.
export const numeric = (text) => ({ numeric: true, text });
const isNumeric = (cell) => typeof cell === "number" || cell === null || cell === undefined || cell?.numeric === true;
const cellText = (cell, missing) => {
  if (cell === null || cell === undefined) return missing;
  if (typeof cell === "number") return fmt(cell);
  return cell.numeric === true ? cell.text : cell;
};

export function dataTable(headers, rows, caption, { missing = "—" } = {}) {
  if (!rows.length) return null;
  const right = headers.map((_, i) => i > 0 && rows.every((row) => isNumeric(row[i])));
  return h("div", { class: "scroll" }, h("table", {},
    caption ? h("caption", { class: "note" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((header, i) => h("th", { scope: "col", class: right[i] ? "n" : null }, header)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => (i
      ? h("td", { class: right[i] ? "n" : null, "data-hidden": cell === null || cell === undefined ? "" : null },
        cellText(cell, missing))
      : h("th", { scope: "row" }, cell))))))));
}

const COLORS = ["#2f5f9e", "#d9822b", "#3c9a5f", "#b8474c", "#7c5fb0", "#8a6d3b", "#4aa3b5", "#c05fa0"];
const pending = [];
const live = [];

// Draw the charts of the view just mounted; destroy those of the view before.
export async function drawCharts() {
  for (const chart of live.splice(0)) chart.destroy();
  const draws = pending.splice(0);
  await Promise.all(draws.map((draw) => draw()));
}

function figure(id, title, chartData, canvasClass, draw, tableElement, note) {
  const canvas = h("canvas", { role: "img", "aria-label": `${title} (the table below has the numbers)` });
  pending.push(async () => {
    if (!window.Chart) return;
    live.push(await draw(canvas));
  });
  return h("figure", { id, "data-chart": JSON.stringify(chartData) },
    h("figcaption", {}, title),
    note ? h("p", { class: "note" }, note) : null,
    h("div", { class: `chart ${canvasClass}` }, canvas),
    h("details", {}, h("summary", {}, "Numbers as a table"), tableElement));
}

// A line or bar chart: labels on the x axis (or y when horizontal), one dataset per series. `partial` lists the
// labels (weeks) still running at the publication: marked in the chart (dashed line, pale bar, "(partial week)"
// under the label) and in the table. A value that is not published (null) is no bar and no point, never a 0: a
// label whose values are all hidden says so under it, and its cells say `missing`. Nothing to show, no chart.
export function chartFigure({ id, title, type = "line", labels, datasets, horizontal = false, stacked = false, note,
  partial = [], missing = "hidden" }) {
  if (!labels.length || !datasets.length) return h("p", { id, class: "note" }, `${title}: nothing published here.`);
  const running = new Set(partial);
  const data = { labels, datasets: datasets.map(({ label, data: values }) => ({ label, data: values })),
    partial: labels.filter((label) => running.has(label)) };
  const hiddenAt = (i) => datasets.every((dataset) => dataset.data[i] === null || dataset.data[i] === undefined);
  const mark = (label) => (running.has(label) ? `${label} (partial week)` : label);
  const headers = [horizontal ? "" : "Week", ...datasets.map((dataset) => dataset.label)];
  const rows = labels.map((label, i) => [mark(label), ...datasets.map((dataset) => dataset.data[i] ?? null)]);
  const tall = horizontal && labels.length > 8 ? "tall" : "";
  const pale = (color) => (context) => (running.has(labels[context.dataIndex]) ? `${color}66` : color);
  const ticks = {
    callback(value, index) {
      const label = this.getLabelForValue(value);
      const marks = [running.has(label) ? "(partial week)" : null, hiddenAt(index) ? `(${missing})` : null];
      return marks.some(Boolean) ? [label, ...marks.filter(Boolean)] : label;
    },
  };
  return figure(id, title, data, tall, (canvas) => new window.Chart(canvas, {
    type,
    data: {
      labels,
      datasets: datasets.map((dataset, i) => {
        const color = COLORS[i % COLORS.length];
        return {
          ...dataset, borderColor: color, backgroundColor: type === "bar" ? pale(color) : color, spanGaps: false,
          minBarLength: type === "bar" && !stacked ? 2 : undefined, // a true 0 is a sliver; a hidden number nothing
          pointBackgroundColor: (context) => (running.has(labels[context.dataIndex]) ? "#fff" : color),
          segment: { borderDash: (context) => (running.has(labels[context.p1DataIndex]) ? [6, 4] : undefined) },
        };
      }),
    },
    options: {
      animation: false, maintainAspectRatio: false, indexAxis: horizontal ? "y" : "x",
      scales: { x: { stacked, beginAtZero: true, ...(horizontal ? {} : { ticks }) }, y: { stacked, beginAtZero: true } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  }), dataTable(headers, rows, null, { missing }), note);
}

// A world map of countries: `counts` is [[alpha-2 code, installs], ...].
// Countries without a published number (fewer installations than the threshold, or none) are grey, not a 0.
export function mapFigure({ id, title, counts, note }) {
  const byNumeric = new Map(counts.map(([code, value]) => [NUMERIC[code], value]));
  const rows = counts.map(([code, value]) => [`${countryName(code)} (${code})`, value]);
  const data = { labels: counts.map(([code]) => code), datasets: [{ label: "Installs", data: counts.map(([, v]) => v) }] };
  return figure(id, title, data, "map", async (canvas) => {
    const atlas = await fetchJSON("static/vendor/countries-110m.json");
    const { ChartGeo, Chart } = window;
    Chart.register(ChartGeo.ChoroplethController, ChartGeo.GeoFeature, ChartGeo.ColorScale, ChartGeo.ProjectionScale);
    const shapes = ChartGeo.topojson.feature(atlas, atlas.objects.countries).features;
    return new Chart(canvas, {
      type: "choropleth",
      data: {
        labels: shapes.map((shape) => shape.properties.name),
        datasets: [{
          label: "Installs", outline: shapes,
          data: shapes.map((shape) => ({ feature: shape, value: byNumeric.get(shape.id) ?? null })),
        }],
      },
      options: {
        animation: false, maintainAspectRatio: false, showOutline: true,
        plugins: { legend: { display: false } },
        scales: {
          projection: { axis: "x", projection: "equalEarth" },
          color: { axis: "x", quantize: 5, missing: "#e3e6ea", ticks: { precision: 0 },
            legend: { position: "bottom-left", align: "right", margin: 4 } },
        },
      },
    });
  }, dataTable(["Country", "Installs"], rows), note);
}
