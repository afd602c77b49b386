"""The OpenAPI 3.1 description of the server, served at ``/openapi.json``.

The report body's schema is the wire schema itself (JSON Schema 2020-12, which OpenAPI 3.1 uses), so the
description and the decoder cannot disagree about what a report is.
"""

from __future__ import annotations

from consentry.wire import json_schema
from consentry_server._version import __version__

__all__ = ["openapi"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "field", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable reason, e.g. event_not_in_manifest."},
                "field": {"type": "string", "description": "The field concerned, with dots; empty if none."},
                "message": {"type": "string"},
            },
        }
    },
}


def _error(description: str) -> dict[str, object]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, object] | None = None) -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


_PERIOD = {
    "name": "period",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["day", "week", "month"], "default": "week"},
}
_APP = {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}}


def _table(filter_name: str, description: str) -> dict[str, object]:
    return {
        "get": {
            "summary": description,
            "tags": ["public"],
            "parameters": [
                _APP,
                _PERIOD,
                {"name": filter_name, "in": "query", "required": False, "schema": {"type": "string"}},
                *(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": f"{text} (the first day of a period); period=day: at most 92 days at a time",
                        "schema": {"type": "string", "format": "date"},
                    }
                    for name, text in (("since", "first"), ("until", "last"))
                ),
            ],
            "responses": {
                "200": _json("Published rows; none rests on fewer than the threshold of reporters."),
                "400": _error("A bad period, filter or range."),
                "404": _error("Nothing is published for this application."),
            },
        }
    }


def _upload_answer(extra: dict[str, object] | None = None) -> dict[str, object]:
    """The 200 answer of the seed-format routes: what storing the upload's reports did."""
    properties: dict[str, object] = {
        "status": {"type": "string", "enum": ["stored", "replaced", "duplicate", "empty"]},
        "reports": {"type": "integer"},
        "days": {"type": "integer"},
        **(extra or {}),
    }
    return _json(
        "Every report of the upload durably stored (or already stored); nothing of a refused upload is.",
        {"type": "object", "required": ["status", "reports", "days"], "properties": properties},
    )


_SEED_REFUSALS: dict[str, dict[str, object]] = {
    "400": _error("Refused whole: malformed, or not allowed by the application's manifest."),
    "404": _error("No such application, or no default one for POST /telemetry (setting slicer_app)."),
    "413": _error("Too large, as sent or once decompressed."),
    "415": _error("An encoding other than gzip, or a content type other than JSON."),
    "429": _error("Too many requests from this source or reporter; see Retry-After."),
    "503": _error("Busy or storage unavailable; see Retry-After."),
}
_SLICER_ROWS: dict[str, object] = {
    "type": "array",
    "description": "Daily counters of the 3D Slicer Telemetry extension; times may be a string of digits.",
    "items": {
        "type": "object",
        "required": ["component", "event", "day", "times"],
        "properties": {
            "component": {"type": "string"},
            "event": {"type": "string"},
            "day": {"type": "string", "format": "date"},
            "times": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]},
        },
    },
}


def _seed_responses(ok: dict[str, object]) -> dict[str, dict[str, object]]:
    return {"200": ok, **_SEED_REFUSALS}


def _slicer(summary: str, parameters: list[dict[str, object]]) -> dict[str, object]:
    return {
        "post": {
            "summary": summary,
            "tags": ["seed formats"],
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _SLICER_ROWS}}},
            "responses": _seed_responses(_upload_answer()),
        }
    }


def openapi() -> dict[str, object]:
    """The description, as a JSON-compatible document."""
    report = json_schema()
    report.pop("$schema", None)
    report.pop("$id", None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Consentry collection server",
            "version": __version__,
            "description": "Validated ingest of opt-in usage reports, and the published aggregates.",
        },
        "paths": {
            "/v1/reports/{level}": {
                "post": {
                    "summary": "Send one report to its level's endpoint.",
                    "tags": ["ingest"],
                    "parameters": [{"name": "level", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}},
                    },
                    "responses": {
                        "200": _json(
                            "Durably stored (or an identical report already was).",
                            {
                                "type": "object",
                                "required": ["status", "days"],
                                "properties": {
                                    "status": {"type": "string", "enum": ["stored", "duplicate", "replaced"]},
                                    "days": {"type": "integer"},
                                },
                            },
                        ),
                        "400": _error("Refused: malformed, or not allowed by the application's manifest."),
                        "413": _error("Too large, as sent or once decompressed."),
                        "415": _error("Not application/json, or an encoding other than gzip."),
                        "429": _error("Too many requests from this source or reporter; see Retry-After."),
                        "503": _error("Busy or storage unavailable; see Retry-After."),
                    },
                }
            },
            "/telemetry": _slicer("3D Slicer Telemetry extension upload, for the default application.", []),
            "/telemetry/{app}": _slicer("3D Slicer Telemetry extension upload, for the application named.", [_APP]),
            "/dfx/v1/commands": {
                "post": {
                    "summary": "dfx command records, one JSON object per line (any content type, or none).",
                    "tags": ["seed formats"],
                    "requestBody": {
                        "required": True,
                        "description": "Newline-delimited JSON; the content type is not checked.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "responses": _seed_responses(_upload_answer({"records": {"type": "integer"}})),
                }
            },
            "/v1/deletions": {
                "post": {
                    "summary": "Delete the reports of the reporter ids given (consentry forget).",
                    "tags": ["ingest"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["app", "reporters"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "app": report["properties"]["app"],  # type: ignore[index]
                                        "reporters": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 64,
                                            "items": report["properties"]["reporter"],  # type: ignore[index]
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            "How many rows were deleted.",
                            {"type": "object", "properties": {"deleted": {"type": "integer"}}},
                        ),
                        "400": _error("Malformed: not strict JSON in UTF-8, bad gzip, or not this shape."),
                        "413": _error("Too large, as sent or once decompressed."),
                        "415": _error("Not application/json, or an encoding other than gzip."),
                        "429": _error("Too many requests from this source; see Retry-After."),
                    },
                }
            },
            "/api/v1/meta": {
                "get": {
                    "summary": "When the data was published, the threshold, suppression and noise.",
                    "tags": ["public"],
                    "responses": {"200": _json("The publication's description (empty before the first).")},
                }
            },
            "/api/v1/apps": {
                "get": {
                    "summary": "Published applications.",
                    "tags": ["public"],
                    "responses": {"200": _json("Name, title and homepage of each.", {"type": "array"})},
                }
            },
            "/api/v1/certificates/key": {
                "get": {
                    "summary": "The public key usage certificates are verified against.",
                    "tags": ["public"],
                    "responses": {
                        "200": _json("algorithm, key (base64) and key_id."),
                        "404": _error("No signing key yet."),
                    },
                }
            },
            "/api/v1/apps/{app}/installs": _table("level", "Distinct reporters (installs) per period and level."),
            "/api/v1/apps/{app}/counters": _table("kind", "Counter totals and their reporters per period."),
            "/api/v1/apps/{app}/values": _table("field", "Distributions: versions, systems, countries, plugins."),
            "/healthz": {
                "get": {"summary": "Liveness.", "tags": ["operations"], "responses": {"200": _json("Alive.")}}
            },
        },
        "components": {
            "schemas": {"Report": report, "Error": _ERROR},
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }
