"""Settings from a TOML file and the environment; the ``consentry-server`` command line."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from consentry_server.cli import main
from consentry_server.config import ConfigError, Settings, load_settings
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import store_report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "consentry_examples"
APP_FILES = [EXAMPLES / name / "manifest.toml" for name in ("napari_like", "stripepy_like", "slicer_like")]
FILE_TOKEN, ENV_TOKEN = "from-the-file", "from-env"
PLUGIN_FILES = sorted(EXAMPLES.glob("napari_like/plugins/*.toml")) + sorted(
    EXAMPLES.glob("slicer_like/extensions/*.toml")
)


# ---- settings --------------------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text, "utf-8")
    return path


def test_settings_from_a_toml_file(tmp_path):
    path = write(
        tmp_path,
        f'database = "sqlite:///{tmp_path}/db.sqlite3"\n'
        "reporter_threshold = 25\nport = 9000\nmax_body_bytes = 4096\n"
        f'admin_token = "{FILE_TOKEN}"\nsite_title = "Our numbers"\n',
    )
    settings = load_settings(path, environ={})
    assert settings.database == f"sqlite:///{tmp_path}/db.sqlite3"
    assert settings.sqlite_path == tmp_path / "db.sqlite3"
    assert settings.public_path == tmp_path / "public.sqlite3"
    assert (settings.reporter_threshold, settings.port, settings.max_body_bytes) == (25, 9000, 4096)
    assert settings.admin_token == FILE_TOKEN
    assert settings.site_title == "Our numbers"
    assert settings.raw_retention_days == Settings().raw_retention_days  # untouched settings keep their default


def test_no_file_gives_the_defaults(tmp_path):
    assert load_settings(None, environ={}) == Settings()
    assert load_settings(write(tmp_path, ""), environ={}) == Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reporter_treshold = 5\n", "unknown setting 'reporter_treshold'"),
        ("[server]\nport = 80\n", "unknown setting 'server'"),
        ('reporter_threshold = "5"\n', "reporter_threshold must be an integer"),
        ("port = 80.0\n", "port must be an integer"),
        ("max_body_bytes = true\n", "max_body_bytes must be an integer"),
        ("site_title = 3\n", "site_title must be a string"),
        ("reporter_threshold = \n", "not valid TOML"),
        ("port = 1\nport = 2\n", "not valid TOML"),
        ("reporter_threshold = 0\n", "reporter_threshold must be between 1 and 1000000"),
        ("reporter_threshold = 1000001\n", "reporter_threshold must be between 1 and 1000000"),
        ("future_days = 3\n", "future_days"),
        ("max_report_bytes = 0\n", "max_report_bytes must be positive"),
        ("port = 70000\n", "port must be between 0 and 65535"),
        ('database = "mysql://db.example.org/consentry"\n', "database must be sqlite:///PATH or postgresql://"),
        ('database = "sqlite:///"\n', "database must be sqlite:///PATH or postgresql://"),
        ('forwarded_header = "x-real-ip"\n', "forwarded_header must be x-forwarded-for or forwarded"),
    ],
    ids=[
        "unknown_key",
        "unknown_table",
        "string_for_int",
        "float_for_int",
        "bool_for_int",
        "int_for_string",
        "invalid_toml",
        "repeated_key",
        "threshold_zero",
        "threshold_too_large",
        "future_days_out_of_range",
        "max_report_bytes_zero",
        "port_out_of_range",
        "another_database",
        "sqlite_without_path",
        "unknown_forwarded_header",
    ],
)
def test_bad_settings_are_refused_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'site_title = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


def test_the_admin_token_comes_from_the_environment(tmp_path):
    assert load_settings(None, environ={"CONSENTRY_ADMIN_TOKEN": f"  {ENV_TOKEN} \n"}).admin_token == ENV_TOKEN
    assert load_settings(None, environ={"CONSENTRY_ADMIN_TOKEN": "   "}).admin_token is None
    assert load_settings(None, environ={}).admin_token is None
    path = write(tmp_path, f'admin_token = "{FILE_TOKEN}"\n')
    assert load_settings(path, environ={"CONSENTRY_ADMIN_TOKEN": ENV_TOKEN}).admin_token == FILE_TOKEN


def test_settings_refuse_bad_values_directly():
    with pytest.raises(ConfigError, match="reporter_threshold"):
        Settings(reporter_threshold=-3)
    assert Settings().replace(port=None, reporter_threshold=4).reporter_threshold == 4


# ---- command line: help --------------------------------------------------------------------------------------
HELP = {
    (): "Run and operate a Consentry collection server",
    ("serve",): "Serve report ingest",
    ("apps",): "Register manifests",
    ("apps", "add"): "Register manifest files",
    ("apps", "list"): "List applications",
    ("aggregate",): "Recompute the day and ISO-week aggregates",
    ("publish",): "fewer than the reporter threshold",
    ("demo",): "simulated installs",
}


@pytest.mark.parametrize("command", HELP, ids=[" ".join(command) or "main" for command in HELP])
def test_help_describes_each_command(capsys, command):
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: consentry-server {' '.join(command)}".rstrip())
    assert " ".join(HELP[command].split()) in " ".join(out.split())


def test_main_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "apps", "aggregate", "publish", "demo"):
        assert f"    {command}" in out


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---- command line: apps, aggregate, publish --------------------------------------------------------------------
@pytest.fixture
def db(tmp_path) -> list[str]:
    """``--db`` and ``--public-db`` options naming databases in ``tmp_path``."""
    return ["--db", f"sqlite:///{tmp_path / 'data' / 'consentry.sqlite3'}", "--public-db", str(tmp_path / "public.db")]


def test_apps_add_registers_application_and_plugin_manifests(capsys, db, napari):
    assert main(["apps", "add", *db, *map(str, APP_FILES + PLUGIN_FILES)]) == 0
    out = capsys.readouterr().out
    assert f"application napari-like {napari.consent_version} registered" in out
    assert "plugin napari-blobs " in out
    assert "plugin TotalSegmentator " in out
    assert out.count(" registered in ") == len(APP_FILES) + len(PLUGIN_FILES)

    assert main(["apps", "add", *db, str(APP_FILES[0])]) == 0
    assert "already registered" in capsys.readouterr().out

    assert main(["apps", "list", *db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "napari-like  (1 version(s); plugins: napari-blobs, napari-tracks)",
        "slicer-like  (1 version(s); plugins: SlicerIGT, TotalSegmentator)",
        "stripepy-like  (1 version(s))",
    ]


def test_apps_add_with_an_invalid_manifest_fails_and_says_why(capsys, tmp_path, db):
    bad = tmp_path / "bad.toml"
    bad.write_text('manifest_version = 1\n[app]\nname = "Bad Name!"\n', "utf-8")
    assert main(["apps", "add", *db, str(bad), str(APP_FILES[1])]) == 1
    captured = capsys.readouterr()
    assert "consentry-server: error:" in captured.err
    assert str(bad) in captured.err
    assert "app.name" in captured.err
    assert "stripepy-like" in captured.out  # the good file after the bad one is still registered
    assert main(["apps", "list", *db]) == 0
    assert capsys.readouterr().out.splitlines() == ["stripepy-like  (1 version(s))"]


def test_a_bad_config_file_is_exit_code_2(capsys, tmp_path, db):
    config = write(tmp_path, "reporter_threshold = 0\n")
    assert main(["apps", "list", "--config", str(config), *db]) == 2
    assert str(config) in capsys.readouterr().err


def test_aggregate_then_publish_writes_the_public_store(capsys, tmp_path, db, make_report, napari):
    path = tmp_path / "data" / "consentry.sqlite3"
    storage = SQLiteStorage(path)
    try:
        storage.migrate()
        storage.register_manifest(napari)
        for reporter in range(3):
            report = make_report(reporter=reporter, system={"os": "linux"})
            store_report(storage, report, received=datetime.datetime.now(datetime.timezone.utc))
    finally:
        storage.close()

    assert main(["aggregate", *db]) == 0
    assert "aggregating: done" in capsys.readouterr().err
    assert main(["publish", *db, "--reporter-threshold", "1"]) == 0
    out = capsys.readouterr().out
    assert "published 3 install rows" in out  # day, week and month
    assert "(k = 1)" in out

    public = PublicStore(tmp_path / "public.db")
    assert public.meta()["threshold"] == "1"
    assert [app.name for app in public.apps()] == ["napari-like"]
    assert [row["reporters"] for row in public.installs("napari-like", "week")] == [3]

    assert main(["publish", *db, "--reporter-threshold", "4"]) == 0
    assert "published 0 install rows" in capsys.readouterr().out
    assert public.meta()["threshold"] == "4"
    assert public.installs("napari-like", "week") == []
