r"""Kill switches: every way a user or an administrator can turn telemetry off, read once at start-up.

Each switch can only switch off (or restrict); none can turn telemetry on. In order of precedence:

- the application's own variables: ``<APP>_TELEMETRY=0|false|off|no`` or ``<APP>_NO_TELEMETRY`` set to anything
  (``<APP>`` is the application name in upper case with other characters as ``_``: ``NAPARI_LIKE``);
- ``CONSENTRY_DISABLE`` set to a true value (anything but empty, ``0``, ``false``, ``no``, ``off``);
- ``DO_NOT_TRACK`` set to a true value (https://consoledonottrack.com);
- the user-wide setting ``disable_all`` in ``<home>/settings.json`` (``consentry disable --all``);
- the system-wide administrator file (``CONSENTRY_POLICY_FILE``, else ``/etc/consentry/policy.json``,
  ``/Library/Application Support/consentry/policy.json`` or ``%PROGRAMDATA%\consentry\policy.json``) with
  ``{"disable": true}``, ``{"max_level": "basic"}`` and/or ``{"mode": "local"}``, for all applications or, under
  ``"apps": {"<app>": {...}}``, for one;
- continuous integration (``CI`` and the variables of common CI services): nothing is recorded, asked or sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consentry._consent.quick import CI_VARIABLES, app_variable_prefix, ci_variable, is_true, own_switch
from consentry._local.files import MAX_STATE_BYTES, read_json
from consentry._local.paths import POLICY_VARIABLE, Paths, policy_file

__all__ = ["CI_VARIABLES", "POLICY_VARIABLE", "Switches", "app_variable_prefix", "read_switches"]


@dataclass(frozen=True)
class Switches:
    """The restrictions in force for one application in this process.

    ``disabled`` names the switch that turned telemetry off (``None`` when none did); ``max_levels`` lists the
    administrator's caps on the level (the lowest applies; a level the manifest does not have caps to nothing);
    ``force_local`` keeps reports on this machine; ``ci`` names the CI variable found: nothing is recorded.
    """

    disabled: str | None = None
    max_levels: tuple[str, ...] = ()
    force_local: bool = False
    ci: str | None = None
    policy_file: str | None = None


def _read_policy(path: Path) -> dict[str, object] | None:
    """Read the administrator's file without ever moving it (it is not ours); unreadable means absent."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_STATE_BYTES + 1)
        document = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_STATE_BYTES else None
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def read_switches(app: str, paths: Paths, environ: Mapping[str, str] | None = None) -> Switches:
    """Read every kill switch that applies to ``app``. Call once at start-up."""
    env = os.environ if environ is None else environ
    disabled = own_switch(app, env)
    if disabled is None and is_true(env.get("CONSENTRY_DISABLE")):
        disabled = "CONSENTRY_DISABLE is set"
    if disabled is None and is_true(env.get("DO_NOT_TRACK")):
        disabled = "DO_NOT_TRACK is set"
    if disabled is None and (read_json(paths.settings) or {}).get("disable_all") is True:
        disabled = f"disabled for all applications in {paths.settings}"

    max_levels: list[str] = []
    force_local = False
    policy_path = policy_file(env)
    policy = _read_policy(policy_path)
    if policy is not None:
        apps = policy.get("apps")
        scopes = [policy, apps.get(app)] if isinstance(apps, dict) else [policy]
        for scope in scopes:
            if not isinstance(scope, dict):
                continue
            if scope.get("disable") is True and disabled is None:
                disabled = f"disabled by the administrator in {policy_path}"
            if isinstance(scope.get("max_level"), str):
                max_levels.append(str(scope["max_level"]))
            force_local = force_local or scope.get("mode") == "local"

    ci = ci_variable(env)
    used_policy = str(policy_path) if policy is not None else None
    return Switches(disabled, tuple(max_levels), force_local, ci, used_policy)
