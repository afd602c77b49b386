"""Signed usage certificates: the figures of an application (or one of its plugins) over a period, signed.

``consentry-server certify --app A [--plugin P] --period 2026-Q3`` writes a certificate that a maintainer can
show a funder and that anyone can check offline with ``consentry verify FILE --key KEY`` against the server's
published key (``GET /api/v1/certificates/key``). The format is in ``docs/certificates.md``; the bytes signed are
defined once, by :func:`consentry.wire.certificates.canonical_bytes`, in the client that verifies them.

The figures come from the public store only, never from raw reports: a certificate cannot state a number that
was not published, so none rests on fewer than the reporter threshold of installs. A number that was not
published (suppressed, or nothing to count) is ``null``, never estimated.

The signing key is an Ed25519 private key in ``settings.signing_key_path`` (PEM, PKCS #8; 32 raw bytes are read
too), created on first use with mode 0600; its public half is also written beside it as ``<file>.pub`` for a
public-only server, which must not hold the private key.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime
import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry.wire.certificates import (
    ALGORITHM,
    CERTIFICATE_FORMAT,
    MAX_KEY_FILE_BYTES,
    BadKeyError,
    canonical_bytes,
    encode_key,
    key_document,
    key_id,
    parse_public_key,
)
from consentry_server.config import Settings
from consentry_server.secret_files import create_once
from consentry_server.storage.public import PublicStore

__all__ = [
    "CertificateError",
    "Period",
    "certificate_figures",
    "certificate_routes",
    "issue_certificate",
    "load_signing_key",
    "parse_period",
    "public_key_document",
    "sign",
]

_KIND = "consentry usage certificate"
_RAW_KEY_BYTES = 32
_PERIODS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})"), "year"),
    (re.compile(r"(\d{4})-Q(\d)"), "quarter"),
    (re.compile(r"(\d{4})-(\d{2})"), "month"),
    (re.compile(r"(\d{4})-W(\d{2})"), "week"),
]
_PERIOD_FORMS = "YYYY, YYYY-Qn, YYYY-MM or YYYY-Www (e.g. 2026, 2026-Q3, 2026-09, 2026-W37)"


class CertificateError(ValueError):
    """A certificate cannot be issued: the message says why (bad period, nothing published, bad key file)."""


@dataclass(frozen=True)
class Period:
    """A calendar period: its label as given, its first and its last day (inclusive)."""

    label: str
    start: datetime.date
    end: datetime.date

    def weeks(self) -> list[datetime.date]:
        """Mondays of the ISO weeks that belong to the period: those whose Thursday falls in it (as ISO years do).

        Each week thus belongs to exactly one month, quarter and year, and consecutive certificates never count
        a week twice.
        """
        monday = self.start - datetime.timedelta(days=self.start.weekday())
        weeks = []
        while monday <= self.end:
            if self.start <= monday + datetime.timedelta(days=3) <= self.end:
                weeks.append(monday)
            monday += datetime.timedelta(days=7)
        return weeks

    def months(self) -> list[datetime.date]:
        """First days of the calendar months wholly inside the period (none for a week)."""
        months = []
        month = self.start.replace(day=1)
        while month <= self.end:
            last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            if month >= self.start and last <= self.end:
                months.append(month)
            month = last + datetime.timedelta(days=1)
        return months


def _bounds(kind: str, year: int, number: int) -> tuple[datetime.date, datetime.date]:
    """First and last day of a period; ``ValueError`` for one that does not exist (month 13, week 54)."""
    if kind == "year":
        return datetime.date(year, 1, 1), datetime.date(year, 12, 31)
    if kind == "week":
        start = datetime.date.fromisocalendar(year, number, 1)
        return start, start + datetime.timedelta(days=6)
    if kind == "quarter" and not 1 <= number <= 4:  # noqa: PLR2004 - four quarters
        raise ValueError(number)
    first, last = (3 * number - 2, 3 * number) if kind == "quarter" else (number, number)
    return datetime.date(year, first, 1), datetime.date(year, last, calendar.monthrange(year, last)[1])


def parse_period(text: str) -> Period:
    """A period from its label: ``2026`` (year), ``2026-Q3`` (quarter), ``2026-09`` (month), ``2026-W37``."""
    for pattern, kind in _PERIODS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        try:
            start, end = _bounds(kind, int(match[1]), int(match[2]) if kind != "year" else 0)
        except ValueError:
            raise CertificateError(f"{text!r} is not a {kind} that exists") from None
        return Period(text, start, end)
    raise CertificateError(f"{text!r} is not a period: use {_PERIOD_FORMS}")


# ---- the signing key --------------------------------------------------------------------------------------------
def _public_file(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    with path.open("rb") as file:
        data = file.read(MAX_KEY_FILE_BYTES + 1)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise CertificateError(
                f"signing key {path}: not a readable, unencrypted PEM private key ({error})"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CertificateError(f"signing key {path}: not an {ALGORITHM} key")
        return key
    if len(data) == _RAW_KEY_BYTES:
        return Ed25519PrivateKey.from_private_bytes(data)
    raise CertificateError(f"signing key {path}: not an {ALGORITHM} private key (PEM PKCS #8, or 32 raw bytes)")


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_public_file(path: Path, public: bytes) -> None:
    """``<key>.pub``: the public key document, readable by anyone, replaced atomically."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(key_document(public), indent=2, sort_keys=True) + "\n")
        Path(temporary).chmod(0o644)
        Path(temporary).replace(_public_file(path))
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


def _create_private_key(path: Path) -> Ed25519PrivateKey:
    """A new key in ``path`` (mode 0600); if another process created one meanwhile, that one.

    Never replaces a key that exists: certificates signed with it stay valid.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if not create_once(path, pem):
        return _read_private_key(path)
    _write_public_file(path, _public_bytes(key))
    return key


def load_signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey | None:
    """The signing key in ``path``; a new one if there is none and ``create`` (else ``None``)."""
    try:
        return _read_private_key(path)
    except FileNotFoundError:
        return _create_private_key(path) if create else None


def public_key_document(settings: Settings) -> dict[str, str] | None:
    """The published key (algorithm, base64 key, key id), or ``None`` before the first key exists.

    Read from the private key when this host holds it, else from ``<key>.pub``: a public-only server is given
    that file alone. Never creates a key.
    """
    path = settings.signing_key_path
    key = load_signing_key(path, create=False)
    if key is not None:
        return key_document(_public_bytes(key))
    try:
        text = _public_file(path).read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        return key_document(parse_public_key(text))
    except BadKeyError as error:
        raise CertificateError(f"{_public_file(path)}: {error}") from None


# ---- the figures ------------------------------------------------------------------------------------------------
def _per_start(rows: list[dict[str, object]], combine: Callable[[list[int]], int]) -> dict[datetime.date, int]:
    """``reporters`` of published rows grouped by the start of their period, combined per period."""
    grouped: dict[datetime.date, list[int]] = defaultdict(list)
    for row in rows:
        grouped[datetime.date.fromisoformat(str(row["start"]))].append(int(str(row["reporters"])))
    return {start: combine(numbers) for start, numbers in grouped.items()}


def _installs(store: PublicStore, app: str, plugin: str | None, period: str) -> dict[datetime.date, int]:
    """Active installs per period start, from published rows.

    The largest count among the levels; for a plugin, the installs reporting it summed over its versions (an
    install that changed version within a period counts once per version).
    """
    if plugin is None:
        return _per_start(store.installs(app, period), max)
    return _per_start(store.values(app, period, f"plugin.{plugin}"), sum)


def _new_installs(store: PublicStore, app: str, period: Period) -> int | None:
    """New installs in the period: the sum over its months (or its week), ``None`` if any part was not published."""
    parts = [("month", month) for month in period.months()] or [("week", week) for week in period.weeks()]
    rows: dict[tuple[str, datetime.date], list[int | None]] = defaultdict(list)
    for name in {name for name, _ in parts}:
        for row in store.installs(app, name):
            new = row["new_installs"]
            rows[name, datetime.date.fromisoformat(str(row["start"]))].append(None if new is None else int(str(new)))
    total = 0
    for part in parts:
        numbers = rows.get(part)
        if not numbers or None in numbers:
            return None
        total += max(number for number in numbers if number is not None)
    return total


def certificate_figures(store: PublicStore, app: str, plugin: str | None, period: Period) -> dict[str, object]:
    """The figures of ``app`` (or of its ``plugin``) over ``period``, from published rows only."""
    weekly = _installs(store, app, plugin, "week")
    monthly = _installs(store, app, plugin, "month")
    by_week = [
        {"week": "{}-W{:02d}".format(*week.isocalendar()[:2]), "start": week.isoformat(), "installs": weekly.get(week)}
        for week in period.weeks()
    ]
    published = [weekly[week] for week in period.weeks() if week in weekly]
    by_month = [{"month": month.strftime("%Y-%m"), "installs": monthly.get(month)} for month in period.months()]
    if not published and not any(month["installs"] is not None for month in by_month):
        what = f"plugin {plugin!r} of {app!r}" if plugin else repr(app)
        raise CertificateError(f"no published figure of {what} falls in {period.label}")
    counted = f"distinct installations of {app}" + (f" reporting plugin {plugin}" if plugin else "")
    figures: dict[str, object] = {
        "counted": counted,
        "weekly_active_installs": {
            "mean": round(sum(published) / len(published)) if published else None,
            "peak": max(published, default=None),
            "weeks": len(by_week),
            "weeks_published": len(published),
            "by_week": by_week,
        },
        "monthly_active_installs": {"by_month": by_month},
    }
    if plugin is None:
        figures["new_installs"] = _new_installs(store, app, period)
    return figures


# ---- the certificate --------------------------------------------------------------------------------------------
def _check_subject(store: PublicStore, app: str, plugin: str | None) -> str:
    """The title of ``app``, after checking that it (and ``plugin``) has published data."""
    apps = {info.name: info for info in store.apps()}
    if app not in apps:
        known = ", ".join(sorted(apps)) or "none"
        raise CertificateError(f"no published data for application {app!r} (published: {known})")
    if plugin is not None and not any(store.values(app, name, f"plugin.{plugin}") for name in ("week", "month")):
        raise CertificateError(
            f"no published data for plugin {plugin!r} of {app!r}: it is unknown, or it never had enough installs"
        )
    return apps[app].title


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def sign(certificate: dict[str, object], key: Ed25519PrivateKey) -> dict[str, object]:
    """The certificate file's document: ``certificate`` and the base64 Ed25519 signature of its canonical bytes."""
    signature = key.sign(canonical_bytes(certificate))
    return {"certificate": certificate, "signature": encode_key(signature)}


def issue_certificate(
    settings: Settings,
    *,
    app: str,
    period: Period,
    plugin: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, object]:
    """A signed certificate of ``app`` (or its ``plugin``) over ``period``, from the public store of ``settings``.

    The period must have ended, and been published after it ended, so that its figures are complete.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    today = now.astimezone(datetime.timezone.utc).date()
    if period.start > today:
        raise CertificateError(f"{period.label} is in the future")
    if period.end >= today:
        raise CertificateError(f"{period.label} has not ended yet (its last day is {period.end}): certify it after")
    store = PublicStore(settings.public_path)
    meta = store.meta()
    if not meta:
        raise CertificateError(
            f"nothing has been published in {settings.public_path} yet: run `consentry-server aggregate` and "
            "`consentry-server publish` first"
        )
    published_at = datetime.datetime.fromisoformat(meta["published_at"])
    if published_at.astimezone(datetime.timezone.utc).date() <= period.end:
        raise CertificateError(
            f"the last publication ({meta['published_at']}) does not cover all of {period.label}: run "
            "`consentry-server aggregate` and `consentry-server publish`, then certify"
        )
    title = _check_subject(store, app, plugin)
    figures = certificate_figures(store, app, plugin, period)
    key = load_signing_key(settings.signing_key_path)
    if key is None:  # pragma: no cover - load_signing_key creates one
        raise CertificateError("no signing key")
    noise = meta.get("noise", "none")
    certificate: dict[str, object] = {
        "format": CERTIFICATE_FORMAT,
        "kind": _KIND,
        "issuer": {"name": settings.site_title},
        "app": app,
        "app_title": title,
        "plugin": plugin,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat()},
        "figures": figures,
        "privacy": {
            "reporter_threshold": int(meta["threshold"]),
            "noise": None if noise == "none" else json.loads(noise),
        },
        "published_at": _utc(published_at),
        "issued_at": _utc(now),
        "algorithm": ALGORITHM,
        "key_id": key_id(_public_bytes(key)),
    }
    return sign(certificate, key)


def certificate_routes(settings: Settings) -> list[Route]:
    """``GET /api/v1/certificates/key``: the published key that certificates are verified against."""

    async def published_key(_: Request) -> JSONResponse:
        try:
            document = public_key_document(settings)
        except (CertificateError, OSError):
            document = None
        if document is None:
            message = "this server has no certificate signing key yet"
            return JSONResponse({"error": {"code": "no_key", "field": "", "message": message}}, status_code=404)
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    return [Route("/api/v1/certificates/key", published_key)]
