"""Telling, cheaply, that telemetry is off.

Most people never say yes, so :func:`consentry.init` first looks at what it can read without parsing or
validating the manifest: the global kill switches, the application's own variables, and the stored answer. When
these already say "off", it returns the no-op recorder having imported only the standard library modules here.
Anything less clear-cut (an answer that records, a manifest it cannot read) goes the full way. The helpers here
are also the single definition of the switches' spelling, which :mod:`consentry._consent.switches` uses.

The application's name is read from a TOML manifest by a scan of its lines (:func:`peek_toml_name`), not by a TOML
parser, which would cost a command-line tool more than the rest of its start; a manifest the scan cannot read for
certain is parsed. ``json`` is imported only to read a stored answer, which most people do not have.
"""

from __future__ import annotations

import os
import re
import sys

from consentry._local.paths import APPS_FOLDER, CONSENT_FILE, home_folder

TYPE_CHECKING = False  # not imported from typing: this module must stay cheap to import (see pyproject.toml)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "CI_VARIABLES",
    "app_variable_prefix",
    "certainly_off",
    "ci_variable",
    "is_app_name",
    "is_true",
    "opt_out_variables",
    "own_switch",
    "peek_name",
    "peek_toml_name",
]

#: Variables that CI services set; any of them set (and not false) means "running in CI".
CI_VARIABLES = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "APPVEYOR",
    "TF_BUILD",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "CODEBUILD_BUILD_ID",
    "BITBUCKET_BUILD_NUMBER",
    "DRONE",
    "SEMAPHORE",
    "HEROKU_TEST_RUN_ID",
    "WOODPECKER",
)
_FALSE = frozenset({"", "0", "false", "no", "off", "n", "f"})
_APP = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")  # the wire schema's APP_NAME, checked by a test
_PEEK_LIMIT = 1024 * 1024
_BLANK = " \t"  # TOML's white space


def is_true(value: str | None) -> bool:
    """Whether an environment value means "yes": set, and not empty, 0, false, no, off."""
    return value is not None and value.strip().lower() not in _FALSE


def is_app_name(name: str) -> bool:
    """Whether ``name`` is spelled as an application name (so it is also a safe file name)."""
    return _APP.fullmatch(name) is not None


def ci_variable(environ: Mapping[str, str]) -> str | None:
    """The CI variable that is set, or ``None`` outside continuous integration."""
    return next((name for name in CI_VARIABLES if is_true(environ.get(name))), None)


def app_variable_prefix(app: str) -> str:
    """``napari-like`` -> ``NAPARI_LIKE``: the prefix of the application's own variables."""
    return "".join(char if "A" <= char <= "Z" or "0" <= char <= "9" else "_" for char in app.upper())


def opt_out_variables(app: str) -> tuple[str, ...]:
    """Each environment variable, set as shown, that switches the telemetry of ``app`` off (:func:`certainly_off`)."""
    prefix = app_variable_prefix(app)
    return (f"{prefix}_NO_TELEMETRY=1", f"{prefix}_TELEMETRY=0", "DO_NOT_TRACK=1", "CONSENTRY_DISABLE=1")


def own_switch(app: str, environ: Mapping[str, str]) -> str | None:
    """The application's own variable that switches it off, described, or ``None``."""
    prefix = app_variable_prefix(app)
    own = environ.get(f"{prefix}_TELEMETRY")
    if own is not None and own.strip().lower() in _FALSE:
        return f"{prefix}_TELEMETRY={own}"
    if f"{prefix}_NO_TELEMETRY" in environ:
        return f"{prefix}_NO_TELEMETRY is set"
    return None


def _is_app_header(line: str) -> bool:
    """Whether a TOML line opens the ``[app]`` table: ``[app]``, maybe with blanks and a comment."""
    header = line.partition("#")[0].strip(_BLANK)
    return header.startswith("[") and header.endswith("]") and header[1:-1].strip(_BLANK) == "app"


def _plain_name(line: str) -> str | None:
    """The value of a TOML line ``name = "..."`` (no escapes) or ``name = '...'``, maybe with a comment."""
    key, equals, value = line.partition("=")
    value = value.lstrip(_BLANK)
    if not equals or key.strip(_BLANK) != "name" or value[:1] not in ('"', "'"):
        return None
    text, closed, rest = value[1:].partition(value[0])
    rest = rest.strip(_BLANK)
    if not closed or (value[0] == '"' and "\\" in text) or (rest and not rest.startswith("#")):
        return None
    return text


def peek_toml_name(text: str) -> str | None:
    """The ``name`` of the ``[app]`` table of a TOML manifest, found by a scan of its lines; ``None`` if not certain.

    Certain means: a line ``[app]``, then, before any other line that opens a table, ``name = "..."``, and nothing
    before it that could make one of those lines part of a multi-line string (a triple quote anywhere before it
    gives up). In valid TOML no other line can look like these two: a line of an array cannot be a bare ``[app]``
    nor ``name = ...``, and an inline table is on one line. Any other spelling (``app.name = ...``, quoted keys,
    escapes) gives ``None``, and the caller parses the file.
    """
    in_app = False
    scanned = 0
    for ended in text.split("\n"):  # TOML's line ends only; str.splitlines would also split inside strings
        scanned += len(ended) + 1
        line = ended.removesuffix("\r")
        if not in_app:
            in_app = _is_app_header(line)
            continue
        name = _plain_name(line)
        if name is not None:
            if '"""' in text[:scanned] or "'''" in text[:scanned]:
                return None
            return name if is_app_name(name) else None
        if line.lstrip(_BLANK).startswith("["):
            return None  # the table ended without a plain name line
    return None


def peek_name(path: str) -> str | None:
    """The application name in a manifest file, read without validating anything else; ``None`` if unreadable."""
    try:
        with open(path, "rb") as file:  # noqa: PTH123 - see the imports
            raw = file.read(_PEEK_LIMIT + 1)
        if len(raw) > _PEEK_LIMIT:
            return None
        if path.lower().endswith(".json"):
            import json  # noqa: PLC0415 - see the imports

            document = json.loads(raw)
        elif (scanned := peek_toml_name(raw.decode("utf-8"))) is not None:
            return scanned
        elif sys.version_info >= (3, 11):
            import tomllib  # noqa: PLC0415 - only for a manifest the scan could not read

            document = tomllib.loads(raw.decode("utf-8"))
        else:
            return None
        name = document["app"]["name"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return name if isinstance(name, str) else None


def certainly_off(
    manifest: object, home: str | Path | None, environ: Mapping[str, str] | None, *, asking: bool = False
) -> str | None:
    """Why telemetry is off, when that can be told without the full machinery; ``None`` when it cannot.

    ``asking``: the caller would ask the user (a command-line tool on a terminal). Then only a switch is certain:
    without an answer, or after a no that may have been given for an earlier version of the manifest, the question
    may be due.
    """
    env = os.environ if environ is None else environ
    if is_true(env.get("CONSENTRY_DISABLE")):
        return "disabled: CONSENTRY_DISABLE is set"
    if is_true(env.get("DO_NOT_TRACK")):
        return "disabled: DO_NOT_TRACK is set"
    ci = ci_variable(env)
    if ci is not None:
        return f"disabled in CI ({ci} is set): nothing is recorded or sent"
    name = (
        peek_name(os.fspath(manifest)) if isinstance(manifest, (str, os.PathLike)) else getattr(manifest, "name", None)
    )
    if not isinstance(name, str) or not is_app_name(name):
        return None
    switch = own_switch(name, env)
    if switch is not None:
        return f"disabled: {switch}"
    root = os.fspath(home) if home is not None else home_folder(env)
    try:
        with open(os.path.join(root, APPS_FOLDER, name, CONSENT_FILE), "rb") as file:  # noqa: PTH118, PTH123
            raw = file.read(_PEEK_LIMIT)
    except FileNotFoundError:
        return None if asking else "telemetry is off (not asked yet)"
    except OSError:
        return None
    import json  # noqa: PLC0415 - see the imports

    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(answer, dict) and answer.get("mode") == "off" and not asking:
        return "telemetry is off (you said no)"
    return None
