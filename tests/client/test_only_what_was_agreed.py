"""Only what the user agreed to leaves the machine: a change of answer never makes earlier data sendable.

Data kept in ``local`` mode, reports left unapproved in ``ask`` mode and data recorded under an earlier answer wait
for the user's explicit ``consentry approve`` (or ``reject``) after ``consentry enable``; a running application
stops recording when the user switches off; an upload in progress stops too; and bookkeeping damaged after the
first report never makes a later report claim to be the install's first.
"""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry import Manifest, Recorder
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry.cli import ExitCode, main
from consentry.testing import FixedClock, MemoryTransport
from consentry.transport import Request, Response
from consentry.wire import decode
from support.e2e import two_level_manifest

APP = "agreed-app"
DAY = datetime.date(2026, 11, 17)


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    path = tmp_path / "agreed.toml"
    path.write_text(two_level_manifest(APP, "http://127.0.0.1:9"), encoding="utf-8")  # port 9: refused at once
    return path


@pytest.fixture
def manifest(manifest_path: Path) -> Manifest:
    return consentry.load_manifest(manifest_path)


def at(day: datetime.date, hour: int) -> FixedClock:
    return FixedClock(datetime.datetime.combine(day, datetime.time(hour), datetime.timezone.utc))


def record(manifest: Manifest, home: Path, environ: dict[str, str], clock: FixedClock, n: int = 1) -> None:
    """A run of the application that opens ``n`` files and exports one PNG: a report at each level."""
    recorder = consentry.init(
        manifest, app_version="1.0.0", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder), recorder
    recorder.count("file.open", n)
    recorder.count("export.png")
    recorder.close()


def answer(manifest: Manifest, mode: str, home: Path, environ: dict[str, str], clock: FixedClock) -> None:
    consentry.set_consent(manifest, mode, home=home, environ=environ, clock=clock)  # type: ignore[arg-type]


def session(manifest: Manifest, home: Path, environ: dict[str, str], clock: FixedClock) -> AppSession:
    return AppSession.open(manifest, home=home, environ=environ, clock=clock)


def upload(manifest: Manifest, home: Path, environ: dict[str, str], clock: FixedClock) -> MemoryTransport:
    """What the application's daily upload would send now."""
    transport = MemoryTransport()
    now = session(manifest, home, environ, clock)
    now.prepare_reports()
    now.upload(transport, force=True)
    return transport


def sent(transport: MemoryTransport) -> list[consentry.wire.Report]:
    return [decode(gzip.decompress(request.body)) for request in transport.requests]


def sent_days(transport: MemoryTransport) -> list[tuple[str, datetime.date]]:
    return sorted((report.level, report.days[0]) for report in sent(transport))


# ---- a change of answer ------------------------------------------------------------------------------------------
def test_days_kept_in_local_mode_are_not_sent_after_enable(cli_home, manifest_path, manifest, capsys):
    # The reproduction of the report: `consentry local APP`, a day recorded, `consentry enable APP`, the app runs.
    assert main(["local", APP, "--manifest", str(manifest_path)]) == ExitCode.OK
    yesterday = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - the CLI's clock is the real one
    record(manifest, cli_home, {}, at(yesterday, 12), n=3)
    capsys.readouterr()
    assert main(["enable", APP, "--manifest", str(manifest_path)]) == ExitCode.OK
    said = capsys.readouterr().out
    assert "2 report(s) recorded before this answer stay on this computer" in said
    assert f"consentry approve {APP}" in said
    assert f"consentry reject {APP}" in said

    app = session(manifest, cli_home, {}, at(datetime.date.today(), 9))  # noqa: DTZ011
    transport = MemoryTransport()
    assert app.upload(transport, force=True).waiting_approval == 2
    assert transport.requests == []

    assert main(["status", APP, "--json"]) == ExitCode.OK
    status = json.loads(capsys.readouterr().out)
    assert (status["pending_reports"], status["waiting_approval"]) == (2, 2)

    # `consentry preview` says why each waits; `consentry approve APP DAY.LEVEL` sends that one only.
    assert main(["preview", APP, "--json"]) == ExitCode.OK
    shown = {item["name"]: item["status"] for item in json.loads(capsys.readouterr().out)}
    assert shown == {
        f"{yesterday}.basic": "waits for your approval (recorded before your current answer)",
        f"{yesterday}.full": "waits for your approval (recorded before your current answer)",
    }
    assert main(["approve", APP, f"{yesterday}.basic"]) == ExitCode.NOT_SENT  # port 9 refuses: kept, approved
    app.upload(transport, force=True)
    assert sent_days(transport) == [("basic", yesterday)]
    assert [report.name for report in app.outbox.pending()] == [f"{yesterday}.full"]


def test_reports_left_unapproved_in_ask_mode_are_not_sent_after_enable(home, environ, manifest):
    answer(manifest, "ask", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12), n=2)
    assert len(session(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 8)).prepare_reports()) == 2
    answer(manifest, "on", home, environ, at(DAY + datetime.timedelta(days=1), 9))
    assert upload(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 10)).requests == []


def test_a_day_begun_in_local_mode_waits_even_for_what_was_recorded_after_enable(home, environ, manifest):
    answer(manifest, "local", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 10))
    answer(manifest, "on", home, environ, at(DAY, 11))
    record(manifest, home, environ, at(DAY, 12))
    next_day = at(DAY + datetime.timedelta(days=1), 9)
    assert upload(manifest, home, environ, next_day).requests == []
    [basic, _] = session(manifest, home, environ, next_day).outbox.pending()
    assert decode(basic.read()).counts == {DAY: {"file.open": 2}}  # the whole day, kept for the user to decide
    # From the next day on, everything was recorded under the current answer: it goes without asking.
    record(manifest, home, environ, next_day)
    assert sent_days(upload(manifest, home, environ, at(DAY + datetime.timedelta(days=2), 9))) == [
        ("basic", DAY + datetime.timedelta(days=1)),
        ("full", DAY + datetime.timedelta(days=1)),
    ]


def test_data_recorded_before_a_switch_to_local_and_back_waits(home, environ, manifest):
    answer(manifest, "on", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12))
    answer(manifest, "local", home, environ, at(DAY, 13))
    answer(manifest, "on", home, environ, at(DAY, 14))
    assert upload(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 9)).requests == []


def test_data_recorded_under_the_current_answer_goes_without_asking(home, environ, manifest):
    # The control: a fresh install's first day is sent as soon as it is over.
    answer(manifest, "on", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12))
    transport = upload(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 9))
    assert sent_days(transport) == [("basic", DAY), ("full", DAY)]


def test_a_report_whose_bytes_changed_since_its_answer_waits(home, environ, manifest):
    answer(manifest, "on", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12))
    next_day = at(DAY + datetime.timedelta(days=1), 9)
    session(manifest, home, environ, next_day).prepare_reports()
    pending = Paths(home).app(APP).pending
    report = pending / f"{DAY}.basic.json"
    report.write_bytes(report.read_bytes().replace(b'"file.open"', b'"file.open" '))  # edited after it was built
    transport = MemoryTransport()
    session(manifest, home, environ, next_day).upload(transport, force=True)
    assert sent_days(transport) == [("full", DAY)]


# ---- approve and reject, report by report ------------------------------------------------------------------------
@pytest.fixture
def asked(cli_home: Path, manifest_path: Path, manifest: Manifest) -> datetime.date:
    """Mode ask, two days recorded: four reports wait for approval. Returns the first day."""
    assert main(["ask", APP, "--manifest", str(manifest_path)]) == ExitCode.OK
    first = datetime.date.today() - datetime.timedelta(days=2)  # noqa: DTZ011 - the CLI's clock is the real one
    record(manifest, cli_home, {}, at(first, 12))
    record(manifest, cli_home, {}, at(first + datetime.timedelta(days=1), 12))
    return first


def test_reject_deletes_the_named_reports_unsent_and_records_them(asked, cli_home, manifest, capsys):
    capsys.readouterr()
    assert main(["reject", APP, asked.isoformat()]) == ExitCode.OK  # a day: every level of it
    assert "2 report(s) deleted without being sent" in capsys.readouterr().out
    app = session(manifest, cli_home, {}, at(datetime.date.today(), 9))  # noqa: DTZ011
    assert sorted(report.day for report in app.outbox.pending()) == [asked + datetime.timedelta(days=1)] * 2
    history = app.outbox.history()
    assert sorted(entry.outcome for entry in history) == ["rejected by you: not sent"] * 2
    assert {decode(entry.report.encode()).days for entry in history} == {(asked,)}
    assert {entry.status for entry in history} == {0}
    transport = MemoryTransport()
    app.upload(transport, force=True)
    assert transport.requests == []  # the rest still waits for approval


def test_approve_sends_only_what_is_named(asked, cli_home, manifest, capsys):
    later = asked + datetime.timedelta(days=1)
    assert main(["approve", APP, f"{later}.full"]) == ExitCode.NOT_SENT  # nothing listens on port 9: kept
    assert "1 report(s) approved" in capsys.readouterr().out
    transport = MemoryTransport()
    app = session(manifest, cli_home, {}, at(datetime.date.today(), 9))  # noqa: DTZ011
    app.upload(transport, force=True)
    assert sent_days(transport) == [("full", later)]


def test_approve_of_a_report_that_is_not_pending_is_a_usage_error(asked, cli_home, capsys):
    capsys.readouterr()
    assert main(["approve", APP, "2001-01-01.basic"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "no pending report '2001-01-01.basic'" in err
    assert f"{asked}.basic" in err  # the hint lists what is pending
    assert all(not report.approved for report in session_of(cli_home).outbox.pending())


def session_of(home: Path) -> AppSession:
    manifest = consentry.load_manifest(Paths(home).app(APP).manifest)
    return AppSession.open(manifest, home=home, environ={})


# ---- the answer changes while the application runs or uploads ----------------------------------------------------
def test_a_running_application_stops_recording_when_switched_off(home, environ, manifest):
    answer(manifest, "on", home, environ, at(DAY, 8))
    recorder = consentry.init(
        manifest, app_version="1.0.0", home=home, environ=environ, clock=at(DAY, 9), background=False
    )
    assert isinstance(recorder, Recorder)
    recorder.count("file.open")
    recorder.flush()
    answer(manifest, "off", home, environ, at(DAY, 10))  # `consentry disable` in another terminal
    paths = Paths(home).app(APP)
    assert not paths.store.exists()
    recorder.count("file.open", 5)
    recorder.close()
    assert not paths.store.exists()
    assert not paths.journal.exists() or list(paths.journal.iterdir()) == []
    assert recorder.quiet is not None
    assert "answer changed" in recorder.quiet


def test_an_upload_in_progress_stops_when_switched_off(home, environ, manifest):
    answer(manifest, "on", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12))
    next_day = at(DAY + datetime.timedelta(days=1), 9)
    app = session(manifest, home, environ, next_day)
    app.prepare_reports()
    assert len(app.outbox.pending()) == 2

    def switch_off() -> None:
        # Like `consentry disable` would, but keeping the pending files, to show the upload itself stops.
        Paths(home).app(APP).consent.write_text(json.dumps({"mode": "off", "level": "none"}), encoding="utf-8")

    def answer_then_switch_off(_: Request) -> Response:
        switch_off()
        return Response(200, {}, b'{"status":"stored"}')

    transport = MemoryTransport(answer_then_switch_off)
    result = app.upload(transport, force=True)
    assert len(transport.requests) == 1
    assert result.sent == 1
    assert any("nothing more is sent" in message for message in result.messages)


# ---- first_report is claimed once ----------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "truncated", "deleted"])
def test_damaged_bookkeeping_never_claims_a_second_first_report(home, environ, manifest, damage):
    answer(manifest, "on", home, environ, at(DAY, 8))
    record(manifest, home, environ, at(DAY, 12))
    first = upload(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 9))
    assert {report.first_report for report in sent(first)} == {True}
    state = Paths(home).app(APP).state
    if damage == "garbage":
        state.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        state.write_bytes(state.read_bytes()[:20])
    else:
        state.unlink()
    record(manifest, home, environ, at(DAY + datetime.timedelta(days=1), 12))
    second = upload(manifest, home, environ, at(DAY + datetime.timedelta(days=2), 9))
    reports = sent(second)
    assert [report.days for report in reports] == [(DAY + datetime.timedelta(days=1),)] * 2
    assert {report.first_report for report in reports} == {False}
    assert json.loads(state.read_bytes())["first_day"] == "unknown"


def test_status_counts_what_waits_for_the_user_only_where_something_can_be_sent(
    cli_home, manifest_path, manifest, capsys
):
    assert main(["local", APP, "--manifest", str(manifest_path)]) == ExitCode.OK
    yesterday = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - the CLI's clock is the real one
    record(manifest, cli_home, {}, at(yesterday, 12))
    capsys.readouterr()

    def status() -> tuple[int, int]:
        assert main(["status", APP, "--json"]) == ExitCode.OK
        document = json.loads(capsys.readouterr().out)
        return document["pending_reports"], document["waiting_approval"]

    assert main(["preview", APP, "--raw"]) == ExitCode.OK
    capsys.readouterr()
    assert status() == (2, 0)  # kept on this computer: nothing is ever sent in local mode
    assert main(["ask", APP, "--manifest", str(manifest_path)]) == ExitCode.OK
    capsys.readouterr()
    assert status() == (2, 2)
