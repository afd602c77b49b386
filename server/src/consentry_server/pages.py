"""The public overview page: published aggregates rendered as plain HTML, with no script and no external request.

A first, honest page: weekly active installs per application with a bar per week, and the most used events.
"""

from __future__ import annotations

import html
from collections import defaultdict

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentry_server.storage.public import PublicStore

__all__ = ["page_routes", "render_overview"]

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #1d2430; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-top: 1px solid #d8dee6; padding-top: 1rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #3b6fb6; height: .8rem; display: inline-block; }
.note { color: #5a6472; font-size: .9rem; }
"""


def _bars(rows: list[tuple[str, int]]) -> str:
    peak = max((value for _, value in rows), default=0) or 1
    lines = [
        f'<tr><td>{html.escape(label)}</td><td class="n">{value}</td>'
        f'<td><span class="bar" style="width:{max(1, round(16 * value / peak))}rem"></span></td></tr>'
        for label, value in rows
    ]
    return "<table>" + "".join(lines) + "</table>"


def render_overview(store: PublicStore, title: str) -> str:
    """The overview page as HTML."""
    meta = store.meta()
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if not meta:
        parts.append("<p>Nothing has been published yet.</p>")
    else:
        parts.append(
            f'<p class="note">Published {html.escape(meta.get("published_at", ""))}. Every number rests on at least '
            f"{html.escape(meta.get('threshold', '?'))} distinct installations; smaller ones are not shown. "
            'Data: <a href="/api/v1/apps">JSON API</a>.</p>'
        )
    for app in store.apps():
        parts.append(f'<h2 id="{html.escape(app.name)}">{html.escape(app.title)}</h2>')
        weekly: dict[str, int] = defaultdict(int)
        for row in store.installs(app.name, "week"):
            weekly[str(row["start"])] = max(weekly[str(row["start"])], int(str(row["reporters"])))
        if weekly:
            parts.append("<h3>Weekly active installs (week starting)</h3>")
            parts.append(_bars(sorted(weekly.items())))
        totals: dict[str, int] = defaultdict(int)
        for row in store.counters(app.name, "week"):
            if row["kind"] in ("event", "plugin_event"):
                label = f"{row['scope']}: {row['name']}" if row["scope"] else str(row["name"])
                totals[label] += int(str(row["total"]))
        if totals:
            parts.append("<h3>Most used features (all weeks)</h3>")
            parts.append(_bars(sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:15]))
        if not weekly and not totals:
            parts.append('<p class="note">No number is large enough to be published yet.</p>')
    body = "\n".join(parts)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def page_routes(store: PublicStore, title: str) -> list[Route]:
    """The HTML pages."""

    async def overview(_: Request) -> HTMLResponse:
        return HTMLResponse(render_overview(store, title), headers={"Cache-Control": "public, max-age=60"})

    return [Route("/", overview)]
