"""The `consentry` command, run in-process through consentry.cli.main, and once as the installed console script."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry import NullRecorder, Recorder
from consentry._consent.answers import load_consent
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry.cli import ExitCode, main
from consentry.testing import FixedClock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "consentry_examples"
NAPARI = EXAMPLES / "napari_like" / "manifest.toml"
STRIPEPY = EXAMPLES / "stripepy_like" / "manifest.toml"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _status(capsys, app: str) -> dict[str, object]:
    code, out, _ = _run(capsys, "status", app, "--json")
    assert code == ExitCode.OK
    return json.loads(out)


def test_help_exits_0_and_mentions_preview_and_disable(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "preview" in out
    assert "disable" in out


def test_a_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == ExitCode.USAGE
    assert "usage" in capsys.readouterr().err


def test_status_of_an_unknown_app_says_so_with_a_hint(cli_home, capsys):
    code, out, err = _run(capsys, "status", "no-such-app")
    assert code == ExitCode.UNKNOWN_APP
    assert out == ""
    assert "no-such-app" in err
    assert "hint:" in err
    assert list(cli_home.iterdir()) == []


@pytest.mark.parametrize("name", ["../outside", "Napari Like", "napari-like/../x", ""])
def test_an_app_argument_that_is_not_a_name_is_a_usage_error(cli_home, capsys, name):
    outside = cli_home.parent / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text(json.dumps(consentry.load_manifest(STRIPEPY).to_document()))
    code, out, err = _run(capsys, "status", name)
    assert code == ExitCode.USAGE
    assert out == ""
    assert "hint:" in err
    assert list(cli_home.iterdir()) == []


def test_status_of_an_installed_app_without_an_answer_is_off(cli_home, capsys):
    document = _status(capsys, "stripepy-like")
    assert (document["mode"], document["level"], document["consented_mode"]) == ("off", "none", "off")
    assert document["ask_again"] is True
    assert document["pending_reports"] == 0
    assert list(cli_home.iterdir()) == []  # looking writes nothing


def test_enable_with_level_and_duration_then_status(cli_home, capsys):
    before = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).date()
    code, out, _ = _run(capsys, "enable", "napari-like", "--manifest", str(NAPARI), "--level", "basic", "--for", "30d")
    after = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).date()
    assert code == ExitCode.OK
    assert "mode on, level basic" in out
    document = _status(capsys, "napari-like")
    assert (document["mode"], document["level"]) == ("on", "basic")
    assert (document["consented_mode"], document["consented_level"]) == ("on", "basic")
    assert document["expires"] in {before.isoformat(), after.isoformat()}
    assert document["ask_again"] is False
    assert document["indicator"] == "Usage statistics: on (basic)"
    consent = load_consent(Paths(cli_home).app("napari-like"))
    assert (consent.mode, consent.level) == ("on", "basic")


@pytest.mark.parametrize(("command", "mode"), [("local", "local"), ("ask", "ask"), ("enable", "on")])
@pytest.mark.usefixtures("cli_home")
def test_each_mode_command_stores_its_mode(capsys, command, mode):
    code, _, _ = _run(capsys, command, "stripepy-like")
    assert code == ExitCode.OK
    document = _status(capsys, "stripepy-like")
    assert (document["mode"], document["level"], document["expires"]) == (mode, "basic", None)


@pytest.mark.parametrize("duration", ["30x", "abc", "0d", "-5d", "3650000d", "30", "d30", "1.5d"])
def test_a_bad_duration_is_a_usage_error(cli_home, capsys, duration):
    code, _, err = _run(capsys, "enable", "stripepy-like", f"--for={duration}")
    assert code == ExitCode.USAGE
    assert "hint:" in err
    assert not Paths(cli_home).app("stripepy-like").consent.exists()


@pytest.mark.parametrize("duration", ["12h", "30d", "2w", "3650d"])
@pytest.mark.usefixtures("cli_home")
def test_a_good_duration_is_accepted(capsys, duration):
    code, _, _ = _run(capsys, "enable", "stripepy-like", "--for", duration)
    assert code == ExitCode.OK
    assert _status(capsys, "stripepy-like")["expires"] is not None


def test_an_unknown_level_is_a_usage_error(cli_home, capsys):
    code, _, err = _run(capsys, "enable", "stripepy-like", "--level", "everything")
    assert code == ExitCode.USAGE
    assert "everything" in err
    assert "basic" in err  # the hint lists the levels
    assert not Paths(cli_home).app("stripepy-like").consent.exists()


def test_a_manifest_of_another_app_is_refused(cli_home, capsys):
    code, _, err = _run(capsys, "enable", "napari-like", "--manifest", str(STRIPEPY))
    assert code == ExitCode.UNKNOWN_APP
    assert "stripepy-like" in err
    assert list(cli_home.iterdir()) == []


@pytest.mark.usefixtures("cli_home")
def test_enable_under_a_kill_switch_says_nothing_will_be_recorded(capsys, monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    code, out, _ = _run(capsys, "enable", "stripepy-like")
    assert code == ExitCode.SWITCHED_OFF
    assert "DO_NOT_TRACK" in out


# ---- preview, disable ---------------------------------------------------------------------------------------------
def _record_a_past_day(home: Path, environ: dict[str, str]) -> datetime.date:
    """Consent and one day of use two days ago, through the library with a fixed clock."""
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    clock = FixedClock(past)
    consentry.set_consent(NAPARI, "on", "full", home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        NAPARI, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    recorder.count("napari:layer:add_image", 3)
    recorder.flush()
    return clock.today()


def test_preview_raw_prints_exactly_the_pending_bytes(cli_home, environ, capsysbinary):
    day = _record_a_past_day(cli_home, environ)
    assert main(["preview", "napari-like", "--raw"]) == ExitCode.OK
    out = capsysbinary.readouterr().out
    pending = sorted(Paths(cli_home).app("napari-like").pending.glob("*.json"))
    assert [p.name for p in pending] == [f"{day.isoformat()}.{level}.json" for level in ("basic", "full", "middle")]
    assert out == b"".join(p.read_bytes() for p in pending)
    assert all(consentry.wire.decode(p.read_bytes()).days == (day,) for p in pending)


def test_preview_json_shows_where_each_report_goes(cli_home, environ, capsys):
    _record_a_past_day(cli_home, environ)
    code, out, _ = _run(capsys, "preview", "napari-like", "--json")
    assert code == ExitCode.OK
    rows = json.loads(out)
    assert {row["level"]: row["url"] for row in rows} == {
        level: f"https://{level}.telemetry.napari-like.example.org/v1/reports/{level}"
        for level in ("basic", "middle", "full")
    }
    for row in rows:
        assert json.loads(Path(row["file"]).read_bytes()) == row["report"]
        assert row["approved"] is False


def test_preview_without_consent_shows_nothing_and_writes_nothing(cli_home, capsys):
    code, out, _ = _run(capsys, "preview", "napari-like")
    assert code == ExitCode.OK
    assert "nothing is waiting" in out
    assert list(cli_home.iterdir()) == []


def test_disable_deletes_pending_reports_and_the_store(cli_home, environ, capsys):
    _record_a_past_day(cli_home, environ)
    paths = Paths(cli_home).app("napari-like")
    assert main(["preview", "napari-like", "--raw"]) == ExitCode.OK
    capsys.readouterr()
    assert len(list(paths.pending.glob("*.json"))) == 3
    assert paths.store.exists()
    code, out, _ = _run(capsys, "disable", "napari-like")
    assert code == ExitCode.OK
    assert "3 unsent report(s) deleted" in out
    assert list(paths.pending.glob("*.json")) == []
    assert not paths.store.exists()
    assert load_consent(paths).mode == "off"
    assert _status(capsys, "napari-like")["mode"] == "off"


@pytest.mark.usefixtures("cli_home")
def test_disable_without_an_app_or_all_is_a_usage_error(capsys):
    code, _, err = _run(capsys, "disable")
    assert code == ExitCode.USAGE
    assert "hint:" in err


def test_disable_all_then_enable_all(cli_home, environ, capsys):
    consentry.set_consent(NAPARI, "on", "basic", home=cli_home, environ=environ)
    code, _, _ = _run(capsys, "disable", "--all")
    assert code == ExitCode.OK
    settings = Paths(cli_home).settings
    assert json.loads(settings.read_text()) == {"disable_all": True}
    off = consentry.init(NAPARI, home=cli_home, environ=environ, background=False, flush_at_exit=False)
    assert isinstance(off, NullRecorder)
    assert "settings.json" in off.reason
    assert _status(capsys, "napari-like")["mode"] == "off"

    code, _, _ = _run(capsys, "enable-all")
    assert code == ExitCode.OK
    assert "disable_all" not in json.loads(settings.read_text())
    on = consentry.init(NAPARI, home=cli_home, environ=environ, background=False, flush_at_exit=False)
    assert isinstance(on, Recorder)
    assert _status(capsys, "napari-like")["mode"] == "on"


def test_disable_all_keeps_other_settings(cli_home, capsys):
    settings = Paths(cli_home).settings
    settings.write_text(json.dumps({"theme": "dark"}))
    assert _run(capsys, "disable", "--all")[0] == ExitCode.OK
    assert json.loads(settings.read_text()) == {"disable_all": True, "theme": "dark"}
    assert _run(capsys, "enable-all")[0] == ExitCode.OK
    assert json.loads(settings.read_text()) == {"theme": "dark"}


# ---- upload and history through the CLI -----------------------------------------------------------------------------
def test_upload_in_local_mode_sends_nothing(cli_home, environ, capsys):
    _record_a_past_day(cli_home, environ)
    consentry.set_consent(NAPARI, "local", "full", home=cli_home, environ=environ)
    code, out, _ = _run(capsys, "upload", "napari-like")
    assert code == ExitCode.SWITCHED_OFF
    assert "nothing is sent" in out
    assert AppSession.open(consentry.load_manifest(NAPARI), home=cli_home, environ=environ).outbox.history() == []


@pytest.mark.usefixtures("cli_home")
def test_history_of_an_app_that_never_sent(capsys):
    code, out, _ = _run(capsys, "history", "stripepy-like", "--json")
    assert code == ExitCode.OK
    assert json.loads(out) == []


# ---- endpoints and apps ---------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("cli_home")
def test_endpoints_json_lists_the_host_of_each_level(capsys):
    code, out, _ = _run(capsys, "endpoints", "napari-like", "--json")
    assert code == ExitCode.OK
    assert json.loads(out) == [
        {
            "level": level,
            "host": f"{level}.telemetry.napari-like.example.org",
            "url": f"https://{level}.telemetry.napari-like.example.org/v1/reports/{level}",
        }
        for level in ("basic", "middle", "full")
    ]


@pytest.mark.usefixtures("cli_home")
def test_apps_lists_the_installed_examples(capsys):
    code, out, _ = _run(capsys, "apps", "--json")
    assert code == ExitCode.OK
    apps = {row["app"]: row["found"] for row in json.loads(out)}
    assert {"napari-like", "stripepy-like", "slicer-like"} <= set(apps)
    assert apps["stripepy-like"].startswith("installed")
    code, out, _ = _run(capsys, "apps")
    assert code == ExitCode.OK
    assert "stripepy-like" in out


@pytest.mark.usefixtures("cli_home")
def test_apps_lists_an_app_known_only_from_an_answer(capsys, tmp_path):
    manifest = tmp_path / "private-tool.toml"
    manifest.write_text(
        STRIPEPY.read_text().replace('name = "stripepy-like"', 'name = "private-tool"', 1), encoding="utf-8"
    )
    assert _run(capsys, "enable", "private-tool", "--manifest", str(manifest))[0] == ExitCode.OK
    code, out, _ = _run(capsys, "apps", "--json")
    assert code == ExitCode.OK
    apps = {row["app"]: row["found"] for row in json.loads(out)}
    assert apps["private-tool"].startswith("answered")
    assert _status(capsys, "private-tool")["mode"] == "on"  # found again without --manifest


# ---- the installed console script -----------------------------------------------------------------------------------
def test_the_console_script_is_installed(cli_home):
    candidate = Path(sys.executable).parent / "consentry"
    script = str(candidate) if candidate.exists() else shutil.which("consentry")
    assert script, "the consentry console script is not installed"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "preview" in done.stdout
    assert "disable" in done.stdout
    status = subprocess.run([script, "status", "no-such-app"], capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == ExitCode.UNKNOWN_APP
    assert "hint:" in status.stderr
    assert list(cli_home.iterdir()) == []
