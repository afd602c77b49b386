"""The documented public usage of the client, type-checked (never run) by tests/test_typing.py.

Each function is one way docs/embedding.md shows of using Consentry; ``assert_type`` pins what a user's type checker
infers, so a change of a public signature shows here before it reaches an application's CI.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import assert_type

import consentry
from consentry.manifest import CommandSpec, Level
from consentry.testing import FixedClock, MemoryTransport, sandbox
from consentry.transport import HttpTransport, Request, Response, Transport
from consentry.wire import Report, decode, encode


def embed_in_an_application(manifest_path: Path) -> None:
    telemetry = consentry.init(manifest_path, app_version="1.2.0")
    assert_type(telemetry, consentry.Recorder | consentry.NullRecorder)
    telemetry.count("file.open")
    telemetry.count("file.open", 3)
    with telemetry.command("segment", model="fast"):
        pass
    telemetry.data("image", [[0, 1], [2, 3]])
    telemetry.mark_active()
    assert_type(telemetry.drops, dict[str, int])
    telemetry.close()


def ask_for_consent(manifest_path: Path) -> None:
    manifest = consentry.load_manifest(manifest_path)
    assert_type(manifest, consentry.Manifest)
    assert_type(manifest.levels[0], Level)
    request = consentry.consent_request(manifest)
    assert_type(request.needs_answer, bool)
    assert_type(request.examples_upto("basic"), list[bytes])
    consentry.set_consent(manifest, "on", level="basic", valid_for=datetime.timedelta(days=365))
    consentry.set_consent(manifest.name, "off")


def count_a_plugin(manifest_path: Path, plugin_path: Path) -> None:
    telemetry = consentry.init(manifest_path)
    plugin_manifest = consentry.load_plugin_manifest(plugin_path)
    assert_type(plugin_manifest, consentry.PluginManifest)
    consentry.set_plugin_consent(plugin_manifest.host, plugin_manifest.name, allow=True)
    telemetry.plugin(plugin_manifest, "0.3.1").count("run")


def wrap_a_command_line_tool(manifest_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="stripepy-like")
    parser.add_argument("--resolution", type=int)

    @consentry.cli_tool(parser, manifest_path)
    def main(argv: list[str] | None = None) -> int:
        return 0 if parser.parse_args(argv).resolution else 1

    assert_type(main(["--resolution", "10000"]), int)


def report_usage_events_like_slicer(manifest_path: Path) -> None:
    events = consentry.UsageEvents(consentry.init(manifest_path))
    events.log_usage_event("SegmentEditor", "Threshold")


def handle_a_bad_manifest(manifest_path: Path) -> str | None:
    try:
        consentry.load_manifest(manifest_path)
    except consentry.ManifestError as error:
        return str(error)
    return None


def test_an_application(manifest_path: Path) -> None:
    with sandbox() as box:
        telemetry = box.recorder(manifest_path, level="full")
        telemetry.count("file.open")
        box.assert_counted(telemetry, "file.open", 1)
        assert_type(box.sent(), list[Report])
    clock = FixedClock(datetime.datetime(2026, 6, 3, tzinfo=datetime.timezone.utc))
    clock.advance(datetime.timedelta(days=1))
    transport: Transport = MemoryTransport([Response(200, {}, b'{"status":"stored"}')])
    consentry.init(manifest_path, clock=clock, transport=transport, background=False)


def send_and_read_reports(report: Report) -> None:
    body = encode(report)
    assert_type(body, bytes)
    assert_type(decode(body), Report)
    response = HttpTransport().send(Request("https://telemetry.example.org/v1/reports/basic", body, {}, timeout=5.0))
    assert_type(response.status, int)


def describe_commands(manifest: consentry.Manifest) -> list[str]:
    specs: list[CommandSpec] = list(manifest.commands.values())
    return [spec.name for spec in specs]
