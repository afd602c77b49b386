"""Signed usage certificates: periods, the signing key, figures from a real publication, signing, the key route
and ``consentry-server certify``, checked with the client's verifier.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from consentry.cli import ExitCode
from consentry.cli import main as consentry_main
from consentry.wire import Plugin, Report
from consentry.wire.certificates import (
    NotAuthenticError,
    UnreadableCertificateError,
    parse_public_key,
    verify_certificate,
)
from consentry_server.cli import main as server_main
from consentry_server.config import Settings
from consentry_server.publish.certificates import (
    CertificateError,
    certificate_routes,
    issue_certificate,
    load_signing_key,
    parse_period,
    public_key_document,
    sign,
)
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import store_report

K = 10
Q3 = parse_period("2026-Q3")
AFTER_Q3 = datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.timezone.utc)
RECEIVED = datetime.datetime(2026, 10, 5, tzinfo=datetime.timezone.utc)
FIRST_THURSDAY = datetime.date(2026, 6, 25)  # of ISO week 26, the last week before Q3
#: Installs active per ISO week, from week 26 (Thursday 25 June) to week 40 (Thursday 1 October).
INSTALLS = {26: 50, 27: 12, 28: 13, 29: 14, 30: 15, 31: 16, 32: 17, 33: 4, 34: 19, 35: 20, 36: 21, 37: 22, 38: 23}
INSTALLS |= {39: 24, 40: 60}
NEW_WEEKS = (26, 28)  # every install active in these weeks sent its first report then
BLOBS_PER_WEEK = 11  # installs reporting napari-blobs each week (fewer when fewer installs are active)
TRACKS_PER_WEEK = 2  # napari-tracks: never enough to be published


def thursday(week: int) -> datetime.date:
    return FIRST_THURSDAY + datetime.timedelta(weeks=week - 26)


def reports(napari_consent_version: str) -> list[Report]:
    """One basic report per active install and week, and a middle one listing its plugins."""
    made = []
    for week, installs in INSTALLS.items():
        for number in range(installs):
            base = Report(
                app="napari-like",
                app_version="1.0.0",
                level="basic",
                consent_version=napari_consent_version,
                reporter=f"{week * 1000 + number:032x}",
                first_report=week in NEW_WEEKS,
                days=(thursday(week),),
            )
            plugins = []
            if number < BLOBS_PER_WEEK:
                plugins.append(Plugin("napari-blobs", "0.3.0"))
            if number < TRACKS_PER_WEEK:
                plugins.append(Plugin("napari-tracks", "1.0.0"))
            made += [base, replace(base, level="middle", plugins=tuple(plugins))]
    return made


@pytest.fixture
def certifying(settings: Settings, storage: SQLiteStorage, napari) -> Settings:
    """Settings (k = 10) whose public store holds a real publication of fifteen weeks of napari-like installs."""
    for report in reports(napari.consent_version):
        store_report(storage, report, received=RECEIVED)
    storage.aggregate()
    publish(
        storage,
        PublicStore(settings.public_path),
        threshold=K,
        now=datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc),
    )
    return replace(settings, reporter_threshold=K)


def certificate_bytes(document: dict[str, object]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def public_key(settings: Settings) -> bytes:
    document = public_key_document(settings)
    assert document is not None
    return parse_public_key(json.dumps(document))


# ---- periods ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "start", "end"),
    [
        ("2026", "2026-01-01", "2026-12-31"),
        ("2026-Q1", "2026-01-01", "2026-03-31"),
        ("2026-Q3", "2026-07-01", "2026-09-30"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2026-12", "2026-12-01", "2026-12-31"),
        ("2026-W37", "2026-09-07", "2026-09-13"),
        ("2026-W53", "2026-12-28", "2027-01-03"),
    ],
)
def test_periods_parse_to_their_first_and_last_day(label, start, end):
    period = parse_period(label)
    assert (period.label, period.start.isoformat(), period.end.isoformat()) == (label, start, end)


@pytest.mark.parametrize(
    "label",
    ["", "26", "2026-Q0", "2026-Q5", "2026-13", "2026-00", "2026-W54", "2027-W53", "2026-W00", "0000", "2026Q3"],
)
def test_malformed_or_impossible_periods_are_refused_clearly(label):
    with pytest.raises(CertificateError, match=r"not a (period|year|quarter|month|week)"):
        parse_period(label)


def test_a_period_holds_the_iso_weeks_whose_thursday_falls_in_it():
    weeks = Q3.weeks()
    assert weeks[0] == datetime.date(2026, 6, 29)  # its Thursday is 2 July
    assert weeks[-1] == datetime.date(2026, 9, 21)  # 28 September's Thursday is in October
    assert len(weeks) == 13
    year = parse_period("2026").weeks()
    assert len(year) == 53
    assert sum(len(parse_period(f"2026-Q{q}").weeks()) for q in range(1, 5)) == 53
    assert [m.month for m in Q3.months()] == [7, 8, 9]
    assert parse_period("2026-W37").months() == []
    assert parse_period("2026-W37").weeks() == [datetime.date(2026, 9, 7)]


# ---- the signing key --------------------------------------------------------------------------------------------
def test_the_key_is_created_on_first_use_private_and_then_reused(settings: Settings):
    path = settings.signing_key_path
    assert path.parent == Path(settings.database.removeprefix("sqlite:///")).parent
    assert public_key_document(settings) is None
    assert not path.exists()  # asking for the public key never creates one
    first = load_signing_key(path)
    assert first is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_signing_key(path)
    assert again is not None
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert again.public_key().public_bytes(*raw) == first.public_key().public_bytes(*raw)
    document = public_key_document(settings)
    assert document is not None
    assert document["algorithm"] == "Ed25519"
    assert len(document["key_id"]) == 16
    # The public half beside it, for a public-only server, which is the same key.
    assert json.loads(path.with_name(path.name + ".pub").read_text()) == document
    path.unlink()
    assert public_key_document(settings) == document


def test_a_raw_key_file_is_read_and_bad_key_files_are_refused(tmp_path: Path):
    raw = tmp_path / "raw.key"
    key = Ed25519PrivateKey.generate()
    raw.write_bytes(
        key.private_bytes(*(serialization.Encoding.Raw, serialization.PrivateFormat.Raw), serialization.NoEncryption())
    )
    loaded = load_signing_key(raw)
    assert loaded is not None
    assert loaded.private_bytes_raw() == key.private_bytes_raw()
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key at all")
    with pytest.raises(CertificateError, match="not an Ed25519 private key"):
        load_signing_key(garbage)
    broken_pem = tmp_path / "broken.pem"
    broken_pem.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertificateError, match="not a readable, unencrypted PEM private key"):
        load_signing_key(broken_pem)
    other = tmp_path / "ec.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(CertificateError, match="not an Ed25519 key"):
        load_signing_key(other)


# ---- figures and signature --------------------------------------------------------------------------------------
def test_a_certificate_states_the_published_figures_of_the_period(certifying: Settings):
    document = issue_certificate(certifying, app="napari-like", period=Q3, now=AFTER_Q3)
    certificate = verify_certificate(certificate_bytes(document), public_key(certifying))
    assert certificate["app"] == "napari-like"
    assert certificate["app_title"] == "Napari-like viewer"
    assert certificate["plugin"] is None
    assert certificate["period"] == {"label": "2026-Q3", "start": "2026-07-01", "end": "2026-09-30"}
    assert certificate["privacy"] == {"reporter_threshold": K, "noise": None}
    assert certificate["published_at"] == "2026-11-01T00:00:00Z"
    assert certificate["issued_at"] == "2026-11-02T09:30:00Z"
    figures = certificate["figures"]
    weekly = figures["weekly_active_installs"]
    expected = {week: n for week, n in INSTALLS.items() if 27 <= week <= 39}
    assert [row["week"] for row in weekly["by_week"]] == [f"2026-W{week}" for week in expected]
    # Week 33 had 4 installs: not published, so null, and left out of the mean; never 4.
    assert [row["installs"] for row in weekly["by_week"]] == [n if n >= K else None for n in expected.values()]
    published = [n for n in expected.values() if n >= K]
    assert weekly["peak"] == max(published) == 24  # not week 40's 60, which is in October
    assert weekly["mean"] == round(sum(published) / len(published))
    assert (weekly["weeks"], weekly["weeks_published"]) == (13, 12)
    # A month counts the largest of its weeks (reporter ids change every week).
    months = figures["monthly_active_installs"]["by_month"]
    assert months == [
        {"month": "2026-07", "installs": 16},
        {"month": "2026-08", "installs": 20},
        {"month": "2026-09", "installs": 24},
    ]
    assert figures["new_installs"] == INSTALLS[28]  # week 26's new installs were in June


def test_a_plugin_certificate_counts_the_installs_reporting_the_plugin(certifying: Settings):
    document = issue_certificate(certifying, app="napari-like", plugin="napari-blobs", period=Q3, now=AFTER_Q3)
    certificate = verify_certificate(certificate_bytes(document), public_key(certifying))
    assert certificate["plugin"] == "napari-blobs"
    figures = certificate["figures"]
    assert "new_installs" not in figures
    assert "napari-blobs" in figures["counted"]
    by_week = [row["installs"] for row in figures["weekly_active_installs"]["by_week"]]
    assert by_week == [BLOBS_PER_WEEK] * 6 + [None] + [BLOBS_PER_WEEK] * 6


def test_no_certified_number_rests_on_fewer_installs_than_the_threshold(certifying: Settings):
    for plugin in (None, "napari-blobs"):
        for label in ("2026-Q3", "2026-07", "2026-08", "2026-W34"):
            document = issue_certificate(
                certifying, app="napari-like", plugin=plugin, period=parse_period(label), now=AFTER_Q3
            )
            figures = document["certificate"]["figures"]  # type: ignore[index]
            weekly = figures["weekly_active_installs"]
            numbers = [weekly["mean"], weekly["peak"]]
            numbers += [row["installs"] for row in weekly["by_week"]]
            numbers += [row["installs"] for row in figures["monthly_active_installs"]["by_month"]]
            assert all(number is None or number >= K for number in numbers), (plugin, label, numbers)
            assert figures.get("new_installs") in (None, 0) or figures["new_installs"] >= K


def test_every_single_byte_change_makes_a_certificate_invalid_or_unreadable(certifying: Settings):
    data = certificate_bytes(
        issue_certificate(certifying, app="napari-like", period=parse_period("2026-08"), now=AFTER_Q3)
    )
    key = public_key(certifying)
    verify_certificate(data, key)
    outcomes = {"invalid": 0, "unreadable": 0}
    for position in range(len(data)):
        for flip in (0x01, 0x20):
            changed = bytearray(data)
            changed[position] ^= flip
            try:
                verify_certificate(bytes(changed), key)
            except NotAuthenticError:
                outcomes["invalid"] += 1
            except UnreadableCertificateError:
                outcomes["unreadable"] += 1
            else:
                pytest.fail(f"changing byte {position} ({data[position : position + 1]!r}) went unnoticed")
    assert outcomes["invalid"] > 100
    assert outcomes["unreadable"] > 100


def test_a_certificate_signed_by_another_key_is_not_authentic(certifying: Settings):
    document = issue_certificate(certifying, app="napari-like", period=Q3, now=AFTER_Q3)
    certificate = document["certificate"]
    assert isinstance(certificate, dict)
    forged = sign(certificate, Ed25519PrivateKey.generate())  # the same content, even the key id
    with pytest.raises(NotAuthenticError, match="changed after it was signed"):
        verify_certificate(certificate_bytes(forged), public_key(certifying))
    # Verified against the forger's own key, the key id gives it away.
    other = Ed25519PrivateKey.generate()
    raw = other.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with pytest.raises(NotAuthenticError, match="signed by another key"):
        verify_certificate(certificate_bytes(sign(certificate, other)), raw)


@pytest.mark.parametrize(
    ("app", "plugin", "label", "now", "message"),
    [
        ("unknown-app", None, "2026-Q3", AFTER_Q3, "no published data for application 'unknown-app'"),
        ("stripepy-like", None, "2026-Q3", AFTER_Q3, "no published figure of 'stripepy-like' falls in 2026-Q3"),
        ("napari-like", "napari-tracks", "2026-Q3", AFTER_Q3, "no published data for plugin 'napari-tracks'"),
        ("napari-like", "no-such-plugin", "2026-Q3", AFTER_Q3, "no published data for plugin"),
        ("napari-like", None, "2027", AFTER_Q3, "2027 is in the future"),
        ("napari-like", None, "2026-Q4", AFTER_Q3, "2026-Q4 has not ended yet"),
        (
            "napari-like",
            None,
            "2026-W44",
            datetime.datetime(2026, 11, 5, tzinfo=datetime.timezone.utc),
            "not cover all",
        ),
        ("napari-like", None, "2025", AFTER_Q3, "no published figure of 'napari-like' falls in 2025"),
        ("napari-like", None, "2026-W33", AFTER_Q3, "no published figure"),
    ],
)
def test_what_cannot_be_certified_is_refused_with_the_reason(certifying, app, plugin, label, now, message):
    with pytest.raises(CertificateError, match=message):
        issue_certificate(certifying, app=app, plugin=plugin, period=parse_period(label), now=now)


def test_nothing_published_yet_is_refused_with_what_to_run(settings: Settings):
    with pytest.raises(CertificateError, match="consentry-server publish"):
        issue_certificate(settings, app="napari-like", period=Q3, now=AFTER_Q3)
    assert not settings.signing_key_path.exists()


# ---- the published key ------------------------------------------------------------------------------------------
def test_the_key_route_serves_the_published_key_once_there_is_one(settings: Settings):
    with TestClient(Starlette(routes=certificate_routes(settings))) as client:
        missing = client.get("/api/v1/certificates/key")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "no_key"
        load_signing_key(settings.signing_key_path)
        found = client.get("/api/v1/certificates/key")
        assert found.status_code == 200
        assert found.json() == public_key_document(settings)
        # A public-only host holds only the .pub file.
        settings.signing_key_path.unlink()
        assert client.get("/api/v1/certificates/key").json() == found.json()


# ---- consentry-server certify, then consentry verify ------------------------------------------------------------
def test_certify_then_verify_on_the_command_line(certifying: Settings, tmp_path: Path, capsys):
    common = ["--db", certifying.database, "--public-db", str(certifying.public_path)]
    output = tmp_path / "napari-like-2026-Q3.json"
    assert (
        server_main(["certify", *common, "--app", "napari-like", "--period", "2026-Q3", "--output", str(output)]) == 0
    )
    assert "wrote the certificate" in capsys.readouterr().err
    assert server_main(["certify", *common, "--show-key"]) == 0
    key_file = tmp_path / "key.json"
    key_file.write_text(capsys.readouterr().out)
    assert consentry_main(["verify", str(output), "--key", str(key_file)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith("VALID")
    assert "napari-like" in out
    assert "mean 18, peak 24 (12 of 13 weeks published)" in out
    key_text = json.loads(key_file.read_text())["key"]
    output.write_bytes(output.read_bytes().replace(b'"peak": 24', b'"peak": 25'))
    assert consentry_main(["verify", str(output), "--key", key_text]) == ExitCode.NOT_AUTHENTIC
    assert "NOT authentic" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--app", "napari-like", "--period", "2026-Q5"], 1, "'2026-Q5' is not a quarter that exists"),
        (["--app", "napari-like", "--period", "Q3"], 1, "is not a period: use YYYY"),
        (["--app", "napari-like"], 2, "certify needs --app and --period"),
        (["--app", "unknown-app", "--period", "2026-Q3"], 1, "no published data for application 'unknown-app'"),
    ],
)
def test_certify_refuses_bad_requests_without_a_traceback(certifying: Settings, capsys, arguments, code, message):
    common = ["--db", certifying.database, "--public-db", str(certifying.public_path)]
    assert server_main(["certify", *common, *arguments]) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_the_key_file_can_be_named_in_the_settings(tmp_path: Path, certifying: Settings):
    path = tmp_path / "keys" / "certificates.pem"
    config = tmp_path / "server.toml"
    config.write_text(f'signing_key = "{path}"\n')
    common = ["--config", str(config), "--db", certifying.database, "--public-db", str(certifying.public_path)]
    assert server_main(["certify", *common, "--app", "napari-like", "--period", "2026-09", "--output", os.devnull]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
