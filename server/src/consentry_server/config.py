"""Server settings: one value object, read from an optional TOML file, then overridden by the command line.

Every setting is documented here and in ``docs/server.md``; a test fails when one of them is not.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from consentry_server.ingest.addresses import FORWARDED_HEADERS, parse_networks

__all__ = ["ConfigError", "Settings", "load_settings"]

_ADMIN_TOKEN_VARIABLE = "CONSENTRY_ADMIN_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_MAX_THRESHOLD = 1_000_000


class ConfigError(ValueError):
    """A configuration file or option is invalid."""


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told.

    ``database``: ``sqlite:///PATH`` (relative paths start from the working folder) or a PostgreSQL URL,
    ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (``postgres://`` too).
    ``public_database``: the SQLite file the public side reads published aggregates from (default:
    ``public.sqlite3`` beside a SQLite database). ``reporter_threshold``: the smallest number of distinct
    reporters a published number may rest on (k). ``admin_token``: bearer token of the admin API (also
    ``CONSENTRY_ADMIN_TOKEN``); without one the admin API is closed. ``max_body_bytes``: largest request body as
    received; ``max_report_bytes``: largest report after decompression. ``raw_retention_days``: days of raw
    reports kept (and the oldest day accepted). ``log_retention_days``: days of request-log lines kept.
    ``retention_interval_hours``: how often the running server applies retention itself (0: never; then run
    ``consentry-server retention``). ``future_days``: how far ahead of the server's date a report's day may be
    (time zones). ``site_title``: the title of the public pages. ``country_lookup``: derive a country from the
    connecting address (then forget the address). ``trusted_proxies``: comma-separated addresses or networks
    whose forwarding header is believed; ``forwarded_header``: which one they write, ``x-forwarded-for`` (the
    default) or ``forwarded`` (RFC 7239); the other is never read. ``source_rate_per_minute`` and
    ``source_burst``: the rate limit per source address; ``reporter_rate_per_minute`` and ``reporter_burst``:
    per reporter id. ``source_new_reporters_per_day``: how many reporter ids of one application a source may send
    reports of in one UTC day (:mod:`consentry_server.ingest.limits`). ``noise_epsilon``: when set, published counts
    get calibrated noise (needs the ``noise`` extra), with this epsilon per published number.
    ``storing_process``: decode, validate and store reports in a process of their own beside the serving one (so
    the two use two cores), instead of a thread of it.
    ``signing_key``: the file of the Ed25519 private key that signs usage certificates (default:
    ``signing-key.pem`` beside a SQLite database, else in ``consentry-data``), created on first use, readable by
    its owner only, never published. ``otlp_port``: a second port (4318 is OTLP/HTTP's) on which ``serve`` answers
    only the OTLP/HTTP receiver's routes (see ``docs/otlp.md``); none by default, the routes being on ``port`` too.
    ``slicer_app``: the registered application that ``POST /telemetry`` (3D Slicer's Telemetry extension, which
    does not name its application) stores into; without it only ``/telemetry/{app}`` is open. ``batch_key``: the
    file of the secret that makes reporter ids of dfx batch ids (default: ``batch-key`` beside a SQLite database,
    else in ``consentry-data``), created on first use, readable by its owner only (see ``docs/seed-formats.md``).
    ``request_timeout_seconds``: how long a request (its head and body) may take to arrive, from the connection
    opening or, on a kept-alive connection, from its first byte (408 after). ``max_header_bytes``: largest request
    line and headers (431 above). ``max_connections``: most connections open at once (fewer if the process may not
    open that many files); ``max_connections_per_source``: most from one address, trusted proxies excepted (503
    at once above either). See :mod:`consentry_server.ingest.connections`.
    """

    database: str = "sqlite:///consentry-data/consentry.sqlite3"
    public_database: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    reporter_threshold: int = 10
    max_body_bytes: int = 512 * 1024
    max_report_bytes: int = 1024 * 1024
    raw_retention_days: int = 60
    log_retention_days: int = 14
    retention_interval_hours: int = 6
    future_days: int = 1
    site_title: str = "Consentry usage statistics"
    country_lookup: bool = True
    trusted_proxies: str = ""
    forwarded_header: str = "x-forwarded-for"
    source_rate_per_minute: int = 600
    source_burst: int = 600
    reporter_rate_per_minute: int = 10
    reporter_burst: int = 60
    source_new_reporters_per_day: int = 1000
    noise_epsilon: float | None = None
    storing_process: bool = True
    signing_key: str | None = None
    slicer_app: str | None = None
    batch_key: str | None = None
    otlp_port: int | None = None
    request_timeout_seconds: int = 30
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    max_connections_per_source: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.reporter_threshold <= _MAX_THRESHOLD:
            raise ConfigError(f"reporter_threshold must be between 1 and 1000000, got {self.reporter_threshold}")
        if not 0 <= self.port <= 65535:  # noqa: PLR2004
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if self.otlp_port is not None and not 0 <= self.otlp_port <= 65535:  # noqa: PLR2004
            raise ConfigError(f"otlp_port must be between 0 and 65535, got {self.otlp_port}")
        positive = (
            "max_body_bytes",
            "max_report_bytes",
            "raw_retention_days",
            "log_retention_days",
            "source_rate_per_minute",
            "source_burst",
            "reporter_rate_per_minute",
            "reporter_burst",
            "source_new_reporters_per_day",
            "request_timeout_seconds",
            "max_header_bytes",
            "max_connections",
            "max_connections_per_source",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive")
        if self.retention_interval_hours < 0:
            raise ConfigError("retention_interval_hours must be 0 (never) or more")
        if self.noise_epsilon is not None and not 0 < self.noise_epsilon <= 100:  # noqa: PLR2004
            raise ConfigError(f"noise_epsilon must be above 0 and at most 100, got {self.noise_epsilon}")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as error:
            raise ConfigError(f"trusted_proxies: {error}") from None
        if self.forwarded_header.lower() not in FORWARDED_HEADERS:
            raise ConfigError(f"forwarded_header must be x-forwarded-for or forwarded, got {self.forwarded_header!r}")
        if not 0 <= self.future_days <= 2:  # noqa: PLR2004
            raise ConfigError(f"future_days must be 0, 1 or 2, got {self.future_days}")
        if self.postgresql_url is None and (self.sqlite_path is None or self.database == "sqlite:///"):
            raise ConfigError(f"database must be sqlite:///PATH or postgresql://..., got {self.database!r}")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, for a SQLite database."""
        return Path(self.database.removeprefix("sqlite:///")) if self.database.startswith("sqlite:///") else None

    @property
    def postgresql_url(self) -> str | None:
        """The connection URL, for a PostgreSQL database."""
        scheme, separator, rest = self.database.partition("://")
        return self.database if separator and rest and scheme in ("postgresql", "postgres") else None

    @property
    def public_path(self) -> Path:
        """The public store file."""
        if self.public_database:
            return Path(self.public_database)
        base = self.sqlite_path.parent if self.sqlite_path else Path("consentry-data")
        return base / "public.sqlite3"

    @property
    def signing_key_path(self) -> Path:
        """The private key file that signs usage certificates."""
        if self.signing_key:
            return Path(self.signing_key)
        return (self.sqlite_path.parent if self.sqlite_path else Path("consentry-data")) / "signing-key.pem"

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{key: value for key, value in changes.items() if value is not None})  # type: ignore[arg-type]


_KINDS = {
    "int": (int, "an integer"),
    "bool": (bool, "true or false"),
    "float": (float, "a number"),
    "str": (str, "a string"),
}


def _from_mapping(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    fields = {field.name: str(field.type) for field in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown setting {key!r} (known: {', '.join(fields)})")
        kind, what = _KINDS[fields[key].split(" ")[0]]
        if kind is float and type(value) is int:
            value = float(value)  # noqa: PLW2901 - 1 is a fine way to write 1.0
        if type(value) is not kind:
            raise ConfigError(f"{source}: {key} must be {what}")
        values[key] = value
    return values


def load_settings(config_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``config_file`` (TOML, optional) and the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            document = tomllib.loads(path.read_text("utf-8"))
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        values = _from_mapping(document, str(path))
    token = env.get(_ADMIN_TOKEN_VARIABLE, "").strip()
    if token and "admin_token" not in values:
        values["admin_token"] = token
    try:
        return Settings(**values)
    except ConfigError as error:
        raise ConfigError(f"{config_file or 'settings'}: {error}") from None
