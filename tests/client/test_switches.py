"""Kill switches: every variable form, the user's settings, the administrator's policy file, CI; read once."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from consentry._consent.answers import Consent, answer, decide
from consentry._consent.switches import Switches, app_variable_prefix, read_switches
from consentry._local.files import MAX_STATE_BYTES
from consentry._local.paths import Paths
from consentry._local.session import AppSession

APP = "napari-like"

#: Every CI service's variable that must stop prompts and sending; pinned here so that none goes missing.
CI_NAMES = (
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


@pytest.fixture
def paths(home: Path) -> Paths:
    return Paths(home)


@pytest.fixture
def policy_file(environ: dict[str, str]) -> Path:
    """Where the administrator's policy file of the test environment is (absent until a test writes it)."""
    return Path(environ["CONSENTRY_POLICY_FILE"])


def _switches(paths: Paths, environ: dict[str, str], **variables: str) -> Switches:
    return read_switches(APP, paths, {**environ, **variables})


def test_the_clean_environment_has_no_switch(paths, environ):
    assert _switches(paths, environ) == Switches()


def test_the_variable_prefix_of_an_application():
    assert app_variable_prefix("napari-like") == "NAPARI_LIKE"
    assert app_variable_prefix("stripepy-like") == "STRIPEPY_LIKE"
    assert app_variable_prefix("a.b_c-d") == "A_B_C_D"


# ---- the application's own variables ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "false", "off", "no", "False", "OFF", "No", " 0 "])
def test_app_telemetry_variable_set_to_a_false_value_disables(paths, environ, value):
    switches = _switches(paths, environ, NAPARI_LIKE_TELEMETRY=value)
    assert switches.disabled is not None
    assert "NAPARI_LIKE_TELEMETRY" in switches.disabled


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_app_telemetry_variable_set_to_a_true_value_neither_enables_nor_disables(paths, environ, value):
    switches = _switches(paths, environ, NAPARI_LIKE_TELEMETRY=value)
    assert switches == Switches()


@pytest.mark.parametrize("value", ["1", "true"])
def test_app_telemetry_variable_true_does_not_turn_telemetry_on(napari, paths, environ, value):
    switches = _switches(paths, environ, NAPARI_LIKE_TELEMETRY=value)
    decision = decide(napari, Consent(), switches, datetime.date(2026, 11, 18))
    assert (decision.mode, decision.record, decision.send) == ("off", False, False)


@pytest.mark.parametrize("value", ["1", "true"])
def test_app_telemetry_variable_true_does_not_override_another_switch(paths, environ, value):
    switches = _switches(paths, environ, NAPARI_LIKE_TELEMETRY=value, DO_NOT_TRACK="1")
    assert switches.disabled == "DO_NOT_TRACK is set"


@pytest.mark.parametrize("value", ["1", "0", "", "false", "no", "anything"])
def test_app_no_telemetry_variable_set_to_anything_disables(paths, environ, value):
    switches = _switches(paths, environ, NAPARI_LIKE_NO_TELEMETRY=value)
    assert switches.disabled is not None
    assert "NAPARI_LIKE_NO_TELEMETRY" in switches.disabled


def test_another_applications_variables_do_not_apply(paths, environ):
    switches = _switches(paths, environ, STRIPEPY_LIKE_TELEMETRY="0", STRIPEPY_LIKE_NO_TELEMETRY="1")
    assert switches.disabled is None


# ---- CONSENTRY_DISABLE and DO_NOT_TRACK ---------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["CONSENTRY_DISABLE", "DO_NOT_TRACK"])
@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_global_variable_set_to_a_true_value_disables(paths, environ, variable, value):
    switches = _switches(paths, environ, **{variable: value})
    assert switches.disabled == f"{variable} is set"


@pytest.mark.parametrize("variable", ["CONSENTRY_DISABLE", "DO_NOT_TRACK"])
@pytest.mark.parametrize("value", ["0", "", "false", "no", "off"])
def test_global_variable_set_to_a_false_value_does_not_disable(paths, environ, variable, value):
    assert _switches(paths, environ, **{variable: value}).disabled is None


# ---- the user's settings ------------------------------------------------------------------------------------------
def test_user_settings_disable_all(paths, environ):
    paths.settings.write_text(json.dumps({"disable_all": True}))
    switches = _switches(paths, environ)
    assert switches.disabled is not None
    assert str(paths.settings) in switches.disabled


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"disable_all": False}),
        json.dumps({"disable_all": "no"}),
        json.dumps({"other": True}),
        json.dumps([{"disable_all": True}]),
        "{not json",
    ],
)
def test_user_settings_without_disable_all_true_do_not_disable_and_are_left_alone(paths, environ, content):
    paths.settings.write_text(content)
    assert _switches(paths, environ).disabled is None
    assert paths.settings.read_text() == content
    assert sorted(p.name for p in paths.home.iterdir()) == ["settings.json"]


# ---- the administrator's policy file ------------------------------------------------------------------------------
def test_policy_disable(paths, environ, policy_file):
    policy_file.write_text(json.dumps({"disable": True}))
    switches = _switches(paths, environ)
    assert switches.disabled is not None
    assert str(policy_file) in switches.disabled
    assert switches.policy_file == str(policy_file)


def test_policy_max_level(paths, environ, policy_file):
    policy_file.write_text(json.dumps({"max_level": "basic"}))
    switches = _switches(paths, environ)
    assert switches.disabled is None
    assert switches.max_levels == ("basic",)
    assert switches.force_local is False


def test_policy_mode_local(paths, environ, policy_file):
    policy_file.write_text(json.dumps({"mode": "local"}))
    switches = _switches(paths, environ)
    assert switches.disabled is None
    assert switches.force_local is True


def test_policy_per_app_scope_applies_to_that_app_only(paths, environ, policy_file):
    policy_file.write_text(
        json.dumps({"apps": {APP: {"disable": True}, "stripepy-like": {"max_level": "none", "mode": "local"}}})
    )
    mine = read_switches(APP, paths, environ)
    assert mine.disabled is not None
    assert mine.max_levels == ()
    assert mine.force_local is False
    other = read_switches("stripepy-like", paths, environ)
    assert other.disabled is None
    assert other.max_levels == ("none",)
    assert other.force_local is True
    third = read_switches("slicer-like", paths, environ)
    assert (third.disabled, third.max_levels, third.force_local) == (None, (), False)


def test_policy_global_and_per_app_caps_combine_and_the_lowest_wins(napari, paths, environ, policy_file):
    policy_file.write_text(json.dumps({"max_level": "full", "apps": {APP: {"max_level": "middle"}}}))
    switches = _switches(paths, environ)
    assert switches.max_levels == ("full", "middle")
    now = datetime.datetime(2026, 11, 18, tzinfo=datetime.timezone.utc)
    decision = decide(napari, answer(napari, "on", "full", now=now), switches, now.date())
    assert (decision.level, decision.record, decision.send) == ("middle", True, True)


def test_policy_disable_false_does_not_disable(paths, environ, policy_file):
    policy_file.write_text(json.dumps({"disable": False, "apps": {APP: {"disable": False}}}))
    switches = _switches(paths, environ)
    assert switches.disabled is None
    assert switches.policy_file == str(policy_file)


def test_an_earlier_switch_is_named_before_the_policy(paths, environ, policy_file):
    policy_file.write_text(json.dumps({"disable": True, "max_level": "basic"}))
    switches = _switches(paths, environ, CONSENTRY_DISABLE="1")
    assert switches.disabled == "CONSENTRY_DISABLE is set"
    assert switches.max_levels == ("basic",)


BAD_POLICIES = {
    "malformed": b'{"disable": true',
    "oversized": b'{"disable": true, "padding": "' + b"x" * MAX_STATE_BYTES + b'"}',
    "not UTF-8": b'{"disable": true, "note": "\xff\xfe"}',
    "array": b'[{"disable": true}]',
    "string": b'"disable"',
    "empty": b"",
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("content", list(BAD_POLICIES.values()), ids=list(BAD_POLICIES))
def test_an_unreadable_policy_file_is_ignored_and_left_untouched(paths, environ, policy_file, content):
    policy_file.write_bytes(content)
    before = sorted(p.name for p in policy_file.parent.iterdir())
    mtime = policy_file.stat().st_mtime_ns
    switches = _switches(paths, environ)
    assert switches == Switches()
    assert policy_file.read_bytes() == content
    assert policy_file.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in policy_file.parent.iterdir()) == before


def test_a_policy_file_that_is_a_folder_is_ignored(paths, environ, policy_file):
    policy_file.mkdir()
    assert _switches(paths, environ) == Switches()
    assert policy_file.is_dir()


def test_a_policy_file_just_under_the_size_bound_is_read(paths, environ, policy_file):
    head = b'{"disable": true, "padding": "'
    content = head + b"x" * (MAX_STATE_BYTES - len(head) - 2) + b'"}'
    assert len(content) == MAX_STATE_BYTES
    policy_file.write_bytes(content)
    assert _switches(paths, environ).disabled is not None


# ---- continuous integration -------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", CI_NAMES)
def test_each_ci_variable_is_detected(paths, environ, variable):
    switches = _switches(paths, environ, **{variable: "true"})
    assert switches.ci == variable
    assert switches.disabled is None


def test_jenkins_url_holding_a_url_is_detected(paths, environ):
    assert _switches(paths, environ, JENKINS_URL="https://jenkins.example.org/").ci == "JENKINS_URL"


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_a_ci_variable_set_to_a_false_value_is_not_ci(paths, environ, value):
    assert _switches(paths, environ, CI=value).ci is None


# ---- read once ----------------------------------------------------------------------------------------------------
def test_switches_do_not_change_when_the_environment_changes_afterwards(paths, environ, policy_file):
    variables = dict(environ)
    switches = read_switches(APP, paths, variables)
    variables.update(
        {"NAPARI_LIKE_NO_TELEMETRY": "1", "CONSENTRY_DISABLE": "1", "DO_NOT_TRACK": "1", "CI": "true"},
    )
    paths.settings.write_text(json.dumps({"disable_all": True}))
    policy_file.write_text(json.dumps({"disable": True, "max_level": "basic", "mode": "local"}))
    assert switches == Switches()
    assert read_switches(APP, paths, variables).disabled is not None  # a new read does see them


def test_a_session_keeps_the_switches_it_was_opened_with(napari, home, environ, clock):
    variables = dict(environ)
    session = AppSession.open(napari, home=home, environ=variables, clock=clock).set_consent("on", "full")
    assert session.decision.send is True
    variables["DO_NOT_TRACK"] = "1"
    variables["CI"] = "1"
    assert session.switches == Switches()
    assert (session.decision.record, session.decision.send) == (True, True)
