"""The user's answer (answer(), Consent documents) and what it allows right now (decide())."""

from __future__ import annotations

import copy
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentry import Manifest
from consentry._consent.answers import Consent, answer, decide, load_consent
from consentry._consent.switches import Switches, read_switches
from consentry._local.paths import Paths
from consentry.manifest import parse_manifest

NOW = datetime.datetime(2026, 11, 18, 12, 0, tzinfo=datetime.timezone.utc)
TODAY = NOW.date()


def _variant(manifest: Manifest, *, extra_event_at: str | None = None, drop_event: str | None = None) -> Manifest:
    """A new version of ``manifest``: one more event at a level, or one event fewer."""
    document = copy.deepcopy(manifest.to_document())
    events = document["events"]
    assert isinstance(events, list)
    if extra_event_at is not None:
        events.append({"name": "napari:layer:add_vectors", "level": extra_event_at, "purpose": "Vectors layers."})
    if drop_event is not None:
        document["events"] = [event for event in events if event["name"] != drop_event]
    return parse_manifest(document, "<variant>")


# ---- answer() ----------------------------------------------------------------------------------------------------
def test_answer_defaults_to_the_highest_level_for_modes_that_record(napari):
    for mode in ("on", "local", "ask"):
        consent = answer(napari, mode, now=NOW)
        assert consent.mode == mode
        assert consent.level == "full"
        assert consent.given == NOW
        assert consent.consent_version == napari.consent_version
        assert consent.collected == napari.collected("full")
        assert consent.asked_version == napari.consent_version


def test_answer_at_a_chosen_level_collects_only_up_to_it(napari):
    consent = answer(napari, "on", "basic", now=NOW)
    assert consent.level == "basic"
    assert consent.collected == napari.collected("basic")
    assert consent.collected < napari.collected("full")
    assert "system:cpus" not in consent.collected  # a middle-level field


def test_answer_off_forces_level_none_and_keeps_nothing(napari):
    consent = answer(napari, "off", "full", now=NOW, valid_for=datetime.timedelta(days=30))
    assert consent.mode == "off"
    assert consent.level == "none"
    assert consent.given is None
    assert consent.consent_version is None
    assert consent.collected == frozenset()
    assert consent.expires is None
    assert consent.asked_version == napari.consent_version  # the question was answered for this version


def test_answer_on_at_level_none_is_off(napari):
    consent = answer(napari, "on", "none", now=NOW)
    assert consent.mode == "off"
    assert consent.level == "none"


def test_answer_with_an_unknown_mode_raises(napari):
    with pytest.raises(ValueError, match="unknown mode"):
        answer(napari, "yes", now=NOW)  # type: ignore[arg-type]


def test_answer_with_an_unknown_level_raises(napari):
    with pytest.raises(KeyError):
        answer(napari, "on", "everything", now=NOW)


def test_answer_valid_for_sets_the_expiry_date(napari):
    consent = answer(napari, "on", "basic", now=NOW, valid_for=datetime.timedelta(days=30))
    assert consent.expires == datetime.date(2026, 12, 18)
    assert answer(napari, "on", "basic", now=NOW).expires is None


def test_answer_keeps_the_plugin_choices_made_earlier(napari):
    previous = Consent(mode="on", level="full", plugins={"napari-blobs": "deny", "napari-tracks": "allow"})
    consent = answer(napari, "local", "middle", now=NOW, previous=previous)
    assert dict(consent.plugins) == {"napari-blobs": "deny", "napari-tracks": "allow"}
    off = answer(napari, "off", now=NOW, previous=previous)
    assert dict(off.plugins) == {"napari-blobs": "deny", "napari-tracks": "allow"}


# ---- Consent documents -----------------------------------------------------------------------------------------------
def test_a_consent_document_round_trips(napari):
    consent = answer(
        napari,
        "ask",
        "middle",
        now=NOW,
        valid_for=datetime.timedelta(days=7),
        previous=Consent(plugins={"napari-blobs": "deny"}),
    )
    document = json.loads(json.dumps(consent.to_document()))
    assert Consent.from_document(document) == consent


VALID = {
    "mode": "on",
    "level": "full",
    "given": "2026-11-18T12:00:00+00:00",
    "consent_version": "0123456789abcdef",
    "collected": ["event:x"],
    "expires": "2026-12-18",
    "asked_version": "0123456789abcdef",
    "plugins": {"napari-blobs": "allow"},
}
GARBAGE: list[tuple[str, dict[str, object]]] = [
    ("empty", {}),
    ("no level", {"mode": "on"}),
    ("no mode", {"level": "full"}),
    ("unknown mode", {**VALID, "mode": "yes"}),
    ("mode null", {**VALID, "mode": None}),
    ("mode as list", {**VALID, "mode": ["on"]}),
    ("mode as dict", {**VALID, "mode": {"on": True}}),
    ("level as number", {**VALID, "level": 3}),
    ("level null", {**VALID, "level": None}),
    ("given not a time", {**VALID, "given": "yesterday"}),
    ("given without time zone", {**VALID, "given": "2026-11-18T12:00:00"}),
    ("given as number", {**VALID, "given": 1763467200}),
    ("given as list", {**VALID, "given": [2026, 11, 18]}),
    ("expires not a date", {**VALID, "expires": "2026-13-45"}),
    ("expires as dict", {**VALID, "expires": {"days": 30}}),
    ("collected as string", {**VALID, "collected": "event:x"}),
    ("collected with numbers", {**VALID, "collected": ["event:x", 7]}),
    ("collected as dict", {**VALID, "collected": {"event:x": True}}),
    ("plugins as list", {**VALID, "plugins": ["napari-blobs"]}),
    ("plugin choice unknown", {**VALID, "plugins": {"napari-blobs": "maybe"}}),
    ("plugin choice not a string", {**VALID, "plugins": {"napari-blobs": True}}),
    ("consent version as number", {**VALID, "consent_version": 12}),
    ("asked version as list", {**VALID, "asked_version": ["a"]}),
]


@pytest.mark.parametrize("document", [document for _, document in GARBAGE], ids=[name for name, _ in GARBAGE])
def test_a_malformed_consent_document_reads_as_the_default_off(document):
    assert Consent.from_document(document) == Consent()


def test_the_valid_document_used_for_the_garbage_cases_does_parse():
    consent = Consent.from_document(VALID)
    assert consent.mode == "on"
    assert consent.level == "full"
    assert consent.expires == datetime.date(2026, 12, 18)
    assert dict(consent.plugins) == {"napari-blobs": "allow"}


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2, 3]", b'"on"', b"\xff\xfe\x00garbage", b'{"mode": "on", "level": "full", "given": 5}'],
)
def test_an_unreadable_consent_file_reads_as_the_default_off(home, content):
    paths = Paths(home).app("napari-like")
    paths.root.mkdir(parents=True)
    paths.consent.write_bytes(content)
    assert load_consent(paths) == Consent()
    assert paths.consent.read_bytes() == content  # reading the answer never changes it


# ---- decide() ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One row of the decision table: the answer, the switches and the date, and what they must allow."""

    consent: Consent
    mode: str
    level: str
    record: bool
    send: bool
    ask: bool
    switches: Switches = field(default_factory=Switches)
    today: datetime.date = TODAY
    reason: str = ""


def _table(napari: Manifest) -> dict[str, Case]:
    on_full = answer(napari, "on", "full", now=NOW)
    on_middle = answer(napari, "on", "middle", now=NOW)
    for_30_days = answer(napari, "on", "basic", now=NOW, valid_for=datetime.timedelta(days=30))
    return {
        "no answer": Case(Consent(), "off", "none", record=False, send=False, ask=True, reason="not asked"),
        "said no for this version": Case(
            answer(napari, "off", now=NOW), "off", "none", record=False, send=False, ask=False, reason="said no"
        ),
        "on": Case(on_full, "on", "full", record=True, send=True, ask=False),
        "on at basic": Case(answer(napari, "on", "basic", now=NOW), "on", "basic", record=True, send=True, ask=False),
        "local": Case(answer(napari, "local", "full", now=NOW), "local", "full", record=True, send=False, ask=False),
        "ask": Case(answer(napari, "ask", "middle", now=NOW), "ask", "middle", record=True, send=True, ask=False),
        "on the expiry day": Case(
            for_30_days, "on", "basic", record=True, send=True, ask=False, today=datetime.date(2026, 12, 18)
        ),
        "expired": Case(
            for_30_days,
            "off",
            "none",
            record=False,
            send=False,
            ask=True,
            today=datetime.date(2026, 12, 19),
            reason="expired",
        ),
        "level no longer exists": Case(
            Consent(mode="on", level="extra", given=NOW, consent_version=napari.consent_version),
            "off",
            "none",
            record=False,
            send=False,
            ask=True,
        ),
        "CI with consent": Case(  # nothing recorded at all, not only nothing sent: see the invariants
            on_full,
            "off",
            "none",
            record=False,
            send=False,
            ask=False,
            switches=Switches(ci="GITHUB_ACTIONS"),
            reason="GITHUB_ACTIONS is set",
        ),
        "CI without an answer": Case(
            Consent(), "off", "none", record=False, send=False, ask=False, switches=Switches(ci="CI")
        ),
        "CI with expired consent": Case(
            for_30_days,
            "off",
            "none",
            record=False,
            send=False,
            ask=False,
            switches=Switches(ci="CI"),
            today=datetime.date(2027, 1, 1),
        ),
        "kill switch": Case(
            on_full,
            "off",
            "none",
            record=False,
            send=False,
            ask=False,
            switches=Switches(disabled="DO_NOT_TRACK is set"),
            reason="DO_NOT_TRACK",
        ),
        "kill switch without an answer": Case(
            Consent(), "off", "none", record=False, send=False, ask=False, switches=Switches(disabled="X")
        ),
        "cap below the consent": Case(
            on_full, "on", "basic", record=True, send=True, ask=False, switches=Switches(max_levels=("basic",))
        ),
        "cap above the consent": Case(
            on_middle, "on", "middle", record=True, send=True, ask=False, switches=Switches(max_levels=("full",))
        ),
        "the lowest of several caps": Case(
            on_full,
            "on",
            "basic",
            record=True,
            send=True,
            ask=False,
            switches=Switches(max_levels=("middle", "basic", "full")),
        ),
        "cap at none": Case(
            on_full, "off", "none", record=False, send=False, ask=False, switches=Switches(max_levels=("none",))
        ),
        "cap naming a level the manifest lacks": Case(
            on_full,
            "off",
            "none",
            record=False,
            send=False,
            ask=False,
            switches=Switches(max_levels=("standard",)),
            reason="'standard'",
        ),
        "force local": Case(
            on_full, "local", "full", record=True, send=False, ask=False, switches=Switches(force_local=True)
        ),
        "force local in ask mode": Case(
            answer(napari, "ask", now=NOW),
            "local",
            "full",
            record=True,
            send=False,
            ask=False,
            switches=Switches(force_local=True),
        ),
        "force local and a cap": Case(
            on_full,
            "local",
            "middle",
            record=True,
            send=False,
            ask=False,
            switches=Switches(force_local=True, max_levels=("middle",)),
        ),
    }


CASES = [
    "no answer",
    "said no for this version",
    "on",
    "on at basic",
    "local",
    "ask",
    "on the expiry day",
    "expired",
    "level no longer exists",
    "CI with consent",
    "CI without an answer",
    "CI with expired consent",
    "kill switch",
    "kill switch without an answer",
    "cap below the consent",
    "cap above the consent",
    "the lowest of several caps",
    "cap at none",
    "cap naming a level the manifest lacks",
    "force local",
    "force local in ask mode",
    "force local and a cap",
]


@pytest.mark.parametrize("name", CASES)
def test_decide(napari, name):
    case = _table(napari)[name]
    decision = decide(napari, case.consent, case.switches, case.today)
    assert (decision.mode, decision.level) == (case.mode, case.level)
    assert (decision.record, decision.send, decision.ask) == (case.record, case.send, case.ask)
    assert decision.ask_mode == (case.mode == "ask")
    assert case.reason in decision.reason
    assert decision.refreshed is None


def test_the_table_covers_every_case(napari):
    assert sorted(_table(napari)) == sorted(CASES)


def test_a_no_given_for_an_older_manifest_version_asks_again(napari):
    newer = _variant(napari, extra_event_at="full")
    said_no = answer(napari, "off", now=NOW)
    decision = decide(newer, said_no, Switches(), TODAY)
    assert (decision.record, decision.send, decision.ask) == (False, False, True)


def test_a_manifest_that_collects_more_at_the_consented_level_asks_again(napari):
    newer = _variant(napari, extra_event_at="basic")
    assert newer.consent_version != napari.consent_version
    consent = answer(napari, "on", "basic", now=NOW)
    decision = decide(newer, consent, Switches(), TODAY)
    assert (decision.mode, decision.level) == ("off", "none")
    assert (decision.record, decision.send, decision.ask) == (False, False, True)
    assert "collects more" in decision.reason


def test_a_manifest_that_collects_more_in_ci_stays_off_without_asking(napari):
    newer = _variant(napari, extra_event_at="basic")
    decision = decide(newer, answer(napari, "on", "basic", now=NOW), Switches(ci="CI"), TODAY)
    assert (decision.record, decision.send, decision.ask) == (False, False, False)


def test_a_manifest_that_collects_more_only_above_the_consented_level_keeps_consent(napari):
    newer = _variant(napari, extra_event_at="full")
    consent = answer(napari, "on", "middle", now=NOW)
    decision = decide(newer, consent, Switches(), TODAY)
    assert (decision.mode, decision.level, decision.record, decision.send, decision.ask) == (
        "on",
        "middle",
        True,
        True,
        False,
    )
    assert decision.refreshed is not None
    assert decision.refreshed.consent_version == newer.consent_version
    assert decision.refreshed.asked_version == newer.consent_version
    assert decision.refreshed.collected == newer.collected("middle")
    assert (decision.refreshed.mode, decision.refreshed.level, decision.refreshed.given) == ("on", "middle", NOW)


def test_a_manifest_that_collects_less_keeps_consent_and_refreshes_it(napari):
    newer = _variant(napari, drop_event="napari:layer:add_shapes")
    consent = answer(napari, "on", "full", now=NOW)
    decision = decide(newer, consent, Switches(), TODAY)
    assert (decision.mode, decision.level, decision.record, decision.send) == ("on", "full", True, True)
    assert decision.refreshed is not None
    assert decision.refreshed.consent_version == newer.consent_version
    assert "event:napari:layer:add_shapes" not in decision.refreshed.collected
    assert decision.refreshed.collected == newer.collected("full")


def test_an_unchanged_manifest_needs_no_refresh(napari):
    decision = decide(napari, answer(napari, "on", now=NOW), Switches(), TODAY)
    assert decision.refreshed is None


@pytest.mark.parametrize(
    "switch",
    [
        ({"NAPARI_LIKE_TELEMETRY": "0"}, None, None),
        ({"NAPARI_LIKE_TELEMETRY": "false"}, None, None),
        ({"NAPARI_LIKE_NO_TELEMETRY": "1"}, None, None),
        ({"CONSENTRY_DISABLE": "1"}, None, None),
        ({"DO_NOT_TRACK": "1"}, None, None),
        ({}, {"disable_all": True}, None),
        ({}, None, {"disable": True}),
        ({}, None, {"apps": {"napari-like": {"disable": True}}}),
    ],
    ids=[
        "app variable 0",
        "app variable false",
        "app no-telemetry variable",
        "CONSENTRY_DISABLE",
        "DO_NOT_TRACK",
        "user settings",
        "administrator policy",
        "administrator policy for the app",
    ],
)
def test_each_kill_switch_turns_consent_off(napari, home, environ, switch):
    variables, settings, policy = switch
    policy_file = Path(environ["CONSENTRY_POLICY_FILE"])
    environ = {**environ, **variables}
    if settings is not None:
        (home / "settings.json").write_text(json.dumps(settings))
    if policy is not None:
        policy_file.write_text(json.dumps(policy))
    switches = read_switches(napari.name, Paths(home), environ)
    assert switches.disabled
    for mode in ("on", "local", "ask"):
        decision = decide(napari, answer(napari, mode, now=NOW), switches, TODAY)
        assert (decision.mode, decision.record, decision.send, decision.ask) == ("off", False, False, False)
        assert switches.disabled in decision.reason


def test_no_kill_switch_leaves_consent_alone(napari, home, environ):
    switches = read_switches(napari.name, Paths(home), environ)
    assert switches == Switches()
    decision = decide(napari, answer(napari, "on", now=NOW), switches, TODAY)
    assert (decision.record, decision.send) == (True, True)


def test_stripepy_without_a_none_level_in_its_file_still_starts_off(stripepy):
    assert stripepy.level_names[0] == "none"
    decision = decide(stripepy, Consent(), Switches(), TODAY)
    assert (decision.mode, decision.record, decision.ask) == ("off", False, True)
    assert answer(stripepy, "on", now=NOW).level == "basic"


def test_a_consent_file_written_by_set_consent_is_what_decide_reads(napari, home, environ, clock):
    import consentry

    consentry.set_consent(napari, "local", "middle", home=home, environ=environ, clock=clock)
    stored = load_consent(Paths(home).app(napari.name))
    assert (stored.mode, stored.level, stored.consent_version) == ("local", "middle", napari.consent_version)
    decision = decide(napari, stored, Switches(), clock.today())
    assert (decision.mode, decision.level, decision.record, decision.send) == ("local", "middle", True, False)
