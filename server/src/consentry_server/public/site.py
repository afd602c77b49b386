"""``consentry-server publish --site DIR``: the dashboard as a static site that any static host can serve.

The site holds the same files the server answers, at the same relative paths, so the page behaves the same
from both: ``index.html``, ``static/...``, ``transparency/{app}.json``, the open data (``data/v1/...``) and the
badges (``badges/...``), and the public key of usage certificates (``api/v1/certificates/key``) once there is
one. It reads the public store (and that public key) only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from consentry_server.config import Settings
from consentry_server.public import badges, open_data
from consentry_server.public.pages import STATIC, render_shell, static_files, transparency_json
from consentry_server.publish.certificates import public_key_document
from consentry_server.storage.public import PublicStore, safe_name

__all__ = ["write_site"]


def write_site(store: PublicStore, settings: Settings, directory: Path) -> list[Path]:
    """Write the static site of the current publication of ``store`` into ``directory``; return the files."""
    directory.mkdir(parents=True, exist_ok=True)
    index = directory / "index.html"
    index.write_text(render_shell(settings.site_title), encoding="utf-8")
    written = [index]
    for relative in static_files():
        target = directory / "static" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STATIC / relative, target)
        written.append(target)
    for app in sorted(filter(safe_name, store.app_names())):
        content = transparency_json(store, settings, app)
        if content is not None:
            target = directory / "transparency" / f"{app}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            written.append(target)
    key = public_key_document(settings)
    if key is not None:  # what GET /api/v1/certificates/key answers, for the transparency page
        target = directory / "api" / "v1" / "certificates" / "key"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(key), encoding="utf-8")
        written.append(target)
    written += open_data.write_files(store, directory)
    written += badges.write_files(store, directory)
    return written
