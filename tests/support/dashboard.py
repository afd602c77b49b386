"""Published data for the dashboard's browser tests: installs of two example applications, run by the real client
and uploaded over HTTP to a real server, from several countries (a trusted proxy's ``X-Forwarded-For``).

One install is alone of its kind: the only one with :data:`RARE_VERSION`, in New Zealand, counting
:data:`RARE_EVENT`. With the threshold at :data:`THRESHOLD` all three are suppressed, so none may appear anywhere.
:data:`LATE` napari installs start a week after the others, so that week's new installs are hidden; napari's
images come in all four size categories.
"""

from __future__ import annotations

import datetime
import json
import math
import random
import urllib.request
from pathlib import Path

import consentry
from consentry import Manifest
from consentry._local.session import AppSession
from consentry.testing import FixedClock
from consentry.transport import HttpTransport
from consentry_examples import Example, all_examples
from consentry_examples.demo import BehindProxy, rewrite_endpoints
from support.processes import ADMIN_TOKEN

__all__ = ["CONFIG", "RARE_EVENT", "RARE_VERSION", "THRESHOLD", "fill"]

THRESHOLD = 3
RARE_VERSION = "0.0.1-rare"
RARE_EVENT = "napari:window:view:toggle_fullscreen"
RARE_ADDRESS = "202.27.184.3"  # New Zealand
ADDRESSES = ("8.8.8.8", "85.214.132.117", "163.172.1.1", "133.11.0.1")  # US, DE, FR, JP
DAYS = 15
LATE = 2
#: Array shapes of each size category, SMALL to VERY_LARGE (only the shape is looked at).
SHAPES = ((512, 512), (2048, 2048), (20_000, 20_000), (200_000, 100_000))
CONFIG = """
trusted_proxies = "127.0.0.1"
source_rate_per_minute = 1000000
source_burst = 1000000
"""


def forwarded_for(address: str) -> BehindProxy:
    """The real HTTP transport behind a proxy that says the request came from ``address``."""
    return BehindProxy(HttpTransport(user_agent="consentry-dashboard-test"), address)


class _Array:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape, self.ndim, self.dtype, self.size = shape, len(shape), "uint8", math.prod(shape)


def _register(url: str, document: dict[str, object]) -> None:
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{url}/admin/v1/manifests",
        data=json.dumps(document).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def _napari_day(recorder: consentry.Recorder, example: Example, index: int, *, rare: bool) -> None:
    recorder.count("napari:layer:add_image", 1 + index % 3)
    recorder.count("napari:window:file:open_files_dialog")
    recorder.data("image", _Array(SHAPES[index % len(SHAPES)]))
    if index % 2:
        recorder.count("napari:window:view:toggle_ndisplay", 2)
    if rare:
        recorder.count(RARE_EVENT)
    plugin = recorder.plugin(example.plugins[0], example.plugin_versions[0])
    plugin.count(next(iter(example.plugins[0].events)), 2)


def fill(url: str, clients: Path, *, napari_installs: int = 13, stripepy_installs: int = 6) -> int:
    """Register the manifests, run the installs for :data:`DAYS` days ending yesterday; return reports sent."""
    examples = {example.manifest.name: example for example in all_examples()}
    napari, stripepy = examples["napari-like"], examples["stripepy-like"]
    manifests: dict[str, Manifest] = {}
    for example in (napari, stripepy):
        manifests[example.manifest.name] = rewrite_endpoints(example.manifest, url)
        _register(url, manifests[example.manifest.name].to_document())
        for plugin in example.plugins:
            _register(url, plugin.to_document())
    installs = [(napari, i) for i in range(napari_installs)] + [(stripepy, i) for i in range(stripepy_installs)]
    environ = {"CONSENTRY_POLICY_FILE": str(clients / "no-policy.json")}
    today = datetime.datetime.now(datetime.timezone.utc).date()
    sent = 0
    for offset in range(DAYS):
        day = today - datetime.timedelta(days=DAYS - offset)
        clock = FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))
        for example, index in installs:
            first = 7 if example is napari and index >= napari_installs - LATE else 0
            if offset < first:
                continue
            rare = example is napari and index == 0
            manifest = manifests[example.manifest.name]
            home = clients / f"{manifest.name}-{index}"
            transport = forwarded_for(RARE_ADDRESS if rare else ADDRESSES[index % len(ADDRESSES)])
            if offset == first:
                consentry.set_consent(manifest, "on", manifest.levels[-1].name, home=home, environ={})
                for plugin in example.plugins:
                    consentry.set_plugin_consent(manifest, plugin.name, allow=True, home=home, environ={})
            sent += _upload(manifest, home, environ, clock, transport)
            version = RARE_VERSION if rare else example.versions[-1 - index % 2]
            recorder = consentry.init(
                manifest, app_version=version, home=home, environ=environ, clock=clock, background=False,
                flush_at_exit=False,
            )  # fmt: skip
            assert isinstance(recorder, consentry.Recorder)
            recorder.supply_system(os=("linux", "macos", "windows")[index % 3], arch="x86_64", python="3.12")
            if example is napari:
                _napari_day(recorder, example, index, rare=rare)
            else:
                example.simulate_day(recorder, random.Random(index * 100 + offset), [])
            recorder.flush()
    now = FixedClock(datetime.datetime.combine(today, datetime.time(8), datetime.timezone.utc))
    for example, index in installs:
        manifest = manifests[example.manifest.name]
        address = RARE_ADDRESS if example is napari and index == 0 else ADDRESSES[index % len(ADDRESSES)]
        sent += _upload(manifest, clients / f"{manifest.name}-{index}", environ, now, forwarded_for(address))
    return sent


def _upload(manifest: Manifest, home: Path, environ: dict[str, str], clock: FixedClock, transport: BehindProxy) -> int:
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    session.prepare_reports()
    result = session.upload(transport, force=True)
    assert not result.dropped, result.messages
    return result.sent
