"""consentry.testing, as an application author uses it."""

from __future__ import annotations

import pytest

from consentry.testing import Sandbox, sandbox
from support.paths import NAPARI, STRIPEPY

ADD_IMAGE = "napari:layer:add_image"


def test_this_action_counted_x():
    with sandbox() as box:
        telemetry = box.recorder(NAPARI, level="full")
        telemetry.count(ADD_IMAGE)
        telemetry.count(ADD_IMAGE, 2)
        box.assert_counted(telemetry, ADD_IMAGE, 3)
        with pytest.raises(AssertionError, match="counted 3 time"):
            box.assert_counted(telemetry, ADD_IMAGE, 4)


def test_counts_add_up_across_days_and_reports_are_what_was_counted():
    with sandbox() as box:
        telemetry = box.recorder(NAPARI, level="full")
        telemetry.count(ADD_IMAGE, 2)
        telemetry.flush()
        box.next_day()
        telemetry.count(ADD_IMAGE, 5)
        assert box.counted(telemetry, ADD_IMAGE) == 7
        [full] = [report for report in box.reports(NAPARI) if report.level == "full"]
        assert full.total(ADD_IMAGE) == 2  # only the completed day is reported


def test_nothing_written_or_sent_without_consent():
    with sandbox() as box:
        telemetry = box.init(NAPARI)
        telemetry.count(ADD_IMAGE)
        telemetry.flush()
        box.assert_nothing_written()
        box.assert_nothing_sent()
        assert not telemetry.enabled


def test_sent_reports_are_decoded_from_what_went_through_the_transport():
    with sandbox() as box:
        telemetry = box.recorder(STRIPEPY)
        with telemetry.command("call", format="hic", resolution="10000", nproc=8):
            pass
        telemetry.flush()
        box.next_day()
        result = box.upload(STRIPEPY)
        assert result.sent == 1
        [report] = box.sent()
        [command] = report.commands
        assert (command.name, command.params["format"], command.params["nproc"]) == ("call", "hic", True)
        with pytest.raises(AssertionError, match="1 request"):
            box.assert_nothing_sent()


def test_the_sandbox_is_removed_and_never_uses_the_real_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path / "real-home"))
    monkeypatch.setenv("CI", "true")  # the sandbox does not read the process's environment
    with sandbox() as box:
        assert isinstance(box, Sandbox)
        box.recorder(NAPARI, level="basic").flush()
        home = box.home
        assert any(home.rglob("store.sqlite3"))
    assert not home.exists()
    assert not (tmp_path / "real-home").exists()


def test_assert_nothing_written_names_what_was_written():
    with sandbox() as box:
        box.recorder(NAPARI, level="basic").flush()
        with pytest.raises(AssertionError, match=r"consent\.json"):
            box.assert_nothing_written()
