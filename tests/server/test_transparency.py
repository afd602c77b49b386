"""The transparency facts: example reports built by the client's consent-screen code, with a stand-in machine."""

from __future__ import annotations

import json

from consentry_server.public.transparency import EXAMPLE_MACHINE, transparency_document
from consentry_server.storage.public import AppInfo


def test_example_reports_show_a_typical_machine_never_the_servers(stripepy, settings):
    app = AppInfo(stripepy.name, stripepy.title, stripepy.homepage, stripepy.to_document())

    document = transparency_document(app, settings)

    [level] = [level for level in document["levels"] if level["example"]]
    example = json.loads(level["example"])
    fields = [name for level in stripepy.levels for name in level.system]
    assert example["system"] == {name: EXAMPLE_MACHINE["system"][name] for name in fields}
    assert example["dependencies"] == {name: "1.0.0" for level in stripepy.levels for name in level.dependencies}
    assert level["host"] == "telemetry.stripepy-like.example.org"


def test_opt_out_names_the_applications_own_switches(napari, settings):
    app = AppInfo(napari.name, napari.title, napari.homepage, napari.to_document())

    opt_out = transparency_document(app, settings)["opt_out"]

    assert "NAPARI_LIKE_NO_TELEMETRY=1" in opt_out["variables"]
    assert "DO_NOT_TRACK=1" in opt_out["variables"]
    assert "consentry disable napari-like" in opt_out["commands"]
    assert transparency_document(app, settings)["retention"]["raw_days"] == settings.raw_retention_days
