"""``consentry-server apps add FILE --server URL``: register manifests with a running server, through its admin API.

The manifest files are checked here first, as the server would check them, then sent as they are to
``POST /admin/v1/manifests`` with the admin token from ``CONSENTRY_ADMIN_TOKEN`` (never from the command line,
where other users of the machine could read it). Every outcome is one line; nothing raises.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from consentry.manifest import Manifest, ManifestError, load_any_manifest
from consentry_server.admin.api import MAX_MANIFEST_BODY

__all__ = ["TOKEN_VARIABLE", "add_remote"]

TOKEN_VARIABLE = "CONSENTRY_ADMIN_TOKEN"  # noqa: S105 - the name of the variable
#: Seconds one registration may take.
_TIMEOUT = 30.0
#: The most of an answer read (answers are short JSON documents).
_MAX_ANSWER = 64 * 1024


class _UnreachableError(Exception):
    """The server did not answer: the rest of the files are not tried."""


def _base(url: str) -> urllib.parse.SplitResult | str:
    """The server's URL, checked, or what is wrong with it."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return f"--server {url!r} is not a URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--server {url!r} is not an http:// or https:// URL, such as http://127.0.0.1:8000"
    if parts.query or parts.fragment:
        return f"--server {url!r}: give the server's base URL, without ? or #"
    return parts


def _post(base: urllib.parse.SplitResult, body: bytes, media: str, token: str) -> tuple[int, dict[str, object]]:
    """POST a manifest; the status and the JSON answer (empty if it is not JSON). Redirects are not followed."""
    port = base.port or (443 if base.scheme == "https" else 80)
    host = base.hostname or ""
    connection: http.client.HTTPConnection
    if base.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=_TIMEOUT, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=_TIMEOUT)
    path = base.path.rstrip("/") + "/admin/v1/manifests"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": media, "User-Agent": "consentry-server apps add"}
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read(_MAX_ANSWER)
    except (OSError, http.client.HTTPException) as error:
        raise _UnreachableError(f"no answer from {base.geturl()}: {str(error) or type(error).__name__}") from None
    finally:
        connection.close()
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    return response.status, document if isinstance(document, dict) else {}


def _refusal(status: int, document: dict[str, object], url: str) -> str:
    """The server's refusal in words, with what to do about the ones that are about the token."""
    error = document.get("error")
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    if code == "admin_disabled":
        return f"the server at {url} has no admin token: set admin_token (or {TOKEN_VARIABLE}) where it runs"
    if code == "unauthorized":
        return f"the server at {url} refused the token in {TOKEN_VARIABLE}: give it the server's admin_token"
    if status == 404:  # noqa: PLR2004
        return f"{url} has no admin API (HTTP 404): is it a Consentry server, and the base URL?"
    problems = document.get("problems")
    details = ""
    if isinstance(problems, list) and problems:
        details = "; " + "; ".join(
            f"{item.get('field')}: {item.get('message')}" for item in problems[:10] if isinstance(item, dict)
        )
    return (
        f"refused by the server (HTTP {status}{', ' + code if code else ''}): {message or 'no reason given'}{details}"
    )


def _one(file: str, base: urllib.parse.SplitResult, token: str, out: IO[str], err: IO[str]) -> bool:
    """Register one file; whether it was registered (or already was)."""
    path = Path(file)
    try:
        manifest = load_any_manifest(path)  # checked here first: the same checks as the server's, and its errors
        body = path.read_bytes()
    except ManifestError as error:
        err.write(f"consentry-server: error: {error}\n")
        return False
    except OSError as error:
        err.write(f"consentry-server: error: {file}: cannot be read: {error.strerror or error}\n")
        return False
    if len(body) > MAX_MANIFEST_BODY:
        err.write(f"consentry-server: error: {file}: is larger than the server takes ({MAX_MANIFEST_BODY} bytes)\n")
        return False
    media = "application/json" if path.suffix.lower() == ".json" else "application/toml"
    status, document = _post(base, body, media, token)
    url = base.geturl()
    if status not in (200, 201):
        err.write(f"consentry-server: error: {file}: {_refusal(status, document, url)}\n")
        return False
    what = "application" if isinstance(manifest, Manifest) else "plugin"
    state = "registered" if status == 201 else "already registered"  # noqa: PLR2004
    out.write(f"{file}: {what} {manifest.name} {manifest.consent_version} {state} on {url}\n")
    return True


def add_remote(files: Sequence[str], server: str, out: IO[str], err: IO[str]) -> int:
    """Register ``files`` with the server at ``server``; the exit status (0: all registered)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        err.write(
            f"consentry-server: error: --server needs the server's admin token in {TOKEN_VARIABLE} "
            "(the admin_token setting of the server)\n"
        )
        return 2
    base = _base(server)
    if isinstance(base, str):
        err.write(f"consentry-server: error: {base}\n")
        return 2
    failed = 0
    for file in files:
        try:
            failed += not _one(file, base, token, out, err)
        except _UnreachableError as error:
            err.write(f"consentry-server: error: {error}; is the server running, and is this its URL?\n")
            return 1
    return 1 if failed else 0
