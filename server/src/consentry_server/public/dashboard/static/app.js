// The dashboard's router: the state lives in the URL hash (#/app/page/arg?range=12&os=linux), so every view
// can be shared as a link and works the same from the server and from a static copy.

import { fetchJSON } from "./data.js";
import { drawCharts, h } from "./ui.js";
import { home, link, overview, plugin, plugins, transparency, usage } from "./views.js";

const PAGES = { overview, usage, plugins, plugin, transparency };
const NAV = [["overview", "Overview"], ["usage", "Usage"], ["plugins", "Plugins"], ["transparency", "Transparency"]];

function readState() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [app, page, arg] = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  const state = { app, page: page ?? (app ? "overview" : undefined), arg, range: params.get("range") ?? "26" };
  for (const key of ["version", "os", "country", "component"]) state[key] = params.get(key) ?? undefined;
  return state;
}

function navigation(state, info) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...(info ? NAV.map(([page, text]) => h("a", {
    href: link({ ...state, arg: undefined, component: undefined }, { page }),
    "aria-current": state.page === page || (page === "plugins" && state.page === "plugin") ? "page" : null,
  }, text)) : []));
}

let rendering = 0;

async function render() {
  const ticket = ++rendering;
  const main = document.getElementById("main");
  const focused = document.activeElement?.id;
  const state = readState();
  try {
    const index = await fetchJSON("data/v1/index.json");
    const info = index.apps.find((app) => app.name === state.app);
    const view = info && PAGES[state.page];
    const content = view ? await view(state, index, info) : home(index);
    if (ticket !== rendering) return;
    navigation(state, view ? info : null);
    document.title = [info?.title, document.querySelector(".brand").textContent].filter(Boolean).join(" · ");
    main.replaceChildren(h("div", { id: "view", "data-page": view ? state.page : "home" }, content));
    await drawCharts();
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    main.dataset.ready = String(ticket);
  } catch (error) {
    main.replaceChildren(h("p", { role: "alert" }, `This page could not be loaded: ${error.message}`));
    main.dataset.ready = String(ticket);
  }
}

window.addEventListener("hashchange", render);
render();
