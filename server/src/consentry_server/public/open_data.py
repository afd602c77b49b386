"""Open data: every published table, as JSON and CSV files anyone may download, in a documented, versioned format.

The files are the same whether the server answers them (``/data/v1/...``) or ``publish --site`` writes them
into a static site (``data/v1/...``), and the dashboard reads nothing else. Format 1 (docs/open-data.md):

- ``index.json``: the publication (time, reporter threshold, suppression, noise) and its applications, each
  with the plugins that appear in its published data;
- ``{app}/manifest.json``: the application's registered manifest, what its installs may send;
- ``{app}/{table}-{period}.json`` and ``.csv``, ``table`` one of ``installs``, ``counters``, ``values`` and
  ``period`` one of ``day``, ``week``, ``month``: the rows of the table, columnar in JSON;
- ``{app}/ledger.json`` and ``.csv``: the application's privacy ledger (:mod:`consentry_server.publish.ledger`): every
  release of each of its tables, with its parameters and the cumulative epsilon.

Everything comes from the public store, after suppression: a number hidden there is absent here too. A file
is rendered once per publication and kept until the next one, so serving it costs a lookup.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consentry_server.ingest.validate import bounded_text
from consentry_server.public.http_cache import cacheable
from consentry_server.storage.public import LEDGER_COLUMNS, PUBLIC_TABLES, PublicationCache, PublicStore, safe_name

__all__ = ["FORMAT", "PERIODS", "TABLES", "OpenData", "file_names", "routes", "write_files"]

FORMAT = 1
TABLES = tuple(PUBLIC_TABLES)
PERIODS = ("day", "week", "month")
_PREFIX = "data/v1"
#: How long a client may keep a file before asking again (publications happen at most every few minutes).
_CACHE = "public, max-age=300"
#: Files kept per publication at most (requests for names that do not exist are answered, not kept, past it).
_MAX_CACHED = 1_000
_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
_TABLE_FILE = re.compile(r"(?P<table>[a-z]+)-(?P<period>[a-z]+)\.(?P<suffix>json|csv)")


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _csv(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(("" if value is None else value for value in row) for row in rows)
    return out.getvalue().encode()


def file_names() -> list[str]:
    """The files published for each application, relative to ``data/v1/{app}/``."""
    tables = [f"{table}-{period}.{suffix}" for table in TABLES for period in PERIODS for suffix in ("json", "csv")]
    return ["manifest.json", "ledger.json", "ledger.csv", *tables]


class OpenData:
    """The open-data files of the current publication of ``store``, rendered on first use and kept."""

    def __init__(self, store: PublicStore) -> None:
        self.store = store
        self._files: PublicationCache[bytes | None] = PublicationCache(store, _MAX_CACHED)

    def get(self, path: str) -> bytes | None:
        """The file at ``path`` (relative to ``data/v1/``), or ``None`` if the publication has none."""
        return self._files.get(path, lambda: self._render(path))

    def _render(self, path: str) -> bytes | None:
        if self.store.version() is None:
            return None
        if path == "index.json":
            return self._index()
        app, _, name = path.partition("/")
        if app not in self.store.app_names():
            return None
        if name == "manifest.json":
            info = next(info for info in self.store.apps() if info.name == app)
            return _json(info.manifest)
        if name in ("ledger.json", "ledger.csv"):
            return self._ledger(app, name.rsplit(".", 1)[1])
        match = _TABLE_FILE.fullmatch(name)
        if match is None or match["table"] not in TABLES or match["period"] not in PERIODS:
            return None
        table, period = match["table"], match["period"]
        columns, rows = self.store.table(table, app, period)
        if match["suffix"] == "csv":
            return _csv(columns, rows)
        threshold = self.store.meta().get("threshold")
        return _json(
            {
                "format": FORMAT,
                "app": app,
                "table": table,
                "period": period,
                "threshold": int(threshold) if threshold else None,
                "columns": list(columns),
                "rows": rows,
            }
        )

    def _ledger(self, app: str, suffix: str) -> bytes:
        rows = self.store.ledger(app)
        if suffix == "csv":
            return _csv(LEDGER_COLUMNS, rows)
        # Nothing released yet spent nothing; a store from before the ledger cannot tell.
        unknown = "publication" not in self.store.meta()
        cumulative = rows[-1][LEDGER_COLUMNS.index("cumulative_epsilon")] if rows else None if unknown else 0.0
        return _json(
            {
                "format": FORMAT,
                "app": app,
                "composition": "basic sequential: epsilon = epsilon_per_number x numbers, summed over releases",
                "cumulative_epsilon": cumulative,
                "columns": list(LEDGER_COLUMNS),
                "rows": rows,
            }
        )

    def _index(self) -> bytes:
        meta = self.store.meta()
        noise = meta.get("noise", "none")
        apps = [
            {"name": app.name, "title": app.title, "homepage": app.homepage, "plugins": self.store.plugins(app.name)}
            for app in self.store.apps()
        ]
        return _json(
            {
                "format": FORMAT,
                "published_at": meta.get("published_at"),
                "threshold": int(meta["threshold"]) if "threshold" in meta else None,
                "suppression": meta.get("suppression"),
                "noise": None if noise == "none" else json.loads(noise),
                "tables": {table: list(columns) for table, columns in PUBLIC_TABLES.items()},
                "periods": list(PERIODS),
                "apps": apps,
            }
        )


def routes(store: PublicStore) -> list[Route]:
    """``GET /data/v1/index.json``, ``/data/v1/{app}/manifest.json``, ``/data/v1/{app}/{table}-{period}.{json,csv}``."""
    data = OpenData(store)

    def serve(path_of: Callable[[Request], str]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            path = path_of(request)
            content = data.get(path)
            if content is None:
                message = f"no published file {bounded_text(path, 200)!r}"
                if not store.meta():
                    message = "nothing has been published yet"
                return JSONResponse({"error": {"code": "not_found", "field": "", "message": message}}, status_code=404)
            suffix = path.rsplit(".", 1)[-1]
            download = {"Content-Disposition": f'attachment; filename="{path.replace("/", "-")}"'}
            headers = download if suffix == "csv" else None
            return cacheable(request, content, media_type=_MEDIA[suffix], cache_control=_CACHE, headers=headers)

        return endpoint

    return [
        Route(f"/{_PREFIX}/index.json", serve(lambda _: "index.json")),
        Route(f"/{_PREFIX}/{{app}}/{{name}}", serve(lambda r: f"{r.path_params['app']}/{r.path_params['name']}")),
        Route("/data/{rest:path}", serve(lambda r: "/" + r.path_params["rest"])),  # no file's name starts with /
    ]


def write_files(store: PublicStore, directory: Path) -> list[Path]:
    """Write every open-data file of the current publication under ``directory/data/v1/``; return their paths."""
    data = OpenData(store)
    written = []
    apps = filter(safe_name, store.app_names())
    relative = ["index.json"] + [f"{app}/{name}" for app in apps for name in file_names()]
    for path in relative:
        content = data.get(path)
        if content is None:
            continue
        target = directory / _PREFIX / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written
