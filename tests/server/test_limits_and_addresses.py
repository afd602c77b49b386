"""Where a request comes from (trusted proxies, forwarded headers), its country, and the rate limits.

Unit tests of ``client_address``, ``country_of`` and ``RateLimiter`` (with an injected clock and date), then the
same through the application: a source over its burst gets 429 with ``Retry-After`` and nothing is stored; the
country of a public forwarded address is stored when the lookup is on and the proxy trusted, never otherwise.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from consentry import load_manifest
from consentry.wire import encode
from consentry_server.app import create_app
from consentry_server.config import Settings
from consentry_server.ingest import limits
from consentry_server.ingest.addresses import client_address, country_of, parse_networks
from consentry_server.ingest.limits import MAX_BUCKETS, Rate, RateLimiter

DFX = Path(__file__).parent / "seed_formats" / "dfx.toml"
LOOPBACK = parse_networks("127.0.0.0/8, ::1")
PROXIES = parse_networks("127.0.0.0/8, 10.0.0.0/8")


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs])


# ---- client_address ------------------------------------------------------------------------------------------
ADDRESSES = {
    # peer, headers, trusted networks, expected address
    "no_headers": ("203.0.113.7", (), PROXIES, "203.0.113.7"),
    "untrusted_peer_xff_ignored": ("203.0.113.7", (("x-forwarded-for", "8.8.8.8"),), PROXIES, "203.0.113.7"),
    "untrusted_peer_forwarded_ignored": ("203.0.113.7", (("forwarded", "for=8.8.8.8"),), PROXIES, "203.0.113.7"),
    "no_trusted_proxies_headers_ignored": ("127.0.0.1", (("x-forwarded-for", "8.8.8.8"),), (), "127.0.0.1"),
    "trusted_peer_xff_believed": ("127.0.0.1", (("x-forwarded-for", "8.8.8.8"),), PROXIES, "8.8.8.8"),
    "chain_through_trusted_proxies": (
        "127.0.0.1",
        (("x-forwarded-for", "8.8.8.8, 10.1.2.3"),),
        PROXIES,
        "8.8.8.8",
    ),
    "chain_stops_at_first_untrusted_hop": (
        "127.0.0.1",
        (("x-forwarded-for", "6.6.6.6, 1.0.16.1, 10.1.2.3"),),
        PROXIES,
        "1.0.16.1",
    ),
    "several_xff_headers_in_order": (
        "127.0.0.1",
        (("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "1.0.16.1")),
        PROXIES,
        "1.0.16.1",
    ),
    "xff_with_port": ("127.0.0.1", (("x-forwarded-for", "8.8.8.8:41234"),), PROXIES, "8.8.8.8"),
    "xff_ipv6": ("127.0.0.1", (("x-forwarded-for", "2001:4860:4860::8888"),), PROXIES, "2001:4860:4860::8888"),
    "xff_ipv6_with_port": (
        "127.0.0.1",
        (("x-forwarded-for", "[2001:4860:4860::8888]:443"),),
        PROXIES,
        "2001:4860:4860::8888",
    ),
    "xff_with_spaces": ("127.0.0.1", (("x-forwarded-for", "  8.8.8.8  ,   10.0.0.9 "),), PROXIES, "8.8.8.8"),
    "forwarded_rfc7239": (
        "127.0.0.1",
        (("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"),),
        PROXIES,
        "192.0.2.60",
    ),
    "forwarded_quoted_ipv6_with_port": (
        "127.0.0.1",
        (("forwarded", 'for="[2001:db8:cafe::17]:4711"'),),
        PROXIES,
        "2001:db8:cafe::17",
    ),
    "forwarded_case_and_several_elements": (
        "127.0.0.1",
        (("forwarded", "For=6.6.6.6, FOR=1.0.16.1;proto=https, for=10.0.0.2"),),
        PROXIES,
        "1.0.16.1",
    ),
    # A dual-stack listener (--host ::) sees IPv4 peers as IPv4-mapped IPv6 addresses: still the trusted proxy.
    "ipv4_mapped_trusted_peer": ("::ffff:127.0.0.1", (("x-forwarded-for", "8.8.8.8"),), PROXIES, "8.8.8.8"),
    "ipv6_peer_trusted": ("::1", (("x-forwarded-for", "1.0.16.1"),), LOOPBACK, "1.0.16.1"),
    "ipv6_peer_untrusted": ("2001:db8::1", (("x-forwarded-for", "1.0.16.1"),), LOOPBACK, "2001:db8::1"),
    "garbage_xff": ("127.0.0.1", (("x-forwarded-for", "not-an-address"),), PROXIES, "127.0.0.1"),
    "garbage_hop_stops_the_walk": ("127.0.0.1", (("x-forwarded-for", "8.8.8.8, unknown"),), PROXIES, "127.0.0.1"),
    "obfuscated_forwarded": ("127.0.0.1", (("forwarded", "for=_hidden"),), PROXIES, "127.0.0.1"),
    "forwarded_unknown": ("127.0.0.1", (("forwarded", "for=unknown"),), PROXIES, "127.0.0.1"),
    "empty_xff": ("127.0.0.1", (("x-forwarded-for", ""),), PROXIES, "127.0.0.1"),
    "overflowing_octets": ("127.0.0.1", (("x-forwarded-for", "300.1.1.1"),), PROXIES, "127.0.0.1"),
    "sql_in_xff": ("127.0.0.1", (("x-forwarded-for", "1.2.3.4'; DROP TABLE reports;--"),), PROXIES, "127.0.0.1"),
}


@pytest.mark.parametrize(("peer", "pairs", "trusted", "expected"), ADDRESSES.values(), ids=ADDRESSES.keys())
def test_client_address(peer, pairs, trusted, expected):
    # Each case is read with the header it is written in, as a deployment configured for it would.
    header = "forwarded" if any(name == "forwarded" for name, _ in pairs) else "x-forwarded-for"
    assert client_address(peer, headers(*pairs), trusted, header) == expected


BOTH = (("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=8.8.8.8"))


@pytest.mark.parametrize(("header", "expected"), [("x-forwarded-for", "6.6.6.6"), ("forwarded", "8.8.8.8")])
def test_only_the_configured_forwarding_header_is_read(header, expected):
    assert client_address("127.0.0.1", headers(*BOTH), PROXIES, header) == expected


def test_the_default_forwarding_header_is_x_forwarded_for():
    assert client_address("127.0.0.1", headers(*BOTH), PROXIES) == "6.6.6.6"
    assert client_address("127.0.0.1", headers(("forwarded", "for=8.8.8.8")), PROXIES) == "127.0.0.1"


@pytest.mark.parametrize("peer", [None, "", "testclient", "unix:/run/socket", "localhost"])
def test_client_address_of_no_or_an_unreadable_peer_is_none(peer):
    assert client_address(peer, headers(("x-forwarded-for", "8.8.8.8")), LOOPBACK) is None


# ---- country_of ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("8.8.8.8", "US"),
        ("1.0.16.1", "JP"),
        ("2001:4860:4860::8888", "US"),
        ("2001:200::1", "JP"),
        ("::ffff:8.8.8.8", "US"),  # an IPv4 client of a dual-stack listener
        ("::ffff:1.0.16.1", "JP"),
    ],
)
def test_country_of_a_public_address(address, country):
    assert country_of(address) == country


@pytest.mark.parametrize(
    "address",
    [
        None,
        "127.0.0.1",
        "127.0.0.2",
        "::1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.10",
        "100.64.0.1",
        "fe80::1",
        "fd00::1",
        "169.254.1.1",
        "192.0.2.1",
        "0.0.0.0",  # noqa: S104 - an address looked up, not bound
        "::",
    ],
)
def test_country_of_a_private_loopback_or_reserved_address_is_none(address):
    assert country_of(address) is None


# ---- RateLimiter ---------------------------------------------------------------------------------------------
class Clock:
    """Monotonic seconds and a UTC date, both moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.day = datetime.date(2026, 11, 18)

    def limiter(self, source: Rate, reporter: Rate = Rate(10, 60)) -> RateLimiter:  # noqa: B008 - a frozen value
        return RateLimiter(source, reporter, clock=lambda: self.now, today=lambda: self.day)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_source_gets_its_burst_then_an_integer_wait(clock):
    limiter = clock.limiter(Rate(per_minute=60, burst=3))
    assert [limiter.check_source("8.8.8.8") for _ in range(3)] == [None, None, None]
    wait = limiter.check_source("8.8.8.8")
    assert type(wait) is int
    assert wait == 1  # one token a second
    assert limiter.check_source("1.0.16.1") is None  # another source has its own bucket


def test_the_wait_is_when_a_token_will_be_there_rounded_up(clock):
    limiter = clock.limiter(Rate(per_minute=6, burst=1))  # a token every 10 s
    assert limiter.check_source("8.8.8.8") is None
    assert limiter.check_source("8.8.8.8") == 10
    clock.now += 4.5
    assert limiter.check_source("8.8.8.8") == 6  # 5.5 s to go, rounded up
    clock.now += 5.4
    assert limiter.check_source("8.8.8.8") == 1  # 0.1 s to go is still at least a second


def test_tokens_refill_with_time_up_to_the_burst(clock):
    limiter = clock.limiter(Rate(per_minute=60, burst=3))
    for _ in range(3):
        assert limiter.check_source("8.8.8.8") is None
    assert limiter.check_source("8.8.8.8") is not None
    clock.now += 1.0
    assert limiter.check_source("8.8.8.8") is None  # one token came back
    assert limiter.check_source("8.8.8.8") is not None
    clock.now += 3600.0  # an hour refills only the burst, not 3600 tokens
    assert [limiter.check_source("8.8.8.8") for _ in range(4)][3] is not None


def test_each_reporter_of_each_app_has_its_own_limit(clock):
    limiter = clock.limiter(Rate(600, 600), Rate(per_minute=1, burst=2))
    reporter = "ab" * 16
    assert [limiter.check_reporter("napari-like", reporter) for _ in range(2)] == [None, None]
    assert limiter.check_reporter("napari-like", reporter) == 60
    assert limiter.check_reporter("napari-like", "cd" * 16) is None
    assert limiter.check_reporter("stripepy-like", reporter) is None
    clock.now += 60.0
    assert limiter.check_reporter("napari-like", reporter) is None


def test_the_source_key_is_a_salted_hash_that_changes_with_the_day(clock):
    limiter = clock.limiter(Rate(60, 3))
    key = limiter.source_key("8.8.8.8")
    assert "8.8.8.8" not in key
    assert key not in {hashlib.sha256(b"8.8.8.8").hexdigest()[:32], hashlib.md5(b"8.8.8.8").hexdigest()}  # noqa: S324
    assert limiter.source_key("8.8.8.8") == key  # stable within the day
    assert clock.limiter(Rate(60, 3)).source_key("8.8.8.8") != key  # another process, another salt
    clock.day += datetime.timedelta(days=1)
    assert limiter.source_key("8.8.8.8") != key


def test_no_bucket_is_keyed_by_the_address(clock):
    limiter = clock.limiter(Rate(60, 3))
    for address in ("8.8.8.8", "2001:4860:4860::8888"):
        limiter.check_source(address)
    keys = " ".join(limiter._sources.levels)
    assert "8.8.8.8" not in keys
    assert "2001:4860" not in keys


def test_a_new_day_forgets_every_bucket(clock):
    limiter = clock.limiter(Rate(per_minute=1, burst=1), Rate(per_minute=1, burst=1))
    assert limiter.check_source("8.8.8.8") is None
    assert limiter.check_reporter("napari-like", "ab" * 16) is None
    assert limiter.check_source("8.8.8.8") is not None
    assert limiter.check_reporter("napari-like", "ab" * 16) is not None
    clock.day += datetime.timedelta(days=1)
    assert limiter.check_source("8.8.8.8") is None
    assert limiter.check_reporter("napari-like", "ab" * 16) is None


def test_the_number_of_buckets_is_bounded(clock):
    limiter = clock.limiter(Rate(60, 3), Rate(60, 3))
    for number in range(MAX_BUCKETS + 50):
        limiter.check_reporter("napari-like", f"{number:032x}")
        if number % 1000 == 0:
            limiter.check_source(f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}")
    assert len(limiter._reporters.levels) == MAX_BUCKETS
    # The newest buckets are the ones kept: the latest reporter is still limited.
    latest = f"{MAX_BUCKETS + 49:032x}"
    assert [limiter.check_reporter("napari-like", latest) for _ in range(3)][2] is not None


def test_a_source_may_send_a_limited_number_of_new_reporters_a_day(clock):
    limiter = RateLimiter(Rate(600, 600), Rate(10, 60), new_reporters_per_day=3, today=lambda: clock.day)
    source = limiter.source_key("8.8.8.8")
    assert [limiter.check_new_reporter(source, "napari-like", f"{n:032x}") for n in range(3)] == [None] * 3
    wait = limiter.check_new_reporter(source, "napari-like", f"{3:032x}")
    assert type(wait) is int
    assert 1 <= wait <= 86400  # until the next UTC day
    # A reporter it sent today is not new; another application, another source each have their own count.
    assert limiter.check_new_reporter(source, "napari-like", f"{1:032x}") is None
    assert limiter.check_new_reporter(source, "stripepy-like", f"{3:032x}") is None
    assert limiter.check_new_reporter(limiter.source_key("1.0.16.1"), "napari-like", f"{3:032x}") is None
    assert limiter.check_new_reporter(None, "napari-like", f"{3:032x}") is None  # no address: no key to count by
    clock.day += datetime.timedelta(days=1)
    assert limiter.check_new_reporter(limiter.source_key("8.8.8.8"), "napari-like", f"{3:032x}") is None


def test_without_the_setting_new_reporters_are_not_limited(clock):
    limiter = clock.limiter(Rate(600, 600))
    source = limiter.source_key("8.8.8.8")
    assert all(limiter.check_new_reporter(source, "napari-like", f"{n:032x}") is None for n in range(5000))


def test_the_reporters_remembered_are_bounded(clock):
    limiter = RateLimiter(Rate(600, 600), Rate(10, 60), new_reporters_per_day=10, today=lambda: clock.day)
    for number in range(limits.MAX_REMEMBERED_REPORTERS // 10 + 100):
        for reporter in range(10):
            limiter.check_new_reporter(f"{number:032x}", "napari-like", f"{reporter:032x}")
    assert limiter._remembered <= limits.MAX_REMEMBERED_REPORTERS
    assert sum(len(known) for known in limiter._known.values()) == limiter._remembered
    # The latest source is still limited.
    assert limiter.check_new_reporter(f"{number:032x}", "napari-like", f"{10:032x}") is not None


# ---- through the application ---------------------------------------------------------------------------------
@pytest.fixture
def serve(storage) -> Iterator[Callable[..., TestClient]]:
    """``serve(settings, peer)``: the application over ``storage``, called in-process from ``peer``."""
    with contextlib.ExitStack() as stack:

        def start(settings: Settings, peer: str = "127.0.0.1") -> TestClient:
            return stack.enter_context(TestClient(create_app(settings, storage), client=(peer, 50000)))

        yield start


def send(client: TestClient, report, **extra: str):
    return client.post(
        f"/v1/reports/{report.level}", content=encode(report), headers={"content-type": "application/json", **extra}
    )


def export(client: TestClient, settings: Settings) -> list[dict[str, object]]:
    response = client.get("/admin/v1/export/napari-like", headers={"authorization": f"Bearer {settings.admin_token}"})
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_the_request_over_the_source_burst_gets_429_and_is_not_stored(serve, settings, storage, make_report, dump):
    client = serve(settings.replace(source_burst=3, source_rate_per_minute=1), peer="203.0.113.7")
    for number in range(3):
        assert send(client, make_report(reporter=number)).status_code == 200
    before = dump()

    response = send(client, make_report(reporter=3))

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["retry-after"].isdigit()
    assert int(response.headers["retry-after"]) >= 1
    assert storage.report_count() == 3
    assert dump() == before


def test_the_source_limit_applies_to_the_forwarded_address_behind_a_trusted_proxy(serve, settings, make_report):
    client = serve(settings.replace(source_burst=2, source_rate_per_minute=1, trusted_proxies="127.0.0.1"))
    first = {"x-forwarded-for": "8.8.8.8"}
    assert [send(client, make_report(reporter=n), **first).status_code for n in range(3)] == [200, 200, 429]
    # Another client behind the same proxy has its own bucket; so does the proxy itself.
    assert send(client, make_report(reporter=10), **{"x-forwarded-for": "1.0.16.1"}).status_code == 200
    assert send(client, make_report(reporter=11)).status_code == 200


def test_the_report_over_the_reporter_burst_gets_429_and_is_not_stored(serve, settings, storage, make_report, today):
    client = serve(settings.replace(reporter_burst=2, reporter_rate_per_minute=1))
    days = [today - datetime.timedelta(days=n) for n in (1, 2, 3)]
    assert send(client, make_report(days=(days[0],))).status_code == 200
    assert send(client, make_report(days=(days[1],))).status_code == 200

    response = send(client, make_report(days=(days[2],)))

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["error"]["field"] == "reporter"
    assert int(response.headers["retry-after"]) >= 1
    assert storage.report_count() == 2
    assert send(client, make_report(reporter=1, days=(days[2],))).status_code == 200  # another reporter


FORWARDED = [
    ({"x-forwarded-for": "8.8.8.8"}, "US"),
    ({"x-forwarded-for": "1.0.16.1, 127.0.0.1"}, "JP"),
    ({"x-forwarded-for": "[2001:4860:4860::8888]:443"}, "US"),
    ({"x-forwarded-for": "1.0.16.1:5000"}, "JP"),
    ({"x-forwarded-for": "192.168.1.20"}, None),
    ({}, None),  # the proxy's own loopback address
]


def test_the_country_of_a_forwarded_public_address_is_stored(serve, settings, make_report):
    settings = settings.replace(country_lookup=True, trusted_proxies="127.0.0.0/8")
    client = serve(settings)
    for number, (extra, _) in enumerate(FORWARDED):
        assert send(client, make_report(reporter=number), **extra).status_code == 200

    countries = {row["reporter"]: row["country"] for row in export(client, settings)}

    assert countries == {f"{number:032x}": country for number, (_, country) in enumerate(FORWARDED)}


def test_behind_proxies_that_write_forwarded_only_forwarded_is_believed(serve, settings, make_report):
    settings = settings.replace(country_lookup=True, trusted_proxies="127.0.0.1", forwarded_header="Forwarded")
    client = serve(settings)
    both = {"forwarded": 'for="1.0.16.1:5000";proto=https', "x-forwarded-for": "8.8.8.8"}
    assert send(client, make_report(reporter=0), **both).status_code == 200
    assert send(client, make_report(reporter=1), **{"x-forwarded-for": "8.8.8.8"}).status_code == 200

    countries = {row["reporter"]: row["country"] for row in export(client, settings)}

    assert countries == {f"{0:032x}": "JP", f"{1:032x}": None}


def test_no_country_is_stored_when_the_lookup_is_off(serve, settings, make_report):
    settings = settings.replace(country_lookup=False, trusted_proxies="127.0.0.0/8")
    client = serve(settings)
    for number, (extra, _) in enumerate(FORWARDED):
        assert send(client, make_report(reporter=number), **extra).status_code == 200

    assert [row["country"] for row in export(client, settings)] == [None] * len(FORWARDED)


def test_forwarded_headers_from_an_untrusted_peer_give_no_country(serve, settings, make_report):
    settings = settings.replace(country_lookup=True)  # no trusted proxies
    client = serve(settings, peer="127.0.0.1")
    assert send(client, make_report(), **{"x-forwarded-for": "8.8.8.8"}).status_code == 200
    assert [row["country"] for row in export(client, settings)] == [None]


def test_a_public_peer_gets_its_own_country(serve, settings, make_report):
    settings = settings.replace(country_lookup=True)
    client = serve(settings, peer="1.0.16.1")
    assert send(client, make_report(), **{"x-forwarded-for": "8.8.8.8"}).status_code == 200
    assert [row["country"] for row in export(client, settings)] == ["JP"]


def test_a_dual_stack_listener_believes_its_ipv4_proxy_and_finds_the_country(serve, settings, make_report):
    # Behind `serve --host ::`, uvicorn gives an IPv4 peer as ::ffff:a.b.c.d (what TestClient is told here).
    settings = settings.replace(country_lookup=True, trusted_proxies="127.0.0.1")
    client = serve(settings, peer="::ffff:127.0.0.1")
    assert send(client, make_report(), **{"x-forwarded-for": "1.0.16.1"}).status_code == 200
    assert [row["country"] for row in export(client, settings)] == ["JP"]


def test_a_client_cannot_escape_its_source_limit_with_a_forwarded_header_of_its_own(serve, settings, make_report):
    # The common proxy setup (nginx: proxy_add_x_forwarded_for) appends the client's address to X-Forwarded-For
    # and passes any Forwarded header the client wrote through untouched. The client at 6.6.6.6 writes its own.
    client = serve(settings.replace(source_burst=3, source_rate_per_minute=1, trusted_proxies="127.0.0.1"))
    statuses = [
        send(
            client,
            make_report(reporter=number),
            **{"x-forwarded-for": "6.6.6.6", "forwarded": f"for=198.51.100.{number}"},
        ).status_code
        for number in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


# ---- new reporters per source ---------------------------------------------------------------------------------
@pytest.fixture(params=["thread", "process"])
def limited(request, settings, storage) -> Iterator[TestClient]:
    """The application, allowing 3 new reporters a source a day, behind a proxy that says who the source is.

    Reports are stored in a thread, or by a storing process (where the limit is kept, by the sources' keys).
    """
    changes = {"source_new_reporters_per_day": 3, "slicer_app": "slicer-like", "trusted_proxies": "127.0.0.1"}
    limited_settings = settings.replace(**changes)
    app = create_app(limited_settings, storage) if request.param == "thread" else create_app(limited_settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client


FROM = {"x-forwarded-for": "203.0.113.7"}
FROM_ANOTHER = {"x-forwarded-for": "198.51.100.9"}


def test_rotating_reporter_ids_from_one_source_stops_at_its_new_reporters_a_day(limited, make_report, storage, dump):
    assert [send(limited, make_report(reporter=number), **FROM).status_code for number in range(3)] == [200] * 3
    before = dump()

    response = send(limited, make_report(reporter=3), **FROM)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_new_reporters"
    assert response.json()["error"]["field"] == "reporter"
    assert 1 <= int(response.headers["retry-after"]) <= 86400
    assert dump() == before
    # The reporters it sent already still may; so may another source.
    assert send(limited, make_report("full", reporter=2), **FROM).status_code == 200
    assert send(limited, make_report(reporter=3), **FROM_ANOTHER).status_code == 200
    assert storage.report_count() == 5


def slicer_upload(day: datetime.date) -> bytes:
    return json.dumps([{"component": "Data", "event": "enter", "day": day.isoformat(), "times": "1"}]).encode()


def test_slicer_uploads_each_a_new_reporter_are_limited_too(limited, storage, today):
    day = today - datetime.timedelta(days=1)
    headers = {"content-type": "application/json", **FROM}
    statuses = [limited.post("/telemetry", content=slicer_upload(day), headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = limited.post("/telemetry", content=slicer_upload(day), headers=headers)
    assert refused.json()["error"]["code"] == "too_many_new_reporters"
    assert storage.report_count() == 3


def otlp_export(day: datetime.date) -> bytes:
    start = int(datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.timezone.utc).timestamp() * 1e9)
    span = {"name": "call", "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**9)}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "stripepy-like"}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}).encode()


def test_otlp_exports_each_a_new_reporter_are_limited_too(limited, storage, today):
    day = today - datetime.timedelta(days=1)
    headers = {"content-type": "application/json", **FROM}
    statuses = [limited.post("/v1/traces", content=otlp_export(day), headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = limited.post("/v1/traces", content=otlp_export(day), headers=headers)
    assert json.loads(refused.content)["message"].startswith("too_many_new_reporters")
    assert int(refused.headers["retry-after"]) >= 1
    assert storage.report_count() == 3


def dfx_batch(batch: str, today: datetime.date) -> bytes:
    week = today.isocalendar()
    record = {
        "tool": "dfx",
        "version": "0.25.0",
        "command": "deploy",
        "platform": "linux",
        "week": f"{week.year}-{week.week:02d}",
        "parameters": [],
        "exit_code": 0,
        "execution_time_ms": 1840,
        "batch": batch,
        "sequence": 0,
    }
    return json.dumps(record).encode()


def test_dfx_batches_each_a_new_reporter_are_limited_too(limited, storage, today):
    storage.register_manifest(load_manifest(DFX))
    first = b"\n".join(dfx_batch(f"batch-{number}", today) for number in range(3))
    assert limited.post("/dfx/v1/commands", content=first, headers=FROM).status_code == 200
    rows = storage.report_count()

    refused = limited.post("/dfx/v1/commands", content=dfx_batch("batch-3", today), headers=FROM)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_new_reporters"
    assert storage.report_count() == rows
    # dfx sends a batch again when it got no 2xx: a batch it sent already is no new reporter.
    again = limited.post("/dfx/v1/commands", content=dfx_batch("batch-1", today), headers=FROM)
    assert again.json()["status"] == "duplicate"
