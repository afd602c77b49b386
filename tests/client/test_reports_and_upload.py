"""From stored days to reports on disk, and from disk to the server: retries, back-off, approval, history."""

from __future__ import annotations

import copy
import datetime
import email.utils
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import consentry
import consentry.testing
import consentry.transport
from consentry import Manifest
from consentry._local.bookkeeping import load_state
from consentry._local.counts import DayMeta, DayRecord
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._record.journal import Batch
from consentry._send.outbox import MAX_HISTORY_BYTES, HistoryEntry, Outbox
from consentry._send.reports import build_reports, reporter_id
from consentry._send.upload import upload_pending
from consentry.manifest import parse_manifest
from consentry.testing import MemoryTransport
from consentry.transport import HttpTransport, Response, TransportError
from consentry.wire import Activity, DataCategory, Plugin, decode

DAY = datetime.date(2026, 11, 18)
ONE_DAY = datetime.timedelta(days=1)
ADD_IMAGE = "napari:layer:add_image"
BASIC_SYSTEM = {"os": "linux", "os_version": "debian-12", "arch": "x86_64", "python": "3.11", "installer": "pip"}
MIDDLE_SYSTEM = {"cpus": "3-4", "memory": "8-16GB", "gpu": "nvidia"}


def _record(counters=None, *, system=None, dependencies=None, plugins=None, day=DAY) -> DayRecord:
    meta = DayMeta("0.5.6", dict(system or {}), dict(dependencies or {}), dict(plugins or {}))
    return DayRecord(day, meta, dict(counters or {}))


def _full_record() -> DayRecord:
    return _record(
        {
            ("event", ADD_IMAGE): 4,
            ("runs", ""): 2,
            ("active_minutes", ""): 37,
            ("exception", "ValueError"): 1,
            ("data", '["image","ndarray","uint16",3,"LARGE"]'): 2,
            ("plugin", json.dumps(["napari-blobs", "detect", "full"])): 3,
        },
        system={**BASIC_SYSTEM, **MIDDLE_SYSTEM},
        dependencies={"numpy": "2.1.0"},
        plugins={"napari-blobs": "0.3.1"},
    )


# ---- build_reports -----------------------------------------------------------------------------------------------
def test_one_report_per_consented_level_with_exactly_that_levels_data(napari):
    basic, middle, full = build_reports(napari, "full", _full_record(), reporter="a" * 32, first_report=True)
    assert [r.level for r in (basic, middle, full)] == ["basic", "middle", "full"]
    for report in (basic, middle, full):
        assert (report.app, report.app_version, report.days) == ("napari-like", "0.5.6", (DAY,))
        assert (report.reporter, report.first_report) == ("a" * 32, True)
        assert report.consent_version == napari.consent_version

    assert basic.system == BASIC_SYSTEM
    assert basic.activity == {DAY: Activity(2, 30)}  # active time in 10-minute steps
    assert (basic.dependencies, basic.counts, basic.exceptions, basic.plugins, basic.data) == ({}, {}, {}, (), ())

    assert middle.system == MIDDLE_SYSTEM
    assert middle.dependencies == {"numpy": "2.1.0"}
    assert middle.plugins == (Plugin("napari-blobs", "0.3.1", {}),)
    assert (middle.counts, middle.activity, middle.exceptions, middle.data) == ({}, {}, {}, ())

    assert full.system == {}
    assert full.counts == {DAY: {ADD_IMAGE: 4}}
    assert full.exceptions == {DAY: {"ValueError": 1}}
    assert full.data == (DataCategory(DAY, "image", "ndarray", "uint16", 3, "LARGE", 2),)
    assert full.plugins == (Plugin("napari-blobs", "0.3.1", {DAY: {"detect": 3}}),)
    assert (full.dependencies, full.activity) == ({}, {})


def test_reports_stop_at_the_consented_level(napari):
    reports = build_reports(napari, "basic", _full_record(), reporter="a" * 32, first_report=False)
    assert [r.level for r in reports] == ["basic"]
    assert reports[0].system == BASIC_SYSTEM
    assert reports[0].counts == {}


def test_the_lowest_level_always_reports(napari):
    reports = build_reports(napari, "full", _record(), reporter="b" * 32, first_report=False)
    assert [r.level for r in reports] == ["basic"]
    assert reports[0].days == (DAY,)


def test_higher_levels_report_only_with_content(napari):
    only_events = build_reports(
        napari, "full", _record({("event", ADD_IMAGE): 1}), reporter="c" * 32, first_report=False
    )
    assert [r.level for r in only_events] == ["basic", "full"]
    only_middle = build_reports(napari, "full", _record(system=MIDDLE_SYSTEM), reporter="c" * 32, first_report=False)
    assert [r.level for r in only_middle] == ["basic", "middle"]


def test_counters_of_unknown_or_zero_events_are_left_out(napari):
    record = _record(
        {("event", ADD_IMAGE): 0, ("event", "napari:removed_event"): 5, ("event", "napari:layer:add_labels"): 2}
    )
    [_, full] = build_reports(napari, "full", record, reporter="d" * 32, first_report=False)
    assert full.counts == {DAY: {"napari:layer:add_labels": 2}}


# ---- reporter id -------------------------------------------------------------------------------------------------
SECRET = bytes(range(32))


def test_reporter_id_is_32_hex_characters():
    rid = reporter_id(SECRET, "napari-like", DAY)
    assert len(rid) == 32
    assert int(rid, 16) >= 0
    assert rid == rid.lower()


def test_reporter_id_is_stable_within_an_iso_week():
    monday, sunday = datetime.date(2026, 11, 16), datetime.date(2026, 11, 22)
    ids = {reporter_id(SECRET, "napari-like", monday + datetime.timedelta(days=n)) for n in range(7)}
    assert ids == {reporter_id(SECRET, "napari-like", sunday)}


def test_reporter_id_is_stable_across_new_year_within_an_iso_week():
    assert reporter_id(SECRET, "napari-like", datetime.date(2026, 12, 31)) == reporter_id(
        SECRET, "napari-like", datetime.date(2027, 1, 3)
    )


def test_reporter_id_differs_across_weeks_apps_and_secrets():
    sunday, monday = datetime.date(2026, 11, 22), datetime.date(2026, 11, 23)
    ids = {
        reporter_id(SECRET, "napari-like", sunday),
        reporter_id(SECRET, "napari-like", monday),
        reporter_id(SECRET, "stripepy-like", sunday),
        reporter_id(bytes(32), "napari-like", sunday),
        reporter_id(SECRET, "napari-like", sunday - datetime.timedelta(weeks=52)),
    }
    assert len(ids) == 5


# ---- preparing reports -------------------------------------------------------------------------------------------
@dataclass
class App:
    """One application with consent given, used over several days."""

    manifest: Manifest
    home: Path
    environ: dict[str, str]
    clock: consentry.testing.FixedClock
    events: list[str] = field(default_factory=list)

    def session(self) -> AppSession:
        return AppSession.open(self.manifest, home=self.home, environ=self.environ, clock=self.clock)

    def use(self, n: int = 1) -> None:
        recorder = consentry.init(
            self.manifest,
            app_version="0.5.6",
            home=self.home,
            environ=self.environ,
            clock=self.clock,
            background=False,
            flush_at_exit=False,
        )
        assert isinstance(recorder, consentry.Recorder)
        for event in self.events:
            recorder.count(event, n)
        recorder.flush()

    def next_day(self) -> None:
        self.clock.advance(ONE_DAY)

    @property
    def outbox(self) -> Outbox:
        return self.session().outbox

    def upload(self, transport, *, force: bool = False):
        session = self.session()
        return upload_pending(self.manifest, session.decision, session.paths, transport, self.clock, force=force)


@pytest.fixture
def app(napari, home, environ, clock) -> App:
    """napari-like, consent 'on' at 'full'."""
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    return App(napari, home, environ, clock, events=[ADD_IMAGE])


def _pending_bytes(app: App) -> dict[str, bytes]:
    return {report.path.name: report.read() for report in app.outbox.pending()}


def test_prepare_reports_writes_completed_days_only(app):
    app.use(3)
    assert app.session().prepare_reports() == []  # today is not over
    assert app.outbox.pending() == []
    app.next_day()
    app.use(5)
    written = app.session().prepare_reports()
    assert sorted(p.name for p in written) == [
        "2026-11-18.basic.json",
        "2026-11-18.full.json",
        "2026-11-18.middle.json",
    ]
    full = decode(app.session().paths.pending.joinpath("2026-11-18.full.json").read_bytes())
    assert full.total(ADD_IMAGE) == 3
    assert app.session().prepare_reports() == []  # a day is reported once


def test_first_report_is_true_only_on_the_first_day(app):
    app.use()
    app.next_day()
    app.use()
    app.session().prepare_reports()
    app.next_day()
    app.session().prepare_reports()
    reports = {name: decode(data) for name, data in _pending_bytes(app).items()}
    assert {name: r.first_report for name, r in reports.items() if r.level == "basic"} == {
        "2026-11-18.basic.json": True,
        "2026-11-19.basic.json": False,
    }
    assert all(r.first_report for r in reports.values() if r.days == (DAY,))


def test_a_late_flush_into_the_first_day_keeps_its_reports_first_report(app):
    # A process started on the install's first day is still running after midnight ...
    long_running = consentry.init(
        app.manifest,
        app_version="0.5.6",
        home=app.home,
        environ=app.environ,
        clock=app.clock,
        background=False,
        flush_at_exit=False,
    )
    long_running.count(ADD_IMAGE, 2)
    app.use()
    app.next_day()
    app.session().prepare_reports()  # e.g. `consentry preview` on the next morning: nothing is sent yet
    assert decode(_pending_bytes(app)["2026-11-18.basic.json"]).first_report is True
    # ... and flushes the first day's counts late: the rollover flush, which the background thread makes at
    # midnight (simulated here, the clock being fixed), gives them to the day that ended.
    long_running.flush(day=datetime.date(2026, 11, 18))
    long_running.close()
    app.session().prepare_reports()  # the first day is reported again, with the late counts
    reports = {name: decode(data) for name, data in _pending_bytes(app).items()}
    assert reports["2026-11-18.full.json"].total(ADD_IMAGE) == 3
    assert load_state(app.session().paths).sent_ever is False
    # Nothing was ever sent, so the install's first report must still say so.
    assert reports["2026-11-18.basic.json"].first_report is True


def test_pending_reports_carry_this_weeks_reporter_id(app):
    app.use()
    app.next_day()
    app.session().prepare_reports()
    session = app.session()
    secret = bytes.fromhex(session.paths.secret.read_text().strip())
    expected = reporter_id(secret, "napari-like", DAY)
    assert {decode(data).reporter for data in _pending_bytes(app).values()} == {expected}


def test_reports_older_than_14_days_are_dropped_when_preparing(app):
    app.use()
    app.next_day()
    app.session().prepare_reports()
    assert len(app.outbox.pending()) == 3
    app.clock.advance(datetime.timedelta(days=14))  # the report of DAY is 15 days old
    app.session().prepare_reports()
    assert app.outbox.pending() == []
    assert load_state(app.session().paths).drops == {"expired or over the queue bound": 3}


def test_outbox_trim_drops_reports_older_than_14_days(napari, home):
    outbox = Outbox(Paths(home).app(napari.name))
    today = datetime.date(2026, 11, 30)
    for age in (20, 15, 14, 1):
        day = today - datetime.timedelta(days=age)
        [report] = build_reports(napari, "basic", _record(day=day), reporter="e" * 32, first_report=False)
        outbox.put(report, epoch=None)
    dropped = outbox.trim(today)
    assert sorted(r.day for r in dropped) == [datetime.date(2026, 11, 10), datetime.date(2026, 11, 15)]
    assert [r.day for r in outbox.pending()] == [datetime.date(2026, 11, 16), datetime.date(2026, 11, 29)]


# ---- upload_pending with the in-memory transport -----------------------------------------------------------------
@pytest.fixture
def ready(app) -> App:
    """One completed day of napari-like at 'full': three pending reports, the day after."""
    app.use(2)
    app.next_day()
    app.session().prepare_reports()
    assert len(app.outbox.pending()) == 3
    return app


def test_a_2xx_answer_removes_the_report_and_records_the_exact_bytes(ready):
    before = _pending_bytes(ready)
    transport = MemoryTransport(default=Response(202, {}, b'{"status":"accepted"}'))
    result = ready.upload(transport)
    assert (result.sent, result.dropped, result.kept) == (3, 0, 0)
    assert ready.outbox.pending() == []
    history = ready.outbox.history()
    assert [(e.status, e.outcome) for e in history] == [(202, "sent")] * 3
    assert sorted(e.report.encode("utf-8") for e in history) == sorted(before.values())
    state = load_state(ready.session().paths)
    assert state.sent_ever is True
    assert state.last_success == ready.clock.now()
    assert state.retry_after is None


def test_the_request_is_gzip_of_the_pending_bytes_sent_to_the_levels_url(ready):
    before = _pending_bytes(ready)
    transport = MemoryTransport()
    ready.upload(transport)
    assert len(transport.requests) == 3
    for request in transport.requests:
        data = gzip.decompress(request.body)
        [(name, _)] = [(name, b) for name, b in before.items() if b == data]
        level = name.split(".")[1]
        assert request.url == ready.manifest.level(level).endpoint
        assert request.url == f"https://{level}.telemetry.napari-like.example.org/v1/reports/{level}"
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.headers["Content-Type"] == "application/json"
        assert 0 < request.timeout <= 10
    assert sorted(gzip.decompress(r.body) for r in transport.requests) == sorted(before.values())


def test_a_400_answer_drops_the_report_and_records_the_servers_reason(ready):
    body = json.dumps({"error": {"code": "unknown_event", "field": "counts", "message": "not in the manifest"}})
    transport = MemoryTransport(default=Response(400, {"Content-Type": "application/json"}, body.encode()))
    result = ready.upload(transport)
    assert (result.sent, result.dropped, result.kept) == (0, 3, 0)
    assert ready.outbox.pending() == []
    history = ready.outbox.history()
    assert [e.status for e in history] == [400] * 3
    assert {e.outcome for e in history} == {"refused: unknown_event: not in the manifest"}
    assert any("unknown_event: not in the manifest" in message for message in result.messages)
    assert load_state(ready.session().paths).drops == {"refused by the server (HTTP 400)": 3}


def test_a_400_answer_without_json_keeps_its_text_as_the_reason(ready):
    transport = MemoryTransport(default=Response(413, {}, b"payload too large"))
    result = ready.upload(transport)
    assert result.dropped == 3
    assert {e.outcome for e in ready.outbox.history()} == {"refused: payload too large"}


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_a_retryable_answer_keeps_the_report_and_backs_off(ready, status):
    before = _pending_bytes(ready)
    transport = MemoryTransport(default=Response(status))
    result = ready.upload(transport)
    assert len(transport.requests) == 1  # the first failure stops the run
    assert (result.sent, result.dropped, result.kept) == (0, 0, 3)
    assert _pending_bytes(ready) == before
    assert ready.outbox.history() == []
    now = ready.clock.now()
    assert result.retry_after is not None
    assert now + datetime.timedelta(seconds=60) <= result.retry_after <= now + datetime.timedelta(seconds=72)
    state = load_state(ready.session().paths)
    assert state.retry_after == result.retry_after
    assert state.failures == 1


def _retry_after(ready: App, value: str) -> datetime.timedelta:
    transport = MemoryTransport(default=Response(429, {"Retry-After": value}))
    result = ready.upload(transport)
    assert result.retry_after is not None
    assert result.kept == 3
    return result.retry_after - ready.clock.now()


def test_retry_after_seconds_is_honoured(ready):
    assert _retry_after(ready, "120") == datetime.timedelta(seconds=120)


def test_retry_after_header_name_is_case_insensitive(ready):
    transport = MemoryTransport(default=Response(503, {"retry-after": "600"}))
    result = ready.upload(transport)
    assert result.retry_after == ready.clock.now() + datetime.timedelta(seconds=600)


def test_a_huge_retry_after_is_clamped_to_a_day(ready):
    assert _retry_after(ready, "99999999") == datetime.timedelta(days=1)


def test_a_tiny_retry_after_is_raised_to_a_minute(ready):
    assert _retry_after(ready, "0") == datetime.timedelta(minutes=1)


def test_retry_after_as_an_http_date(ready):
    when = ready.clock.now() + datetime.timedelta(minutes=5)
    assert _retry_after(ready, email.utils.format_datetime(when, usegmt=True)) == datetime.timedelta(minutes=5)


def test_retry_after_as_an_http_date_far_away_is_clamped(ready):
    when = ready.clock.now() + datetime.timedelta(days=365)
    assert _retry_after(ready, email.utils.format_datetime(when, usegmt=True)) == datetime.timedelta(days=1)


def test_a_transport_error_keeps_the_report(ready):
    before = _pending_bytes(ready)
    transport = MemoryTransport(default=TransportError("connection refused"))
    result = ready.upload(transport)
    assert (result.sent, result.dropped, result.kept) == (0, 0, 3)
    assert _pending_bytes(ready) == before
    assert ready.outbox.history() == []
    assert result.retry_after is not None
    assert any("connection refused" in message for message in result.messages)


def test_a_later_call_before_retry_after_sends_nothing_unless_forced(ready):
    failing = MemoryTransport(default=Response(429, {"Retry-After": "3600"}))
    ready.upload(failing)
    ready.clock.advance(datetime.timedelta(minutes=30))
    waiting = MemoryTransport()
    result = ready.upload(waiting)
    assert waiting.requests == []
    assert result.kept == 3
    assert result.retry_after == ready.clock.now() + datetime.timedelta(minutes=30)
    forced = ready.upload(waiting, force=True)
    assert forced.sent == 3
    assert len(waiting.requests) == 3


def test_uploads_resume_after_retry_after(ready):
    ready.upload(MemoryTransport(default=Response(503, {"Retry-After": "120"})))
    ready.clock.advance(datetime.timedelta(seconds=121))
    transport = MemoryTransport()
    assert ready.upload(transport).sent == 3
    assert load_state(ready.session().paths).failures == 0


def test_a_failure_after_a_success_keeps_only_the_rest(ready):
    transport = MemoryTransport([Response(200), Response(500)])
    result = ready.upload(transport)
    assert (result.sent, result.kept) == (1, 2)
    assert len(ready.outbox.pending()) == 2
    assert len(ready.outbox.history()) == 1


def test_ask_mode_sends_only_approved_reports(app):
    consentry.set_consent(app.manifest, "ask", "full", home=app.home, environ=app.environ, clock=app.clock)
    app.use()
    app.next_day()
    app.session().prepare_reports()
    transport = MemoryTransport()
    result = app.upload(transport)
    assert transport.requests == []
    assert (result.sent, result.waiting_approval) == (0, 3)
    outbox = app.outbox
    basic = next(r for r in outbox.pending() if r.level == "basic")
    approved_bytes = basic.read()
    outbox.approve(basic)
    result = app.upload(transport)
    assert (result.sent, result.waiting_approval) == (1, 2)
    [request] = transport.requests
    assert request.url == app.manifest.level("basic").endpoint
    assert gzip.decompress(request.body) == approved_bytes
    assert sorted(r.level for r in app.outbox.pending()) == ["full", "middle"]


def test_a_changed_report_needs_a_new_approval(app):
    consentry.set_consent(app.manifest, "ask", "full", home=app.home, environ=app.environ, clock=app.clock)
    app.use()
    app.next_day()
    app.session().prepare_reports()
    outbox = app.outbox
    for report in outbox.pending():
        outbox.approve(report)
    late = Batch(app.session().decision.epoch or "", counters={(DAY, "event", ADD_IMAGE): 4})
    app.session().store.add(late)  # a late flush for the reported day
    app.session().prepare_reports()
    approved = {r.level: r.approved for r in app.outbox.pending()}
    assert approved["full"] is False


def test_local_mode_sends_nothing(app):
    consentry.set_consent(app.manifest, "local", "full", home=app.home, environ=app.environ, clock=app.clock)
    app.use()
    app.next_day()
    app.session().prepare_reports()
    before = _pending_bytes(app)
    assert len(before) == 3
    transport = MemoryTransport()
    result = app.upload(transport, force=True)
    assert transport.requests == []
    assert result.sent == 0
    assert _pending_bytes(app) == before


def test_a_kill_switch_sends_nothing(ready):
    ready.environ["DO_NOT_TRACK"] = "1"
    transport = MemoryTransport()
    result = ready.upload(transport, force=True)
    assert transport.requests == []
    assert result.sent == 0
    assert len(ready.outbox.pending()) == 3


def test_ci_sends_nothing(ready):
    ready.environ["GITHUB_ACTIONS"] = "true"
    transport = MemoryTransport()
    ready.upload(transport, force=True)
    assert transport.requests == []
    assert len(ready.outbox.pending()) == 3


def test_ci_sends_nothing_even_approved_reports_in_ask_mode(app):
    consentry.set_consent(app.manifest, "ask", "full", home=app.home, environ=app.environ, clock=app.clock)
    app.use()
    app.next_day()
    app.session().prepare_reports()
    outbox = app.outbox
    for report in outbox.pending():
        outbox.approve(report)
    app.environ["CI"] = "true"
    decision = app.session().decision
    assert decision.send is False
    assert "disabled in CI" in decision.reason
    transport = MemoryTransport()
    result = app.upload(transport, force=True)
    assert transport.requests == []
    assert result.sent == 0
    assert len(app.outbox.pending()) == 3


def test_the_history_file_stays_bounded(napari, home):
    outbox = Outbox(Paths(home).app(napari.name))
    report = json.dumps({"padding": "x" * 100_000})
    for n in range(60):
        outbox.record(HistoryEntry(f"2026-11-18T12:00:{n:02d}+00:00", "https://example.org/", 202, "sent", report))
        assert outbox.paths.history.stat().st_size <= MAX_HISTORY_BYTES
    history = outbox.history()
    assert 0 < len(history) < 60
    assert history[-1].time == "2026-11-18T12:00:59+00:00"
    assert all(entry.report == report for entry in history)
    times = [entry.time for entry in history]
    assert times == sorted(times)  # the oldest entries went first


# ---- a real HTTP server on 127.0.0.1 -----------------------------------------------------------------------------
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere/v1/reports/basic")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = b'{"status":"stored"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = _handle  # noqa: N815 - the name http.server dispatches to
    do_GET = _handle  # noqa: N815
    do_PUT = _handle  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the signature of the base class
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server(monkeypatch) -> Iterator[_Server]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _local_stripepy(stripepy: Manifest, endpoint: str) -> Manifest:
    document = copy.deepcopy(stripepy.to_document())
    document["levels"]["basic"]["endpoint"] = endpoint  # type: ignore[index]
    return parse_manifest(document, "<local stripepy>")


def _one_pending_report(manifest: Manifest, home: Path, environ: dict[str, str], clock) -> AppSession:
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        manifest, app_version="1.2.0", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    with recorder.command("call", format="cool", resolution=10000):
        pass
    recorder.flush()
    clock.advance(ONE_DAY)
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    assert len(session.prepare_reports()) == 1
    return session


def test_http_transport_posts_the_gzipped_pending_bytes(server, stripepy, home, environ, clock):
    manifest = _local_stripepy(stripepy, f"{server.base}/v1/reports/basic")
    session = _one_pending_report(manifest, home, environ, clock)
    [pending] = session.outbox.pending()
    data = pending.read()
    result = session.upload(HttpTransport())
    assert (result.sent, result.kept, result.dropped) == (1, 0, 0)
    [received] = server.received
    assert (received.method, received.path) == ("POST", "/v1/reports/basic")
    assert received.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(received.body) == data
    assert decode(gzip.decompress(received.body)).commands[0].name == "call"
    assert session.outbox.pending() == []
    [entry] = session.outbox.history()
    assert (entry.status, entry.url, entry.report.encode()) == (200, f"{server.base}/v1/reports/basic", data)


def test_http_transport_does_not_follow_a_redirect(server, stripepy, home, environ, clock):
    manifest = _local_stripepy(stripepy, f"{server.base}/moved/v1/reports/basic")
    session = _one_pending_report(manifest, home, environ, clock)
    [pending] = session.outbox.pending()
    data = pending.read()
    result = session.upload(HttpTransport())
    assert (result.sent, result.kept, result.dropped) == (0, 1, 0)
    assert [r.path for r in server.received] == ["/moved/v1/reports/basic"]  # /elsewhere received nothing
    assert [p.read() for p in session.outbox.pending()] == [data]
    assert session.outbox.history() == []
    assert result.retry_after is not None
    assert any("302" in message for message in result.messages)


def test_http_transport_raises_transport_error_when_nothing_listens(server):
    url = f"{server.base}/v1/reports/basic"
    server.shutdown()
    server.server_close()
    with pytest.raises(TransportError):
        HttpTransport().send(consentry.transport.Request(url, b"{}", {}, timeout=2.0))
