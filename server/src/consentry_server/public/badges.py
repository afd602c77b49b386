"""SVG badges for READMEs: "1.2k weekly users" of an application or one of its plugins, from published data.

The figure is the published number of distinct installs in the last complete ISO week before the
publication (an application's installs at its most common level, which every install reports; a plugin's
installs summed over its versions). A week is complete once it ended on or before the day of the publication;
the dashboard's headline figures (``dashboard/static/data.js``, ``isComplete``) use the same rule, so the
badge and the headline show the same week. A week whose number was suppressed, or no published week at all, gives
a badge that says so instead of a number: a badge never shows what the public pages do not.

Served at ``/badges/{app}.svg`` and ``/badges/{app}/{plugin}.svg``, and written at the same paths by
``publish --site``.
"""

from __future__ import annotations

import datetime
import html
from collections import defaultdict
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consentry_server.public.http_cache import cacheable
from consentry_server.storage.public import PublicationCache, PublicStore, safe_name

__all__ = ["badge_svg", "compact_number", "routes", "weekly_users", "write_files"]

#: How long a README's image proxy may keep a badge.
_CACHE = "public, max-age=3600"
_LABEL = "users"
_UNITS = ("", "k", "M", "G")
_CHAR_WIDTH = 6.8  # an average advance of 11 px Verdana/DejaVu Sans, enough to size the two boxes


def compact_number(value: int) -> str:
    """``950`` -> ``950``, ``1234`` -> ``1.2k``, ``56789`` -> ``57k``, ``999999`` -> ``1M``."""
    scaled, unit = float(value), 0
    while scaled >= 999.5 and unit < len(_UNITS) - 1:  # noqa: PLR2004 - what rounds to 1000 takes the next unit
        scaled, unit = scaled / 1000, unit + 1
    if unit == 0:
        return str(value)
    text = f"{scaled:.1f}" if scaled < 9.95 else f"{scaled:.0f}"  # noqa: PLR2004 - one decimal below ten
    return text.removesuffix(".0") + _UNITS[unit]


def _last_complete_week(weeks: dict[datetime.date, int], published: datetime.date | None) -> int | None:
    complete = [start for start in weeks if published is None or start + datetime.timedelta(days=7) <= published]
    return weeks[max(complete)] if complete else None


def weekly_users(store: PublicStore, app: str, plugin: str | None = None) -> int | None:
    """Published distinct installs of ``app`` (or of its ``plugin``) in the last complete week; ``None`` if none."""
    meta = store.meta()
    published = datetime.date.fromisoformat(meta["published_at"][:10]) if "published_at" in meta else None
    weeks: dict[datetime.date, int] = defaultdict(int)
    if plugin is None:
        for row in store.installs(app, "week"):
            start = datetime.date.fromisoformat(str(row["start"]))
            weeks[start] = max(weeks[start], int(str(row["reporters"])))
    else:
        for row in store.values(app, "week", f"plugin.{plugin}"):
            weeks[datetime.date.fromisoformat(str(row["start"]))] += int(str(row["reporters"]))
    return _last_complete_week(weeks, published)


def badge_svg(label: str, value: str, color: str = "#3b6fb6") -> str:
    """A flat two-part badge, ``label`` on grey and ``value`` on ``color``, with a title for screen readers."""
    left = round(len(label) * _CHAR_WIDTH + 12)
    right = round(len(value) * _CHAR_WIDTH + 12)
    width = left + right
    label_text, value_text = html.escape(label), html.escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label_text}: {value_text}"><title>{label_text}: {value_text}</title>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3"/></clipPath><g clip-path="url(#r)">'
        f'<rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'</g><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label_text}</text><text x="{left + right / 2}" y="14">{value_text}</text>'
        "</g></svg>"
    )


def _render(store: PublicStore, app: str, plugin: str | None = None) -> str | None:
    """The badge of ``app`` (or its ``plugin``); ``None`` if the application or plugin is not published."""
    if app not in store.app_names() or (plugin is not None and plugin not in store.plugins(app)):
        return None
    users = weekly_users(store, app, plugin)
    if users is None:
        return badge_svg(_LABEL, "too few to show", color="#9f9f9f")
    return badge_svg(_LABEL, f"{compact_number(users)} weekly")


def routes(store: PublicStore) -> list[Route]:
    """``GET /badges/{app}.svg`` and ``GET /badges/{app}/{plugin}.svg``."""
    badges: PublicationCache[str | None] = PublicationCache(store)

    def answer(request: Request, app: str, plugin: str | None) -> Response:
        """The badge of ``app`` (or its ``plugin``), rendered once per publication."""
        svg = badges.get(f"{app}/{plugin or ''}", lambda: _render(store, app, plugin))
        if svg is None:
            return Response("no such published application or plugin\n", status_code=404, media_type="text/plain")
        return cacheable(request, svg.encode(), media_type="image/svg+xml", cache_control=_CACHE)

    # A name without ".svg" is looked up as "/", which no published application or plugin is named.
    async def app_badge(request: Request) -> Response:
        name = request.path_params["name"]
        return answer(request, name.removesuffix(".svg") if name.endswith(".svg") else "/", None)

    async def plugin_badge(request: Request) -> Response:
        name = request.path_params["name"]
        return answer(request, request.path_params["app"], name.removesuffix(".svg") if name.endswith(".svg") else "/")

    return [Route("/badges/{name}", app_badge), Route("/badges/{app}/{name}", plugin_badge)]


def write_files(store: PublicStore, directory: Path) -> list[Path]:
    """Write the badge of every published application and plugin under ``directory/badges/``."""
    written = []
    for app in sorted(filter(safe_name, store.app_names())):
        for plugin in [None, *filter(safe_name, store.plugins(app))]:
            svg = _render(store, app, plugin)
            if svg is None:
                continue
            target = directory / "badges" / (f"{app}.svg" if plugin is None else f"{app}/{plugin}.svg")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(svg, encoding="utf-8")
            written.append(target)
    return written
