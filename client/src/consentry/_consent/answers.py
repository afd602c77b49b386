"""The user's answer, per application, and what it allows right now.

A :class:`Consent` is what the user said: a mode (``off``, ``local``, ``ask``, ``on``), a level, when, for which
consent version of the manifest, and until when. :func:`decide` combines it with the manifest, the kill
switches and the date into a :class:`Decision`: may this process record, may it send, must it ask again.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, cast

from consentry._consent.switches import Switches
from consentry._local.files import read_json, write_json
from consentry._local.paths import AppPaths
from consentry.manifest import NONE_LEVEL, Manifest

__all__ = ["MODES", "Consent", "Decision", "Mode", "answer", "decide", "load_consent", "save_consent"]

Mode = Literal["off", "local", "ask", "on"]
MODES: tuple[Mode, ...] = ("off", "local", "ask", "on")
PluginChoice = Literal["allow", "deny"]


@dataclass(frozen=True)
class Consent:
    """What the user answered for one application. The default is no answer: off."""

    mode: Mode = "off"
    level: str = NONE_LEVEL
    given: datetime.datetime | None = None
    consent_version: str | None = None
    collected: frozenset[str] = frozenset()
    expires: datetime.date | None = None
    asked_version: str | None = None
    plugins: Mapping[str, PluginChoice] = field(default_factory=dict)

    def to_document(self) -> dict[str, object]:
        """The JSON document stored in ``consent.json``."""
        return {
            "mode": self.mode,
            "level": self.level,
            "given": self.given.isoformat() if self.given else None,
            "consent_version": self.consent_version,
            "collected": sorted(self.collected),
            "expires": self.expires.isoformat() if self.expires else None,
            "asked_version": self.asked_version,
            "plugins": dict(sorted(self.plugins.items())),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, object]) -> Consent:
        """Parse a stored answer; anything malformed gives the default (off), never an exception."""
        try:
            mode = document["mode"]
            level = document["level"]
            if mode not in MODES or not isinstance(level, str):
                return cls()
            given = _timestamp(document.get("given"))
            expires = _date(document.get("expires"))
            collected = document.get("collected") or []
            plugins = document.get("plugins") or {}
            if not isinstance(collected, list) or not all(isinstance(item, str) for item in collected):
                return cls()
            if not isinstance(plugins, dict) or not all(v in ("allow", "deny") for v in plugins.values()):
                return cls()
            return cls(
                mode=mode,
                level=level,
                given=given,
                consent_version=_optional_str(document.get("consent_version")),
                collected=frozenset(collected),
                expires=expires,
                asked_version=_optional_str(document.get("asked_version")),
                plugins={str(k): cast("PluginChoice", v) for k, v in plugins.items()},
            )
        except (KeyError, TypeError, ValueError):
            return cls()


def _optional_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("expected a string")


def _timestamp(value: object) -> datetime.datetime | None:
    if value is None:
        return None
    parsed = datetime.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without time zone")
    return parsed


def _date(value: object) -> datetime.date | None:
    return None if value is None else datetime.date.fromisoformat(str(value))


def load_consent(paths: AppPaths) -> Consent:
    """The stored answer; the default (off) when there is none or it cannot be read."""
    document = read_json(paths.consent)
    return Consent() if document is None else Consent.from_document(document)


def save_consent(paths: AppPaths, consent: Consent) -> None:
    """Store the answer atomically."""
    write_json(paths.consent, consent.to_document())


def answer(
    manifest: Manifest,
    mode: Mode,
    level: str | None = None,
    *,
    now: datetime.datetime,
    valid_for: datetime.timedelta | None = None,
    previous: Consent | None = None,
) -> Consent:
    """The :class:`Consent` recording that the user chose ``mode`` at ``level`` for this manifest, at ``now``.

    ``level`` defaults to the highest level for modes that record and to ``none`` for ``off``. ``valid_for``
    makes the answer expire ("yes for 30 days"). Plugin choices made earlier are kept.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if level is None:
        level = NONE_LEVEL if mode == "off" else manifest.levels[-1].name
    manifest.level(level)  # KeyError for an unknown level
    if mode != "off" and level == NONE_LEVEL:
        mode = "off"
    if mode == "off":
        level = NONE_LEVEL
    expires = (now + valid_for).date() if valid_for is not None and mode != "off" else None
    return Consent(
        mode=mode,
        level=level,
        given=now if mode != "off" else None,
        consent_version=manifest.consent_version if mode != "off" else None,
        collected=manifest.collected(level) if mode != "off" else frozenset(),
        expires=expires,
        asked_version=manifest.consent_version,
        plugins=dict(previous.plugins) if previous else {},
    )


@dataclass(frozen=True)
class Decision:
    """What the consent, the manifest, the switches and the date allow in this process.

    ``record``: count events (at levels up to ``level``). ``send``: reports may leave this machine, automatically
    in mode ``on``, each after the user's approval in mode ``ask`` (:attr:`ask_mode`); never in ``local`` mode or
    under a policy that keeps data local. ``ask``: the consent question should be (re)asked. ``reason`` explains
    the outcome in words for ``consentry status``. ``refreshed`` is the stored consent updated to a new manifest
    version that collects nothing more, when that happened.

    ``epoch`` names the answer data is recorded under: the effective mode and when the answer was given. Every
    count carries it to disk; a report goes out without the user's explicit approval only in mode ``on`` and
    only if all of its data was recorded under the current epoch. So a change of answer never turns data kept
    in ``local`` mode, or left unapproved in ``ask`` mode, into data that is sent.
    """

    mode: Mode
    level: str
    record: bool
    send: bool
    ask: bool
    reason: str
    refreshed: Consent | None = None
    epoch: str | None = None

    def sends_unasked(self, epoch: str | None) -> bool:
        """Whether data recorded under ``epoch`` may be sent without the user's explicit approval."""
        return self.send and self.mode == "on" and epoch is not None and epoch == self.epoch

    @property
    def ask_mode(self) -> bool:
        """Reports are written but each waits for the user's approval."""
        return self.mode == "ask"


def _off(reason: str, *, ask: bool = False) -> Decision:
    return Decision("off", NONE_LEVEL, record=False, send=False, ask=ask, reason=reason)


def decide(manifest: Manifest, consent: Consent, switches: Switches, today: datetime.date) -> Decision:
    """Combine the user's answer with the manifest, the kill switches and the date."""
    if switches.disabled:
        return _off(f"disabled: {switches.disabled}")
    if switches.ci:
        return _off(f"disabled in CI ({switches.ci} is set): nothing is recorded or sent")
    if consent.mode == "off" or consent.level == NONE_LEVEL:
        asked = consent.asked_version == manifest.consent_version
        reason = "you said no" if asked else "not asked yet"
        return _off(f"telemetry is off ({reason})", ask=not asked)
    if consent.level not in manifest.level_names:
        return _off(f"level {consent.level!r} no longer exists; consent is needed again", ask=True)
    if consent.expires is not None and today > consent.expires:
        return _off(f"consent expired on {consent.expires.isoformat()}", ask=True)
    refreshed = None
    if consent.consent_version != manifest.consent_version:
        if not manifest.collected(consent.level) <= consent.collected:
            return _off("the application now collects more; consent is needed again", ask=True)
        refreshed = replace(
            consent,
            consent_version=manifest.consent_version,
            collected=manifest.collected(consent.level),
            asked_version=manifest.consent_version,
        )

    level = consent.level
    for cap in switches.max_levels:
        if cap not in manifest.level_names:
            return _off(f"the administrator's policy caps the level at {cap!r}, which this application lacks")
        if manifest.level(cap).rank < manifest.level(level).rank:
            level = cap
    if level == NONE_LEVEL:
        return _off("the administrator's policy caps the level at 'none'")

    mode: Mode = consent.mode
    reasons = [f"consent given for level {consent.level!r}"]
    if level != consent.level:
        reasons.append(f"capped at {level!r} by the administrator")
    if switches.force_local and mode != "local":
        mode = "local"
        reasons.append("kept on this machine by the administrator's policy")
    send = mode in ("on", "ask")
    epoch = f"{mode}:{consent.given.isoformat() if consent.given else 'unknown'}"
    return Decision(
        mode, level, record=True, send=send, ask=False, reason="; ".join(reasons), refreshed=refreshed, epoch=epoch
    )
