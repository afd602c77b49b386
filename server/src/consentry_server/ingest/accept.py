"""From a request body to a report fit to store: the checks that need the body but not the connection.

The order of checks is the order of cost: the content type and encoding, the size after decompression, strict
decoding against the wire schema, the registered manifest, then the limit on the new reporters of the request's
source and the per-reporter rate limit. Anything refused
raises :class:`~consentry_server.ingest.validate.Rejection` with a machine-readable reason. Reports are decoded by the
client's own strict decoder, :func:`consentry.wire.decode` (a second, faster decoder of canonical bodies earned
1.09x on decoding and validation alone in ``benchmarks/server.py``, below the 1.5x that would justify two).

An :class:`Acceptor` runs where reports are stored: in the serving process (with the writer thread) or in the
storing process (:mod:`consentry_server.commit.process`), so that decoding does not share the serving
process's interpreter lock.
"""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from consentry.wire import Report, WireError, decode, strict_json
from consentry_server.config import Settings
from consentry_server.ingest.limits import Rate, RateLimiter
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.validate import Rejection, validate_report

__all__ = [
    "Acceptor",
    "check_content_type",
    "decode_text",
    "decompress",
    "parse_json",
    "rate_limiter",
    "utc_today",
]

#: Integers of more digits than this are refused before they are converted (by :func:`parse_json`).
_MAX_DIGITS = 20


def check_content_type(value: str | None) -> None:
    """Refuse (415) anything but ``application/json``, optionally with ``charset=utf-8``."""
    media = (value or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Rejection(415, "unsupported_media_type", "", f"Content-Type must be application/json, got {media!r}")
    for parameter in (value or "").split(";")[1:]:
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Rejection(415, "unsupported_charset", "", "reports are UTF-8")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (identity or gzip), refusing more than ``limit`` bytes of output."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise Rejection(413, "too_large", "", f"the report is larger than {limit} bytes")
        return body
    if encoding != "gzip":
        raise Rejection(415, "unsupported_encoding", "", f"Content-Encoding {encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise Rejection(400, "bad_gzip", "", f"the body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise Rejection(413, "too_large", "", f"the report decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise Rejection(400, "bad_gzip", "", "the gzip stream is truncated")
    if inflater.unused_data:
        raise Rejection(400, "bad_gzip", "", "there are bytes after the end of the gzip stream")
    return data


def decode_text(data: bytes, code: str = "invalid_body") -> str:
    """``data`` as UTF-8 text (400 ``code`` if it is not: UTF-16 and UTF-32 are refused, not guessed)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejection(400, code, "", f"the body is not UTF-8 text (byte {error.start})") from None


def parse_json(text: str, *, code: str, field: str) -> object:
    """Parse ``text`` strictly; 400 ``code`` for duplicate keys, fractions, ``NaN``, huge integers, deep nesting."""
    try:
        return strict_json.loads(text, integers_only=True, max_digits=_MAX_DIGITS)
    except strict_json.StrictJSONError as error:
        raise Rejection(400, code, field, str(error)) from None


def rate_limiter(settings: Settings) -> RateLimiter:
    """A rate limiter with the per-source and per-reporter limits of ``settings``, and the new reporters' limit."""
    return RateLimiter(
        Rate(settings.source_rate_per_minute, settings.source_burst),
        Rate(settings.reporter_rate_per_minute, settings.reporter_burst),
        new_reporters_per_day=settings.source_new_reporters_per_day,
    )


def utc_today() -> datetime.date:
    """The server's date (UTC): what a report's days are checked against."""
    return datetime.datetime.now(datetime.timezone.utc).date()


@dataclass
class Acceptor:
    """Decodes and validates request bodies against the registered manifests, and limits each reporter."""

    settings: Settings
    registry: Registry
    limiter: RateLimiter
    today: Callable[[], datetime.date] = field(default=utc_today)

    def accept(self, level: str, body: bytes, *, content_type: str | None, encoding: str | None) -> Report:
        """Decode and validate one request body; return the report to store, or raise :class:`Rejection`."""
        check_content_type(content_type)
        data = decompress(body, encoding, self.settings.max_report_bytes)
        try:
            report = decode(data, max_bytes=self.settings.max_report_bytes)
        except WireError as error:
            raise Rejection(400, "invalid_report", error.path, error.reason) from None
        catalog = self.registry.get(report.app, report.consent_version)
        if catalog is None:
            raise Rejection(400, "unknown_app", "app", f"{report.app!r} is not registered on this server")
        # The report as stored: validation may store plugins that are not public as 'other'.
        return validate_report(
            report,
            catalog,
            path_level=level,
            today=self.today(),
            future_days=self.settings.future_days,
            retention_days=self.settings.raw_retention_days,
        ).report

    def admit(
        self, level: str, body: bytes, *, content_type: str | None, encoding: str | None, source: str | None = None
    ) -> Report:
        """:meth:`accept`, then the limits (429): new reporters of the source keyed ``source``, then the reporter's.

        ``source``: the key of the source (:meth:`RateLimiter.source_key`), never its address; ``None`` if unknown.
        """
        report = self.accept(level, body, content_type=content_type, encoding=encoding)
        wait = self.limiter.check_new_reporter(source, report.app, report.reporter)
        if wait is not None:
            message = f"this source sent reports of {self.settings.source_new_reporters_per_day} new reporters today"
            raise Rejection(429, "too_many_new_reporters", "reporter", message, retry_after=wait)
        wait = self.limiter.check_reporter(report.app, report.reporter)
        if wait is not None:
            raise Rejection(429, "rate_limited", "reporter", "too many reports from this reporter", retry_after=wait)
        return report
