"""Funder reports: ``consentry-server report --app A [--plugin P] --period 2026-Q3``.

One self-contained, printable HTML page for a maintainer to hand to a funder: the published figures of an
application (or one of its plugins) over a period, charts drawn as inline SVG, a methods section generated from
the application's manifest and the server's settings, and the signed usage certificate of the same figures with
the steps to verify it offline. Optionally a PDF of it, printed by headless Chromium through Playwright where both
are installed (:mod:`.pdf`).

Everything is read from the public store, never the raw database: a number that was not published is shown as
hidden, never computed. The checks (period, publication, application, plugin) are the certificate's
(:func:`consentry_server.publish.certificates.issue_certificate`): a report exists exactly when its certificate can.
"""

from __future__ import annotations

import datetime

from consentry_server.config import Settings
from consentry_server.public.funder_report.figures import collect
from consentry_server.public.funder_report.page import certificate_text, render
from consentry_server.publish.certificates import CertificateError, issue_certificate, parse_period, public_key_document
from consentry_server.storage.public import PublicStore

__all__ = ["ReportError", "build_report", "certificate_text", "default_file_name"]


class ReportError(ValueError):
    """A report cannot be made: the message says why, in one line."""


def default_file_name(app: str, plugin: str | None, period: str) -> str:
    """``APP-PERIOD-report.html`` (``APP-PLUGIN-PERIOD-report.html`` for a plugin)."""
    return "-".join([app, *([plugin] if plugin else []), period]) + "-report.html"


def build_report(
    settings: Settings, *, app: str, period: str, plugin: str | None = None, now: datetime.datetime | None = None
) -> str:
    """The HTML report of ``app`` (or its ``plugin``) over ``period`` (``2026``, ``2026-Q3``, ``2026-09``...).

    Signs the certificate it embeds with the server's key (created on first use, as ``certify`` does).
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        parsed = parse_period(period)
        document = issue_certificate(settings, app=app, plugin=plugin, period=parsed, now=now)
        key = public_key_document(settings)
    except CertificateError as error:
        raise ReportError(str(error)) from None
    if key is None:  # pragma: no cover - issuing a certificate creates the key
        raise ReportError("the server has no signing key")
    certificate = document["certificate"]
    assert isinstance(certificate, dict)  # noqa: S101 - made by issue_certificate
    store = PublicStore(settings.public_path)
    retention = (settings.raw_retention_days, settings.log_retention_days)
    figures = collect(store, app=app, plugin=plugin, period=parsed, certificate=certificate, retention=retention)
    return render(
        certificate_document=document, key=key, figures=figures, period=parsed, plugin=plugin, generated_at=now
    )
