"""Asking for consent: the data a consent screen needs, and the terminal prompt on a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

import pytest

import consentry
from consentry._consent.answers import load_consent
from consentry._consent.asking import ask_in_terminal, consent_request
from consentry._local.paths import Paths
from consentry.wire import decode

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")


def test_a_consent_screen_gets_the_text_the_levels_and_an_exact_example_per_level(napari, home, environ, clock):
    request = consent_request(napari, home=home, environ=environ, clock=clock)
    assert request.text == napari.consent_text
    assert [choice.name for choice in request.levels] == ["none", "basic", "middle", "full"]
    assert [choice.host for choice in request.levels][1:] == [level.host for level in napari.levels[1:]]
    assert request.levels[0].example is None
    for choice in request.levels[1:]:
        assert choice.example is not None
        report = decode(choice.example)  # a real report, valid under the wire schema
        assert report.level == choice.name
        assert report.days == (clock.today(),)
    full = decode(request.levels[3].example or b"")
    assert set(full.counts[clock.today()]) == {name for name, spec in napari.events.items() if spec.level == "full"}
    assert [decode(data).level for data in request.examples_upto("middle")] == ["basic", "middle"]
    assert request.needs_answer
    assert not home.exists() or not any(home.iterdir()), "asking must not write anything"


def test_the_answer_is_recorded_and_not_asked_again(napari, home, environ, clock):
    request = consent_request(napari, home=home, environ=environ, clock=clock)
    consent = request.answer("on", "middle")
    assert (consent.mode, consent.level) == ("on", "middle")
    assert load_consent(Paths(home).app(napari.name)) == consent
    assert not consent_request(napari, home=home, environ=environ, clock=clock).needs_answer


@contextmanager
def terminal(replies: str) -> Iterator[tuple[TextIO, TextIO, list[str]]]:
    """A real pseudo-terminal: the code under test reads ``replies`` from it and what it writes is collected."""
    controller, device = os.openpty()
    reader = os.fdopen(os.dup(device), "r", encoding="utf-8", buffering=1)
    writer = os.fdopen(os.dup(device), "w", encoding="utf-8", buffering=1)
    shown: list[str] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.append(chunk.decode("utf-8", "replace"))

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    os.write(controller, replies.encode())
    try:
        yield reader, writer, shown
    finally:
        reader.close()
        writer.close()
        os.close(device)
        os.close(controller)
        thread.join(5)


@pytest.mark.parametrize(
    ("reply", "mode", "level"),
    [
        ("y\n", "on", "basic"),
        ("full\n", "on", "full"),
        ("l\n", "local", "basic"),
        ("n\n", "off", "none"),
        ("\n", "off", "none"),
    ],
    ids=["yes", "a level", "local", "no", "enter means no"],
)
def test_the_terminal_prompt_records_the_answer(napari, home, environ, clock, reply, mode, level):
    with terminal(reply) as (stdin, stdout, shown):
        consent = ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=stdin, stdout=stdout)
    assert consent is not None
    assert (consent.mode, consent.level) == (mode, level)
    assert napari.consent_text.strip().splitlines()[0] in "".join(shown)
    assert consent.asked_version == napari.consent_version
    # Asked at most once per consent version: the next call does not ask.
    with terminal("y\n") as (stdin, stdout, _):
        assert ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=stdin, stdout=stdout) is None


def test_show_prints_the_example_reports_before_asking_again(napari, home, environ, clock):
    with terminal("s\nn\n") as (stdin, stdout, shown):
        consent = ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=stdin, stdout=stdout)
    assert consent is not None
    assert consent.mode == "off"
    assert '"level": "full"' in "".join(shown).replace("\r\n", "\n")


def test_end_of_input_means_no(napari, home, environ, clock):
    with terminal("\x04") as (stdin, stdout, _):  # Ctrl-D at the start of a line: end of input
        consent = ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=stdin, stdout=stdout)
    assert consent is not None
    assert consent.mode == "off"


def test_a_terminal_that_hangs_up_is_not_an_error(napari, home, environ, clock):
    controller, device = os.openpty()
    reader = os.fdopen(os.dup(device), "r", encoding="utf-8")
    writer = os.fdopen(os.dup(device), "w", encoding="utf-8")
    os.close(controller)  # the terminal is gone: writing and reading fail
    try:
        assert ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=reader, stdout=writer) is None
    finally:
        reader.close()
        os.close(device)
        with suppress(OSError):
            writer.close()
    assert not (Paths(home).app(napari.name).consent).exists()


@pytest.mark.parametrize(
    "extra",
    [{"CI": "true"}, {"GITHUB_ACTIONS": "true"}, {"DO_NOT_TRACK": "1"}, {"NAPARI_LIKE_NO_TELEMETRY": "1"}],
    ids=["CI", "GitHub Actions", "DO_NOT_TRACK", "the app's own switch"],
)
def test_never_asked_in_ci_or_under_a_kill_switch(napari, home, environ, clock, extra):
    with terminal("y\n") as (stdin, stdout, shown):
        answer = ask_in_terminal(
            napari, home=home, environ={**environ, **extra}, clock=clock, stdin=stdin, stdout=stdout
        )
    assert answer is None
    assert "usage statistics" not in "".join(shown)  # only the terminal's echo of what was typed
    assert not (Paths(home).app(napari.name).consent).exists()


def test_not_asked_without_a_terminal(napari, home, environ, clock):
    out = io.StringIO()
    assert (
        ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=io.StringIO("y\n"), stdout=out) is None
    )
    assert out.getvalue() == ""


def test_init_with_prompt_asks_first_then_records(napari, home, environ, clock):
    with terminal("full\n") as (stdin, stdout, _):
        # init's prompt uses the process's standard streams; the function is what it calls.
        consent = ask_in_terminal(napari, home=home, environ=environ, clock=clock, stdin=stdin, stdout=stdout)
    assert consent is not None
    recorder = consentry.init(
        napari, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False, prompt=True
    )
    assert recorder.enabled  # already answered: not asked again, and recording


def test_answers_through_the_request_are_in_the_real_home(napari, tmp_path: Path, environ, clock):
    home = tmp_path / "elsewhere"
    consent_request(napari, home=home, environ=environ, clock=clock).answer("local", "basic")
    assert (home / "apps" / napari.name / "consent.json").exists()
