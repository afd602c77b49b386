"""What a start costs: the modules it imports, the name read from a manifest without a TOML parser, and the cache.

Speed itself is measured by ``benchmarks/client.py``; these tests pin what makes it: a wrapped command-line tool
without consent imports next to nothing, one with consent reads its manifest and version from the start-up cache
(``apps/<app>/startup.cache``) instead of a TOML parser, the manifest validator and ``importlib.metadata``, and a
cache that is stale, damaged, truncated, oversized or hostile is ignored as if absent.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consentry
from consentry import NullRecorder, Recorder
from consentry._consent.quick import certainly_off, peek_name, peek_toml_name
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._local.startup_cache import MAX_BYTES, StartupCache
from consentry.manifest import load_manifest
from consentry.manifest.model import from_checked
from support.e2e import two_level_manifest
from support.paths import EXAMPLES, NAPARI, ROOT

APP = "startup-app"
MANIFESTS = sorted(EXAMPLES.glob("*/manifest.toml"))


# The small application, as a command-line tool without subcommands: each run is a span under its name.
COMMAND = f"""
[[commands]]
name = "{APP}"
level = "basic"
purpose = "How often the tool runs."
"""


def manifest_file(tmp_path: Path, text: str | None = None, name: str = "manifest.toml") -> Path:
    path = tmp_path / name
    text = text if text is not None else two_level_manifest(APP, "http://127.0.0.1:9", events=COMMAND)
    path.write_text(text, encoding="utf-8")
    return path


def start(path: Path, home: Path, environ: dict[str, str], **options: object) -> Recorder | NullRecorder:
    options = {"background": False, "flush_at_exit": False, "exception_hooks": False, **options}
    return consentry.init(path, home=home, environ=environ, **options)  # type: ignore[arg-type]


def consent(path: Path, home: Path, environ: dict[str, str]) -> Path:
    """Consent to the top level; return the cache file the next start with consent writes."""
    consentry.set_consent(load_manifest(path), "on", home=home, environ=environ)
    return Paths(home).app(APP).startup_cache


def write_cache(file: Path, content: object, *, crc: int | None = None, version: int = 1) -> None:
    """A cache file as the client writes it, with ``content`` (and a CRC that fits, unless ``crc`` is given)."""
    body = json.dumps(content).encode("utf-8")
    header = f"consentry-startup {version} {zlib.crc32(body) if crc is None else crc:08x}\n".encode("ascii")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(header + body)


def read_cache(file: Path) -> dict[str, object]:
    return json.loads(file.read_bytes().partition(b"\n")[2])


# ---- the application's name, read without a TOML parser ------------------------------------------------------------
@pytest.mark.parametrize("path", [*MANIFESTS, NAPARI], ids=lambda path: path.parent.name)
def test_the_scan_reads_the_name_of_every_example_manifest(path):
    text = path.read_text("utf-8")
    assert peek_toml_name(text) == tomllib.loads(text)["app"]["name"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('[app]\nname = "my-app"\n', "my-app"),
        ("[app]\r\nname = 'my-app' # a comment\r\n", "my-app"),
        (' [ app ] # the application\n\ttitle = "T"\n  name="my-app"\n', "my-app"),
        ('x = 1\n[app]\nname = "my-app"\nconsent_text = """\n[app]\nname = "other"\n"""\n', "my-app"),
    ],
    ids=["plain", "crlf-and-literal", "blanks-and-comments", "multi-line-string-after"],
)
def test_the_scan_reads_a_plain_name_line(text, name):
    assert peek_toml_name(text) == name == tomllib.loads(text)["app"]["name"]


@pytest.mark.parametrize(
    "text",
    [
        'title = """\n[app]\nname = "evil"\n"""\n[app2]\n[app]\nname = "my-app"\n',  # a multi-line string before
        "x = '''\n[app]\nname = 'evil'\n'''\n[app]\nname = 'my-app'\n",
        '[app]\nname = "my\\u002dapp"\n',  # an escape
        'app.name = "my-app"\n',  # a dotted key
        'app = { name = "my-app" }\n',  # an inline table
        '[app]\n"name" = "my-app"\n',  # a quoted key
        '["app"]\nname = "my-app"\n',
        '[app]\n[levels]\nname = "my-app"\n',  # the table ended
        '[[app]]\nname = "my-app"\n',
        '[app]\nname = "My App"\n',  # not an application name
        '[app]\nname = "my-app" x\n',
        '[app]\nname = "my-app\n',  # truncated
        '[app]\nx = \'a\u2028[app]\u2028name = "evil"\'\nname = "my-app"\n',  # U+2028 is no line end in TOML
        "",
        "[app",
    ],
)
def test_the_scan_gives_up_on_any_other_spelling(text):
    found = peek_toml_name(text)
    assert found is None or found == tomllib.loads(text)["app"]["name"]
    assert found != "evil"


TOML_PIECES = st.sampled_from(
    [
        "[app]",
        "[levels]",
        "[app.sub]",
        "[[events]]",
        'name = "my-app"',
        "name = 'other-app'",
        'title = "x"',
        'x = """',
        "x = '''",
        '"""',
        "'''",
        "x = [",
        "]",
        '"[app]",',
        "# [app]",
        'name = "a\\"b"',
        "",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOML_PIECES, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_the_scan_never_disagrees_with_the_toml_parser(pieces, newline):
    text = newline.join(pieces)
    found = peek_toml_name(text)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the scan may say anything of invalid TOML: such a manifest fails when it is parsed
    app = document.get("app")
    assert found is None or found == (app.get("name") if isinstance(app, dict) else None)


def test_a_manifest_the_scan_cannot_read_is_parsed(tmp_path):
    text = two_level_manifest(APP, "http://127.0.0.1:9").replace(f'name = "{APP}"', f'"name" = "{APP}"')
    path = manifest_file(tmp_path, text)
    assert peek_toml_name(text) is None
    assert peek_name(str(path)) == APP


def test_on_a_terminal_only_a_switch_is_certain(napari, home, environ, clock):
    assert certainly_off(NAPARI, home, environ, asking=True) is None  # not asked yet: the question is due
    consentry.set_consent(napari, "off", home=home, environ=environ, clock=clock)
    assert certainly_off(NAPARI, home, environ, asking=True) is None  # a no for an earlier version asks again
    assert certainly_off(NAPARI, home, environ) == "telemetry is off (you said no)"
    assert "DO_NOT_TRACK" in (certainly_off(NAPARI, home, {**environ, "DO_NOT_TRACK": "1"}, asking=True) or "")


# ---- what a start imports -----------------------------------------------------------------------------------------
TOOL = textwrap.dedent(
    """
    import atexit, sys
    atexit.register(lambda: print(" ".join(sorted(sys.modules))))  # runs last: after Consentry's own
    import argparse
    parser = argparse.ArgumentParser(prog="startup-app")
    parser.add_argument("--level", choices=("a", "b"))

    def main(argv=None):
        return 0 if parser.parse_args(argv) else 1

    if sys.argv[1] == "wrapped":
        import consentry
        main = consentry.cli_tool(parser, sys.argv[2], home=sys.argv[3], background=False)(main)
    raise SystemExit(main(["--level", "a"]))
    """
)


def tool_modules(*args: str, env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", TOOL, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


@pytest.fixture
def tool_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "GITHUB_ACTIONS", "DO_NOT_TRACK")}
    env["CONSENTRY_POLICY_FILE"] = str(tmp_path / "no-policy.json")
    return env


@pytest.mark.slow
def test_a_tool_without_consent_imports_only_the_quick_path(tmp_path, home, tool_env):
    path = manifest_file(tmp_path)
    unwrapped = tool_modules("as-is", env=tool_env)
    wrapped = tool_modules("wrapped", str(path), str(home), env=tool_env)
    assert wrapped - unwrapped == {
        "__future__",  # `from __future__ import annotations` is an import, of a few lines
        "consentry",
        "consentry._lazy",
        "consentry._consent",  # the private packages' __init__ modules: a docstring each
        "consentry._consent.quick",
        "consentry._local",
        "consentry._local.paths",  # the names of the files, without pathlib or dataclasses
        "consentry._where",  # a relative manifest path found from the calling package: os and sys only
        "consentry._cli_tool",
        "consentry._cli_tool.wrap",
        "consentry._record",
        "consentry._record.null",
    }
    assert list(home.iterdir()) == []


@pytest.mark.slow
def test_a_tool_with_consent_reads_its_manifest_and_version_from_the_cache(tmp_path, home, tool_env):
    path = manifest_file(tmp_path)
    file = consent(path, home, tool_env)
    first = tool_modules("wrapped", str(path), str(home), env=tool_env)
    assert {"tomllib", "consentry.manifest.parse", "importlib.metadata"} <= first  # the first start works it out
    assert file.exists()
    again = tool_modules("wrapped", str(path), str(home), env=tool_env)
    assert "consentry._record.recorder" in again  # recording
    heavy = {
        "tomllib",
        "consentry.manifest.parse",
        "consentry.wire.codec",
        "consentry._consent.asking",
        "consentry._send.reports",
        "consentry._local.counts",
        "consentry.transport",
        "consentry._send.upload",
        "importlib.metadata",
        "sqlite3",
        "socket",
        "ssl",
        "http.client",
        "urllib.request",
        "email",
        "logging",
        "platform",
    }
    assert again & heavy == set()
    assert Paths(home).app(APP).journal.exists()  # the run was recorded: its span is in the journal


# ---- the start-up cache ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [*MANIFESTS, NAPARI], ids=lambda path: path.parent.name)
def test_a_validated_manifest_is_built_again_from_its_document(path):
    manifest = load_manifest(path)
    again = from_checked(json.loads(json.dumps(manifest.to_document())), manifest.source)
    assert again == manifest
    assert again.consent_version == manifest.consent_version


def test_the_cache_is_written_only_once_recording_is_allowed(tmp_path, home, environ):
    path = manifest_file(tmp_path)
    assert isinstance(start(path, home, environ), NullRecorder)
    assert list(home.iterdir()) == []
    file = consent(path, home, environ)
    assert not file.exists()
    recorder = start(path, home, environ)
    assert isinstance(recorder, Recorder)
    assert recorder.manifest == load_manifest(path)
    cached = read_cache(file)
    assert cached["manifest"]["text"] == path.read_text("utf-8")  # type: ignore[index]
    assert cached["version"]["value"] == "unknown"  # type: ignore[index] # the application is not installed


def test_a_start_with_an_unchanged_manifest_reads_it_from_the_cache_and_writes_nothing(tmp_path, home, environ):
    path = manifest_file(tmp_path)
    file = consent(path, home, environ)
    start(path, home, environ).close()
    written = file.read_bytes(), file.stat().st_mtime_ns
    cache = StartupCache.open(path, home, environ)
    assert cache.manifest(path) == load_manifest(path)
    assert cache.version(APP) == "unknown"
    start(path, home, environ).close()
    assert (file.read_bytes(), file.stat().st_mtime_ns) == written


def test_a_changed_manifest_is_read_again_even_with_the_same_size_and_time(tmp_path, home, environ):
    path = manifest_file(tmp_path)
    file = consent(path, home, environ)
    start(path, home, environ).close()
    stat = path.stat()
    text = path.read_text("utf-8").replace('name = "file.open"', 'name = "file.opEn"')
    assert len(text) == stat.st_size
    path.write_text(text, "utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    recorder = start(path, home, environ)
    assert isinstance(recorder, NullRecorder)  # it collects more now: consent is asked again
    consent(path, home, environ)
    recorder = start(path, home, environ)
    assert recorder.manifest == load_manifest(path)
    assert "file.opEn" in recorder.manifest.events
    assert read_cache(file)["manifest"]["text"] == text  # type: ignore[index]


def test_the_version_is_looked_up_again_when_its_distribution_changes(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "startup_app-1.2.3.dist-info").mkdir(parents=True)
    (site / "startup_app-1.2.3.dist-info" / "METADATA").write_text("Name: startup-app\nVersion: 1.2.3\n", "utf-8")
    monkeypatch.syspath_prepend(str(site))
    file = tmp_path / "startup.cache"
    cache = StartupCache(file)
    assert cache.version(APP) == "1.2.3"
    write_cache(file, cache._content)
    assert StartupCache(file, read_cache(file)).version(APP) == "1.2.3"
    (site / "startup_app-1.2.3.dist-info").rename(site / "startup_app-1.2.4.dist-info")
    (site / "startup_app-1.2.4.dist-info" / "METADATA").write_text("Name: startup-app\nVersion: 1.2.4\n", "utf-8")
    assert StartupCache(file, read_cache(file)).version(APP) == "1.2.4"


@pytest.mark.parametrize(
    "change",
    [
        {"checked": 0},  # looked up long ago
        {"checked": 4e9},  # in the future
        {"checked": "today"},
        {"distribution": "another-app"},
        {"where": []},
        {"where": [[3, None]]},  # a number for a folder (a file descriptor to os.stat)
        {"where": "everywhere"},
        {"value": 1.0},
    ],
    ids=repr,
)
def test_a_version_entry_that_does_not_hold_is_looked_up_again(tmp_path, change):
    file = tmp_path / "startup.cache"
    cache = StartupCache(file)
    cache.version(APP)
    entry = {**cache._content["version"], "value": "9.9.9"}  # type: ignore[dict-item]
    assert StartupCache(file, {"version": entry}).version(APP) == "9.9.9"  # the entry holds as it is
    assert StartupCache(file, {"version": {**entry, **change}}).version(APP) == "unknown"


def _good_cache(tmp_path: Path, home: Path, environ: dict[str, str]) -> tuple[Path, Path]:
    path = manifest_file(tmp_path)
    file = consent(path, home, environ)
    start(path, home, environ).close()
    assert file.exists()
    return path, file


def _damaged(kind: str, good: bytes) -> bytes:
    header, _, body = good.partition(b"\n")
    if kind == "empty":
        return b""
    if kind.startswith("truncated"):
        return good[: int(len(good) * float(kind.split("-")[1]))]
    if kind == "flipped-byte":
        return header + b"\n" + body[:100] + bytes([body[100] ^ 0x20]) + body[101:]
    if kind == "random":
        return random.Random(12).randbytes(len(good))
    if kind == "other-format":
        return header.replace(b"startup 1 ", b"startup 2 ") + b"\n" + body
    if kind == "no-header":
        return body
    if kind == "oversized":
        return header + b"\n" + body + b" " * (MAX_BYTES + 1)
    raise AssertionError(kind)


DAMAGE = [
    "empty",
    "truncated-0.01",
    "truncated-0.5",
    "truncated-0.99",
    "flipped-byte",
    "random",
    "other-format",
    "no-header",
    "oversized",
]


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_cache_is_ignored_and_replaced(tmp_path, home, environ, kind):
    path, file = _good_cache(tmp_path, home, environ)
    good = file.read_bytes()
    file.write_bytes(_damaged(kind, good))
    recorder = start(path, home, environ)
    assert isinstance(recorder, Recorder)
    assert recorder.manifest == load_manifest(path)
    assert read_cache(file)["manifest"] == json.loads(good.partition(b"\n")[2])["manifest"]  # written again, whole


def _hostile_documents(document: dict) -> dict[str, object]:
    levels = list(document["levels"].items())
    return {
        "not-a-table": [document],
        "no-levels": {**document, "levels": {}},
        "none-not-first": {**document, "levels": dict(reversed(levels))},
        "only-none": {**document, "levels": dict(levels[:1])},
        "level-a-string": {**document, "levels": {**document["levels"], levels[1][0]: "basic"}},
        "event-at-unknown-level": {**document, "events": [{**document["events"][0], "level": "everything"}]},
        "event-at-none": {**document, "events": [{**document["events"][0], "level": "none"}]},
        "name-a-number": {**document, "app": {**document["app"], "name": 7}},
        "flag-a-string": {
            **document,
            "levels": {**document["levels"], levels[1][0]: {**levels[1][1], "activity": "yes"}},
        },
        "unknown-policy": {**document, "plugins": {**document["plugins"], "policy": "all"}},
        "params-a-list": {**document, "commands": [{"name": "c", "level": levels[1][0], "purpose": "p", "params": []}]},
        "missing-key": {key: value for key, value in document.items() if key != "commands"},
    }


@pytest.mark.parametrize(
    "kind",
    [
        "not-a-table",
        "no-levels",
        "none-not-first",
        "only-none",
        "level-a-string",
        "event-at-unknown-level",
        "event-at-none",
        "name-a-number",
        "flag-a-string",
        "unknown-policy",
        "params-a-list",
        "missing-key",
    ],
)
def test_a_cache_of_another_shape_is_ignored_and_replaced(tmp_path, home, environ, kind):
    path, file = _good_cache(tmp_path, home, environ)
    good = read_cache(file)
    hostile = _hostile_documents(good["manifest"]["document"])[kind]  # type: ignore[index]
    write_cache(file, {**good, "manifest": {**good["manifest"], "document": hostile}})  # type: ignore[dict-item]
    recorder = start(path, home, environ)
    assert isinstance(recorder, Recorder)
    assert recorder.manifest == load_manifest(path)
    assert read_cache(file) == good


@pytest.mark.parametrize(
    "content",
    [
        b"consentry-startup 1 00000000\n" + b"[" * 200_000 + b"]" * 200_000,  # nested past the recursion limit
        b"consentry-startup 1 ffffffff\n{}",
        "consentry-startup 1 \u00e9\n{}".encode(),
        b"\xff\xfe\x00consentry",
    ],
    ids=["deep", "bad-crc", "not-ascii", "binary"],
)
def test_a_hostile_cache_file_is_ignored(tmp_path, home, environ, content):
    path, file = _good_cache(tmp_path, home, environ)
    if content.startswith(b"consentry-startup 1 00000000"):
        body = content.partition(b"\n")[2]
        content = f"consentry-startup 1 {zlib.crc32(body):08x}\n".encode() + body  # a CRC that fits
    file.write_bytes(content)
    recorder = start(path, home, environ)
    assert isinstance(recorder, Recorder)
    assert recorder.manifest == load_manifest(path)


def test_a_cache_for_another_application_is_not_used(tmp_path, home, environ):
    path, file = _good_cache(tmp_path, home, environ)
    good = read_cache(file)
    document = good["manifest"]["document"]  # type: ignore[index]
    other = {**document, "app": {**document["app"], "name": "other-app"}}
    write_cache(file, {**good, "manifest": {**good["manifest"], "document": other}})  # type: ignore[dict-item]
    cache = StartupCache.open(path, home, environ)
    assert cache.manifest(path) == load_manifest(path)
    assert cache._learnt  # read and validated again


def test_a_cache_text_with_a_lone_surrogate_matches_no_file(tmp_path, home, environ):
    path, file = _good_cache(tmp_path, home, environ)
    good = read_cache(file)
    write_cache(file, {**good, "manifest": {**good["manifest"], "text": "\ud800"}})  # type: ignore[dict-item]
    cache = StartupCache.open(path, home, environ)
    assert cache.manifest(path) == load_manifest(path)
    assert cache._learnt  # read and validated again


def test_a_cache_that_is_a_folder_or_cannot_be_written_changes_nothing(tmp_path, home, environ):
    path = manifest_file(tmp_path)
    file = consent(path, home, environ)
    file.mkdir()
    (file / "x").write_text("x", "utf-8")
    recorder = start(path, home, environ)
    assert isinstance(recorder, Recorder)
    assert recorder.manifest == load_manifest(path)
    assert file.is_dir()


def test_a_manifest_that_cannot_be_read_is_an_error_as_before(tmp_path, home, environ, swallowed_errors):
    path = manifest_file(tmp_path)
    consent(path, home, environ)
    start(path, home, environ).close()
    path.write_bytes(b"\xff\xfe not UTF-8")
    assert isinstance(start(path, home, environ), NullRecorder)
    assert "not UTF-8" in str(swallowed_errors.take())
    path.unlink()
    with pytest.warns(UserWarning, match="no manifest file") as warned:  # the author's to fix: said, not swallowed
        assert isinstance(start(path, home, environ), NullRecorder)
    assert len(warned) == 1
    assert swallowed_errors.take() == []


def test_purge_deletes_the_cache(tmp_path, home, environ):
    path, file = _good_cache(tmp_path, home, environ)
    AppSession.open(load_manifest(path), home=home, environ=environ).purge()
    assert not file.exists()


def test_the_repository_has_no_cache_file_spelled_elsewhere():
    # paths.py is the one place that spells client file names.
    sources = (ROOT / "client" / "src" / "consentry").rglob("*.py")
    spelled = [path.name for path in sources if '"startup.cache"' in path.read_text("utf-8")]
    assert spelled == ["paths.py"]
