"""StripePy 1.3.0 over OTLP, as its source sends it, through the real OpenTelemetry SDK.

The spans are recorded by the OpenTelemetry SDK exactly as ``stripepy-hic`` 1.3.0 records them
(``src/stripepy/cli/telemetry.py`` and the ``_configure_telemetry`` of each subcommand): the resource built as
its ``_generate_telemetry_resource`` builds it; one span per run, started with ``record_exception=False,
set_status_on_exception=False`` and named after the subcommand; a plot's span renamed ``plot <type>`` with the
type as typed (``update_name``); parameters as ``params.<name>`` attributes, booleans as booleans (``False``
when an option is off), ``None`` as StripePy passes it when a value is unknown; status OK or ERROR, an error
recorded with its message and stack trace blanked. The SDK's own encoder makes the protobuf body.

The manifest is ``seed_formats/stripepy.toml``: what StripePy 1.3.0 sends, declared.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx2
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import OsResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from starlette.testclient import TestClient

import consentry
from consentry.manifest import Manifest, load_manifest
from consentry_server.app import create_app
from consentry_server.config import Settings
from consentry_server.ingest.otlp.resource import bin_arch, bin_os
from consentry_server.publish.release import publish_as_configured
from consentry_server.storage import SQLiteStorage
from consentry_server.storage.public import PublicStore
from support.store import recorded_day

STRIPEPY = Path(__file__).parent / "seed_formats" / "stripepy.toml"
VERSION = "1.3.0"
PROTOBUF = "application/x-protobuf"

Run = Callable[[Span], int]
#: ``_collect_deps``: the requirements of stripepy-hic 1.3.0 without markers, the OpenTelemetry packages left out.
DEPENDENCIES = {
    "h5py": "3.14.0",
    "hictkpy": "1.3.0",
    "numpy": "2.3.1",
    "packaging": "25.0",
    "pandas": "2.3.1",
    "scipy": "1.16.0",
    "structlog": "25.4.0",
}
DECLARED = ("h5py", "hictkpy", "numpy", "pandas", "scipy")


# ---- StripePy 1.3.0's telemetry, on the real SDK ------------------------------------------------------------------
def stripepy_resource() -> Resource:
    """``_generate_telemetry_resource``: the OS detector's resource, the dependencies', then StripePy's own."""
    os_resource = OsResourceDetector(raise_on_error=False).detect()
    dependencies = Resource.create({f"dependency.{name}.version": version for name, version in DEPENDENCIES.items()})
    own = Resource.create(
        {
            "host.arch": platform.machine(),
            "process.runtime.name": platform.python_implementation(),
            "process.runtime.version": platform.python_version(),
            "process.runtime.description": platform.python_compiler(),
            "service.name": "stripepy",
            "service.version": VERSION,
        }
    )
    return os_resource.merge(dependencies).merge(own)


def record(subcommand: str, run: Run) -> ReadableSpan:
    """One run of ``stripepy <subcommand>``: ``telemetry.setup``, the subcommand, ``set_success``/``set_exception``.

    ``run`` sets the span's attributes as the subcommand does and returns its exit code, or raises.
    """
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=stripepy_resource())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("stripepy")
    with tracer.start_span(subcommand, record_exception=False, set_status_on_exception=False) as span:
        try:
            code = run(span)
            span.set_status(Status(StatusCode.OK if code == 0 else StatusCode.ERROR))
        except Exception as error:  # noqa: BLE001 - StripePy's main catches it and returns 1
            span.set_status(Status(StatusCode.ERROR))
            span.record_exception(error, attributes={"exception.message": "", "exception.stacktrace": ""})
    provider.shutdown()
    [finished] = memory.get_finished_spans()
    return finished


def call(*, low_memory: bool = False, constrain_heights: bool = False, nproc: int = 8) -> Run:
    """``stripepy call ENCFF993FGR.hic 10000 -p 8``: call.py's ``_configure_telemetry``."""

    def run(span: Span) -> int:
        normalization = "NONE"  # None becomes "NONE" before it is compared with None: always false in 1.3.0
        span.set_attributes(
            {
                "params.contact_map_format": "hic",
                "params.contact_map_resolution": 10000,
                "params.contact_map_raw_interactions": normalization is None,
                "params.genomic_belt": 5_000_000,
                "params.low_memory": low_memory,
                "params.max_width": 100_000,
                "params.glob_pers_min": 0.04,
                "params.constrain_heights": constrain_heights,
                "params.k": 3,
                "params.loc_pers_min": 0.33,
                "params.loc_trend_min": 0.25,
                "params.nproc": nproc,
            }
        )
        return 0

    return run


def download(name: str | None, dataset_format: str | None = None, *, list_only: bool = False) -> Run:
    """``stripepy download [NAME] [--list-only]``: both of download.py's telemetry functions."""

    def run(span: Span) -> int:
        span.set_attributes(
            {
                "params.list_only": list_only,
                "params.unit_test": False,
                "params.end2end_test": False,
                "params.dataset_name": "unknown" if name is None else name,
            }
        )
        if list_only:
            return 0
        span.set_attributes(
            {
                "params.dataset_name": name or "4DNFI9GMP2J8",
                "params.dataset_format": "unknown" if dataset_format is None else dataset_format,
            }
        )
        return 0

    return run


def view(span: Span) -> int:
    """``stripepy view result.hdf5``: view.py's two telemetry functions."""
    span.set_attribute("params.relative_change_threshold", 5.0)
    span.set_attribute("params.coefficient_of_variation_threshold", math.nextafter(math.inf, 0))
    span.set_attributes(
        {"params.columns": ["chrom", "left_bound", "right_bound"], "params.result_file_format_version": 3}
    )
    return 0


def plot(plot_type: str, *, highlight_seeds: bool | None = False, output_exists: bool = False) -> Run:
    """``stripepy plot <plot_type> ...``: plot.py's ``run`` up to its ``_configure_telemetry``."""

    def run(span: Span) -> int:
        if output_exists:  # checked before the span is renamed: it stays "plot"
            raise FileExistsError('Refusing to overwrite file "/home/alice/plots/cm.png". Pass --force to overwrite.')
        span.update_name(f"plot {plot_type}")
        if plot_type != "cm":
            return 0
        span.set_attribute("params.highlight_seeds", highlight_seeds)  # type: ignore[arg-type] - None as StripePy
        span.set_attribute("params.highlight_stripes", False)  # noqa: FBT003 - as StripePy calls it
        span.set_attribute("params.relative_change_threshold", 0)
        span.set_attribute("params.coefficient_of_variation_threshold", math.nextafter(math.inf, 0))
        span.set_attribute("params.result_file_format_version", "not-applicable")
        return 0

    return run


def body(spans: Sequence[ReadableSpan]) -> bytes:
    """The body StripePy's ``OTLPSpanExporter(compression=Compression.Gzip)`` posts: the SDK's protobuf, gzipped."""
    return gzip.compress(encode_spans(spans).SerializeToString())


# ---- the server -------------------------------------------------------------------------------------------------
@pytest.fixture
def stripepy_130() -> Manifest:
    return load_manifest(STRIPEPY)


@pytest.fixture
def server(settings: Settings, storage: SQLiteStorage, stripepy_130: Manifest) -> Iterator[TestClient]:
    assert storage.register_manifest(stripepy_130)
    with TestClient(create_app(settings, storage)) as client:
        yield client


def export(client: TestClient, spans: Sequence[ReadableSpan]) -> httpx2.Response:
    """Post ``spans`` as StripePy's exporter does."""
    headers = {"content-type": PROTOBUF, "content-encoding": "gzip"}
    return client.post("/v1/traces", content=body(spans), headers=headers)


def partial(response: httpx2.Response) -> ExportTracePartialSuccess:
    """The ``partial_success`` of a 200 answer (empty when everything was accepted)."""
    assert response.status_code == 200, response.text
    return ExportTraceServiceResponse.FromString(response.content).partial_success


def stored_commands(storage: SQLiteStorage) -> dict[tuple[str, tuple[tuple[str, object], ...], int, object], int]:
    """The stored runs of ``stripepy``: (command, params, exit code, exception) -> runs."""
    found: dict[tuple[str, tuple[tuple[str, object], ...], int, object], int] = {}
    for row in storage.export("stripepy"):
        for counter in row["counters"]:  # type: ignore[attr-defined]
            if counter["kind"] == "command":
                name, params, _, exit_code, exception = json.loads(counter["name"])
                key = (name, tuple(tuple(pair) for pair in params), exit_code, exception)
                found[key] = found.get(key, 0) + counter["n"]
    return found


# ---- plot spans and booleans ------------------------------------------------------------------------------------
NUMBERS = ("genomic_belt", "glob_pers_min", "k", "loc_pers_min", "loc_trend_min", "max_width")


def call_params(low_memory: str, constrain_heights: str) -> tuple[tuple[str, object], ...]:
    declared = {
        "constrain_heights": constrain_heights,
        "contact_map_format": "hic",
        "contact_map_raw_interactions": "false",
        "contact_map_resolution": "10000",
        "low_memory": low_memory,
        "nproc": "8",
        **dict.fromkeys(NUMBERS, True),  # declared without values: only "given"
    }
    return tuple(sorted(declared.items()))


def download_params(**values: object) -> tuple[tuple[str, object], ...]:
    declared = {"dataset_format": False, "dataset_name": False, "end2end_test": False, "list_only": False}
    return tuple(sorted({**declared, "unit_test": "false", **values}.items()))


def cm_params(highlight_seeds: object) -> tuple[tuple[str, object], ...]:
    return (
        ("coefficient_of_variation_threshold", True),
        ("highlight_seeds", highlight_seeds),
        ("highlight_stripes", "false"),
        ("relative_change_threshold", True),
        ("result_file_format_version", "not-applicable"),
    )


def test_every_stripepy_run_is_stored_under_its_declared_command(server, storage):
    runs = [
        record("call", call()),
        record("call", call(low_memory=True, constrain_heights=True)),
        record("download", download(None, list_only=True)),
        record("download", download("ENCFF993FGR", "hic")),
        record("view", view),
        record("plot", plot("cm", highlight_seeds=True)),
        *(record("plot", plot(kind)) for kind in ("contact-map", "pd", "pseudodistribution", "hist", "stripe-hist")),
        record("plot", plot("cm", output_exists=True)),
    ]
    assert [span.name for span in runs[5:]] == [
        "plot cm",
        "plot contact-map",
        "plot pd",
        "plot pseudodistribution",
        "plot hist",
        "plot stripe-hist",
        "plot",
    ]

    for run in runs:  # StripePy exports the one span of each run when it exits
        assert not partial(export(server, [run])).rejected_spans

    assert stored_commands(storage) == {
        ("call", call_params("false", "false"), 0, None): 1,
        ("call", call_params("true", "true"), 0, None): 1,
        ("download", download_params(list_only="true", dataset_name="unknown", end2end_test="false"), 0, None): 1,
        (
            "download",
            download_params(list_only="false", dataset_name="ENCFF993FGR", dataset_format="hic", end2end_test="false"),
            0,
            None,
        ): 1,
        (
            "view",
            (
                ("coefficient_of_variation_threshold", True),
                ("columns", True),
                ("relative_change_threshold", True),
                ("result_file_format_version", "3"),
            ),
            0,
            None,
        ): 1,
        ("plot/cm", cm_params("true"), 0, None): 1,
        ("plot/contact-map", (), 0, None): 1,
        ("plot/pd", (), 0, None): 1,
        ("plot/pseudodistribution", (), 0, None): 1,
        ("plot/hist", (), 0, None): 1,
        ("plot/stripe-hist", (), 0, None): 1,
        ("plot", (), 1, "FileExistsError"): 1,
    }
    rows = list(storage.export("stripepy"))
    python = ".".join(platform.python_version_tuple()[:2])
    system = {
        "system.os": bin_os(platform.system()),
        "system.arch": bin_arch(platform.machine()),
        "system.python": python,
    }
    dependencies = {f"dependency.{name}": version for name, version in DEPENDENCIES.items() if name in DECLARED}
    assert {json.dumps(row["facts"]) for row in rows} == {
        json.dumps(
            {**dependencies, **system, "system.python_impl": "cpython", "first_report": "unknown"}, sort_keys=True
        )
    }
    assert {row["app_version"] for row in rows} == {VERSION}
    stored = json.dumps(rows)
    assert "/home/alice" not in stored
    assert "Refusing" not in stored


def test_new_installs_of_stripepy_are_unknown_not_one_per_export_nor_zero(server, storage, settings):
    # StripePy's exports carry no install id and no first-run signal: three runs of one user are three exports.
    for _ in range(3):
        assert not partial(export(server, [record("call", call())])).rejected_spans
    storage.aggregate()
    rows = [row for row in storage.aggregates().installs if row.app == "stripepy"]
    assert {row.period for row in rows} == {"day", "week", "month"}
    assert {(row.period, row.reporters) for row in rows} == {("day", 3), ("week", 3), ("month", 3)}  # runs
    assert {row.new_installs for row in rows} == {None}  # unknown: neither 3 (one per export) nor 0
    publish_as_configured(storage, settings)
    published = [row for row in PublicStore(settings.public_path).published_tables().installs if row.app == "stripepy"]
    assert {(row.period, row.reporters, row.new_installs) for row in published} == {
        ("day", 3, None),
        ("week", 3, None),
        ("month", 3, None),
    }


def test_false_true_and_none_are_three_different_things(server, storage):
    runs = [record("plot", plot("cm", highlight_seeds=value)) for value in (False, True, None)]
    # The SDK sends False as a boolean and None as an attribute without a value.
    seeds = encode_spans(runs[:1] + runs[2:]).resource_spans[0].scope_spans[0].spans
    assert [span.attributes[0].value.WhichOneof("value") for span in seeds] == ["bool_value", None]

    assert not partial(export(server, runs)).rejected_spans

    assert stored_commands(storage) == {
        ("plot/cm", cm_params("false"), 0, None): 1,
        ("plot/cm", cm_params("true"), 0, None): 1,
        ("plot/cm", cm_params(False), 0, None): 1,  # noqa: FBT003 - no value: not given
    }


def native_parser() -> argparse.ArgumentParser:
    """A command line shaped as StripePy's (``cli/setup.py``): flags that are ``False`` unless given, nested plots."""
    parser = argparse.ArgumentParser(prog="stripepy")
    commands = parser.add_subparsers(dest="subcommand", required=True)
    call = commands.add_parser("call")
    call.add_argument("contact_map")
    call.add_argument("contact_map_resolution", type=int)
    call.add_argument("-p", "--nproc", type=int, default=1)
    call.add_argument("--low-memory", action="store_true", default=False)
    call.add_argument("--constrain-heights", action="store_true", default=False)
    plots = commands.add_parser("plot").add_subparsers(dest="plot_type", required=True)
    plots.add_parser("contact-map", aliases=["cm"]).add_argument("--force", action="store_true", default=False)
    return parser


def test_the_client_and_the_server_store_the_same_run_alike(server, storage, stripepy_130, home, environ, clock):
    """``stripepy call x.hic 10000 -p 8``, once through ``consentry.cli_tool`` and once as StripePy's span."""
    consentry.set_consent(stripepy_130, "on", "basic", home=home, environ=environ, clock=clock)
    parser = native_parser()
    options = {"home": home, "environ": environ, "clock": clock, "background": False, "flush_at_exit": False}

    @consentry.cli_tool(parser, stripepy_130, **options)
    def main(argv: list[str]) -> int:
        parser.parse_args(argv)
        return 0

    assert main(["call", "/home/alice/x.hic", "10000", "-p", "8"]) == 0
    assert main(["plot", "contact-map", "--force"]) == 0
    main.recorder.flush()
    day = recorded_day(home, "stripepy", clock.today())
    assert day is not None
    native = {json.loads(key)[0]: json.loads(key)[1] for (kind, key) in day.counters if kind == "command"}

    def otlp_call(span: Span) -> int:
        flags = {"params.low_memory": False, "params.constrain_heights": False}
        span.set_attributes({"params.contact_map_resolution": 10000, "params.nproc": 8, **flags})
        return 0

    assert not partial(export(server, [record("call", otlp_call), record("plot", plot("contact-map"))])).rejected_spans
    stored = {name: [list(pair) for pair in params] for name, params, _, _ in stored_commands(storage)}

    assert stored == native
    assert dict(native["call"])["low_memory"] == "false"
    assert native["plot/contact-map"] == []


# ---- hostile, malformed, truncated and oversized input ------------------------------------------------------
NAMES = {
    "plot  cm": "plot/cm",  # words, however many spaces apart
    " plot cm ": "plot/cm",
    "plot\tcm": "plot/cm",
    "plot/cm": "plot/cm",  # the manifest's own spelling
    "plot heatmap": None,  # a type the manifest does not declare
    "plot cm extra": None,
    "plot cm; DROP TABLE reports; --": None,
    "plot\x00cm": None,
    "\u202eplot cm": None,
    "plot/../call": None,
    "plot " + "cm " * 300_000: None,  # 900 kB of name, within the size limits
    "   ": "span_without_name",
}


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_span_name_is_a_declared_command_or_refused(server, storage, name):
    def run(span: Span) -> int:
        span.update_name(name)
        return 0

    answer = partial(export(server, [record("call", call()), record("plot", run)]))

    expected = NAMES[name]
    stored = {command for command, _, _, _ in stored_commands(storage)}
    if expected is not None and expected.startswith("plot"):
        assert not answer.rejected_spans
        assert stored == {"call", expected}
    else:
        assert answer.rejected_spans == 1
        assert answer.error_message.startswith(f"1 refused: 1 {expected or 'command_not_in_manifest'} (")
        assert len(answer.error_message) <= 1000
        assert stored == {"call"}
    assert "DROP" not in json.dumps(list(storage.export("stripepy")))


def test_a_refused_plot_type_says_which_command_was_looked_for(server):
    answer = partial(export(server, [record("call", call()), record("plot", plot("heatmap"))]))
    assert "declares no command 'plot/heatmap' (span 'plot heatmap')" in answer.error_message


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, object]:
    document = json_format.MessageToDict(encode_spans(spans))
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                span.pop("traceId"), span.pop("spanId")  # base64 here; OTLP/JSON wants hex, and they are never read
    return document


def test_json_booleans_are_booleans_and_anything_else_is_refused(server, storage, dump):
    document = otlp_json([record("plot", plot("cm"))])
    post = lambda doc: server.post("/v1/traces", content=json.dumps(doc), headers={"content-type": "application/json"})  # noqa: E731
    assert post(document).status_code == 200
    assert stored_commands(storage) == {("plot/cm", cm_params("false"), 0, None): 1}
    before = dump()

    attributes = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]  # type: ignore[index]
    [seeds] = [attribute for attribute in attributes if attribute["key"] == "params.highlight_seeds"]
    for malformed in ("false", 0, [], {"boolValue": False}):
        seeds["value"] = {"boolValue": malformed}
        response = post(document)
        assert response.status_code == 400, malformed
        assert response.json()["message"].startswith("invalid_otlp")
    assert dump() == before


@pytest.mark.parametrize("cut", [1, 7, 100])
def test_a_truncated_export_is_refused_and_changes_nothing(server, dump, cut):
    before = dump()
    whole = encode_spans([record("call", call()), record("plot", plot("cm"))]).SerializeToString()
    for content, encoding, code in (
        (whole[:-cut], None, "invalid_otlp"),
        (gzip.compress(whole)[:-cut], "gzip", "bad_gzip"),
    ):
        headers = {"content-type": PROTOBUF, **({"content-encoding": encoding} if encoding else {})}
        response = server.post("/v1/traces", content=content, headers=headers)
        assert response.status_code == 400
        assert code in response.content.decode("utf-8", "replace")
    assert dump() == before
