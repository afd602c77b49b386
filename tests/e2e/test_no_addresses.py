"""No address is stored: not in any table, log, published file, export or output of the server.

A real ``consentry-server serve`` trusts the loopback network as its proxies and looks countries up. Reports
arrive from several loopback source addresses (the client socket is bound to 127.0.0.2, 127.0.0.3, ...) with
``X-Forwarded-For`` headers naming public and private IPv4 and IPv6 addresses, and ``Forwarded`` headers that a
client wrote to pose as someone else (the server believes only ``X-Forwarded-For``); some requests are
refused (bad bodies, rate limits) so that the request log has lines. After ``aggregate``, ``publish`` and
``export``, every row of every table of the raw database and of the public store (as text and as bytes), the
database files themselves, the exported lines and everything the server and the commands printed are searched:
no address appears, as text or packed (``socket.inet_pton``). The countries of the public addresses (US, JP)
do appear in the published and exported data: the addresses were seen, and only their countries kept.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import secrets
import socket
import sqlite3
from pathlib import Path

import pytest

from consentry.manifest import load_manifest
from consentry.wire import Report, encode
from support.e2e import run
from support.paths import NAPARI
from support.processes import ADMIN_TOKEN, script, start, stop

CONFIG = f"""
trusted_proxies = "127.0.0.0/8"
country_lookup = true
admin_token = "{ADMIN_TOKEN}"
reporter_threshold = 1
source_burst = 6
source_rate_per_minute = 1
"""
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
PUBLIC = {"8.8.8.8": "US", "1.0.16.1": "JP", "2001:4860:4860::8888": "US", "2001:200::1": "JP"}
PRIVATE = ["10.1.2.3", "192.168.7.9", "fd12:3456::1"]
SPOOFED = ["9.9.9.9", "2620:fe::fe"]  # in Forwarded headers, which this server does not read
ADDRESSES = [*SOURCES, *PUBLIC, *PRIVATE, *SPOOFED]


def forms(address: str) -> list[bytes]:
    """How ``address`` could be written down: compressed and exploded text, and packed."""
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    texts = {ip.compressed, ip.exploded, ip.compressed.upper(), ip.exploded.upper()}
    return [*(text.encode() for text in texts), socket.inet_pton(family, address)]


def cell_bytes(value: object) -> bytes:
    """A database value as bytes: blobs as they are, everything else as its text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


def every_cell(path: Path) -> list[tuple[str, bytes]]:
    """Every value of every row of every table of the SQLite file at ``path``, as (where, bytes)."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables
        cells = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names read from the schema
                cells.extend((f"{path.name}:{table}", cell_bytes(value)) for value in row)
                cells.append((f"{path.name}:{table} (row)", repr(row).encode()))
        return cells
    finally:
        db.close()


def table(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


class Sender:
    """Sends reports to the server from a chosen loopback source address."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.napari = load_manifest(NAPARI)
        self.day = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)

    def report(self, **fields: object) -> bytes:
        report = Report(
            app=self.napari.name,
            app_version="1.0.0",
            level="basic",
            consent_version=self.napari.consent_version,
            reporter=secrets.token_hex(16),
            first_report=True,
            days=(self.day,),
            system={"os": "linux"},
        )
        return encode(report) if not fields else json.dumps({**json.loads(encode(report)), **fields}).encode()

    def post(self, source: str, body: bytes, content_type: str = "application/json", **headers: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            names = {"xff": "X-Forwarded-For", "forwarded": "Forwarded"}
            sent = {"Content-Type": content_type, **{names[key]: value for key, value in headers.items()}}
            connection.request("POST", "/v1/reports/basic", body=body, headers=sent)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


def load(sender: Sender) -> dict[str, list[int]]:
    """Accepted and refused requests from every source, with every kind of forwarding header."""
    statuses: dict[str, list[int]] = {}

    def send(label: str, source: str, body: bytes | None = None, **options: str) -> None:
        statuses.setdefault(label, []).append(sender.post(source, body or sender.report(), **options))

    for _ in range(3):
        send("8.8.8.8 xff", "127.0.0.2", xff="8.8.8.8")
    send("8.8.8.8 refused", "127.0.0.2", b"{", xff="8.8.8.8")
    send("8.8.8.8 refused", "127.0.0.2", content_type="text/plain", xff="8.8.8.8")
    unknown_event = sender.report(counts={sender.day.isoformat(): {"napari:not:declared": 1}})
    send("8.8.8.8 refused", "127.0.0.2", unknown_event, xff="203.0.113.9, 8.8.8.8")
    for _ in range(10):  # a burst of 6, then 429
        send("1.0.16.1 xff", "127.0.0.3", xff="1.0.16.1", forwarded="for=9.9.9.9;proto=https")
    for _ in range(2):
        send("2001:4860:4860::8888 xff", "127.0.0.4", xff="2001:4860:4860::8888, 127.0.0.1")
        send("2001:200::1 xff", "127.0.0.4", xff="[2001:200::1]:4711", forwarded='for="[2620:fe::fe]"')
    send("private", "127.0.0.5", xff="10.1.2.3")
    send("private", "127.0.0.5", xff="192.168.7.9:5000")
    send("private", "127.0.0.5", xff="fd12:3456::1", forwarded="for=9.9.9.9")
    send("private", "127.0.0.5", b"not json", xff="10.1.2.3")
    send("loopback", "127.0.0.6")
    send("loopback", "127.0.0.6", b"[]")
    return statuses


@pytest.mark.slow
def test_no_table_log_publication_export_or_output_holds_an_address(tmp_path):
    data = tmp_path / "data"
    database, public, exported = data / "consentry.sqlite3", data / "public.sqlite3", tmp_path / "export.jsonl"
    config = tmp_path / "server.toml"
    config.write_text(CONFIG, "utf-8")
    options = ["--config", str(config), "--db", f"sqlite:///{database}", "--public-db", str(public)]
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    printed: list[bytes] = []

    def command(*arguments: str) -> None:
        result = run([script("consentry-server"), *arguments, *options], env)
        printed.extend((result.stdout, result.stderr))
        assert result.returncode == 0, result.stderr.decode()

    command("apps", "add", str(NAPARI))
    server = start(
        [script("consentry-server"), "serve", *options, "--host", "127.0.0.1", "--port", "0"],
        env,
        r"listening on http://127\.0\.0\.1:(\d+)",
    )
    try:
        statuses = load(Sender(int(server.match.group(1))))
    finally:
        assert stop(server) == 0, "".join(server.output)  # a clean stop writes the last request-log lines
    printed.append("".join(server.output).encode())
    command("aggregate")
    command("publish")
    command("export", "napari-like", "--output", str(exported))

    # What was sent was seen: accepted, refused for its body, refused for its rate.
    assert statuses == {
        "8.8.8.8 xff": [200] * 3,
        "8.8.8.8 refused": [400, 415, 400],
        "1.0.16.1 xff": [200] * 6 + [429] * 4,
        "2001:4860:4860::8888 xff": [200] * 2,
        "2001:200::1 xff": [200] * 2,
        "private": [200, 200, 200, 400],
        "loopback": [200, 400],
    }
    logged = table(database, "SELECT status, code FROM request_log ORDER BY id")
    assert sorted(logged) == sorted(
        [(400, "invalid_report")] * 3
        + [(415, "unsupported_media_type"), (400, "event_not_in_manifest")]
        + [(429, "rate_limited")] * 4
    )

    # The countries were kept: proof that the forwarded addresses were believed and looked up (and the spoofed
    # ones were not: they would have added countries).
    rows = [json.loads(line) for line in exported.read_text("utf-8").splitlines()]
    assert sorted(str(row["country"]) for row in rows) == sorted(["US"] * 5 + ["JP"] * 8 + ["None"] * 4)
    published = table(public, """SELECT value, max(reporters) FROM "values" WHERE field = 'country' GROUP BY 1""")
    assert dict(published) == {"JP": 8, "US": 5}

    # ... and nothing of the addresses.
    haystack = [
        *every_cell(database),
        *every_cell(public),
        ("export", exported.read_bytes()),
        *(("printed", output) for output in printed),
    ]
    haystack += [(path.name, path.read_bytes()) for path in data.iterdir() if path.is_file()]
    assert occurrences(haystack) == []


def occurrences(haystack: list[tuple[str, bytes]]) -> list[str]:
    """Where any of ``ADDRESSES`` appears in ``haystack``: as text anywhere, packed in values and outputs."""
    found = []
    for address in ADDRESSES:
        *text_forms, packed = forms(address)
        for where, content in haystack:
            binary_file = where.endswith(("sqlite3", "-wal", "-shm"))  # whole files: only text is meaningful
            needles = text_forms if binary_file else [*text_forms, packed]
            found.extend(f"{address} in {where}" for needle in needles if needle in content)
    return found


def test_the_search_finds_an_address_in_any_form():
    assert occurrences([("export", b'{"country": "US"}'), ("data.sqlite3", b"\x08\x08\x08\x08")]) == []
    assert occurrences(
        [
            ("printed", b"client 8.8.8.8:5000"),
            ("consentry.sqlite3:reports", socket.inet_pton(socket.AF_INET, "127.0.0.4")),
            ("public.sqlite3:values", b"2001:4860:4860:0000:0000:0000:0000:8888"),
            ("consentry.sqlite3-wal", b"...2001:200::1..."),
        ]
    ) == [
        "127.0.0.4 in consentry.sqlite3:reports",
        "8.8.8.8 in printed",
        "2001:4860:4860::8888 in public.sqlite3:values",
        "2001:200::1 in consentry.sqlite3-wal",
    ]
