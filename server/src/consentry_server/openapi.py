"""The OpenAPI 3.1 description of the server, served at ``/openapi.json``: every route, each with its answers.

The report body's schema is the wire schema itself (JSON Schema 2020-12, which OpenAPI 3.1 uses), so the
description and the decoder cannot disagree about what a report is. A test compares the application's routes
with these paths (a route without a description fails it), and schemathesis calls every operation described.
"""

from __future__ import annotations

from consentry.wire import json_schema
from consentry.wire.schema import VERSION
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


_PARTIAL_SUCCESS = {
    "type": "object",
    "description": "Only when something was dropped (undeclared or invalid rows, records or parameters).",
    "required": ["dropped", "message"],
    "properties": {
        "dropped": {
            "type": "object",
            "description": "Items dropped per machine-readable reason, e.g. event_not_in_manifest.",
            "additionalProperties": {"type": "integer"},
        },
        "message": {"type": "string", "description": "The first problem of each reason."},
    },
}


def _upload_answer(extra: dict[str, object] | None = None) -> dict[str, object]:
    """The 200 answer of the seed-format routes: what storing the upload's reports did, and what was dropped."""
    properties: dict[str, object] = {
        "status": {"type": "string", "enum": ["stored", "replaced", "duplicate", "empty"]},
        "reports": {"type": "integer"},
        "days": {"type": "integer"},
        "partial_success": _PARTIAL_SUCCESS,
        **(extra or {}),
    }
    return _json(
        "Every report of the upload durably stored (or already stored), less what partial_success says was "
        "dropped; nothing of a refused upload is.",
        {"type": "object", "required": ["status", "reports", "days"], "properties": properties},
    )


_SEED_REFUSALS: dict[str, dict[str, object]] = {
    "400": _error("Refused whole: malformed, or an application that is not registered."),
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


def _collection_date(name: str, description: str, *, required: bool) -> dict[str, object]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description + " Written YYYYMMDD, as the thread's example does, or YYYY-MM-DD.",
        "schema": {"type": "string", "pattern": "^([0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2})$"},
    }


_SLICER_QUERY: list[dict[str, object]] = [
    {
        "name": "app",
        "in": "query",
        "required": False,
        "description": "The application (compared without case, e.g. Slicer); by default the path's, else slicer_app.",
        "schema": {"type": "string"},
    },
    {
        "name": "app_version",
        "in": "query",
        "required": False,
        "description": "The application's version, stored as the report's (else 'other').",
        "schema": {"type": "string", "pattern": VERSION.regex.pattern},
    },
    _collection_date("collection_start_date", "The first day of the collection period.", required=False),
    _collection_date(
        "collection_end_date", "The last day of the period: the day the counts are stored on.", required=True
    ),
    {
        "name": "counters",
        "in": "query",
        "required": False,
        "description": "Every other parameter is a counter <component>_<event>=<count>, after an optional module_ "
        "or extension_ prefix (app_startup, module_DICOM_activate, extension_LungCTAnalyzer_AISegmentation). "
        "One the manifests do not declare, or whose count is not valid, is dropped (partial_success).",
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9]{1,10}$"}},
    },
]
_QUERY_REFUSALS: dict[str, dict[str, object]] = {
    "400": _error(
        "Refused whole: a malformed query (a parameter not name=value, bad escapes, not UTF-8, a name given twice), "
        "a missing or invalid collection_end_date, an invalid collection_start_date or app_version."
    ),
    "414": _error("The query string is longer than 16 KiB."),
}
_CROSS_SITE = _error("A browser says a page of another site made it send this request (Sec-Fetch-Site).")


def _slicer_responses(refusals: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    responses = _seed_responses(_upload_answer())
    responses.update(refusals)
    responses["403"] = _CROSS_SITE
    return dict(sorted(responses.items()))


def _slicer(summary: str, parameters: list[dict[str, object]]) -> dict[str, object]:
    return {
        "post": {
            "summary": summary,
            "tags": ["seed formats"],
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _SLICER_ROWS}}},
            "responses": _slicer_responses({}),
        },
        "get": {
            "summary": "The query-string form the 3D Slicer thread proposes: the counters of one collection period.",
            "description": "Answers are never cached (Cache-Control: no-store); a HEAD request is answered 405.",
            "tags": ["seed formats"],
            "parameters": [*parameters, *_SLICER_QUERY],
            "responses": _slicer_responses(_QUERY_REFUSALS),
        },
    }


_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client has: 304 if it is still the published one.",
    "schema": {"type": "string"},
}
_NOT_MODIFIED = {"description": "Unchanged since the copy named by If-None-Match (no body)."}
_UNAVAILABLE = _error("The database is unavailable (PostgreSQL down); see Retry-After.")


def _text(description: str, *media: str) -> dict[str, object]:
    return {"description": description, "content": {name: {"schema": {"type": "string"}} for name in media}}


def _get(summary: str, tag: str, responses: dict[str, object], *parameters: dict[str, object]) -> dict[str, object]:
    return {"get": {"summary": summary, "tags": [tag], "parameters": list(parameters), "responses": responses}}


def _path(name: str, description: str = "") -> dict[str, object]:
    parameter: dict[str, object] = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    return {**parameter, "description": description} if description else parameter


# ---- OTLP/HTTP (consentry_server.ingest.otlp) -----------------------------------------------------------------------
_PROTOBUF = "application/x-protobuf"
_OTLP_STATUS: dict[str, object] = {
    "type": "object",
    "description": "google.rpc.Status: a gRPC code and the reason.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}


def _otlp_answer(description: str, schema: dict[str, object]) -> dict[str, object]:
    binary = {"type": "string", "format": "binary"}
    return {
        "description": description,
        "content": {_PROTOBUF: {"schema": binary}, "application/json": {"schema": schema}},
    }


def _otlp(summary: str, what: str) -> dict[str, object]:
    refused = {
        "400": "Nothing in the export could be accepted (malformed, or every item refused by the manifests).",
        "413": "Too large, as sent or once decompressed.",
        "415": f"A content type other than {_PROTOBUF} or application/json, or an encoding other than gzip.",
        "429": "Too many requests from this source; see Retry-After.",
        "503": "Busy or storage unavailable; see Retry-After.",
    }
    partial: dict[str, object] = {
        "type": "object",
        "description": f"Export{what}ServiceResponse; partialSuccess counts the items refused and says why.",
        "properties": {"partialSuccess": {"type": "object"}},
    }
    return {
        "post": {
            "summary": summary,
            "tags": ["ingest"],
            "requestBody": {
                "required": True,
                "description": f"An OTLP Export{what}ServiceRequest, binary protobuf or OTLP/JSON, optionally gzip.",
                "content": {
                    _PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": _otlp_answer("Accepted items stored; in the encoding of the request.", partial),
                **{status: _otlp_answer(text, _OTLP_STATUS) for status, text in refused.items()},
            },
        }
    }


# ---- the admin API (consentry_server.admin.api), behind the bearer token ---------------------------------------
_ADMIN_REFUSALS: dict[str, object] = {
    "401": _error("No valid bearer token."),
    "403": _error("The admin API is closed: no admin token is configured."),
    "503": _UNAVAILABLE,
}
_REGISTERED: dict[str, object] = {
    "type": "object",
    "required": ["app", "consent_version", "registered"],
    "properties": {
        "app": {"type": "string"},
        "plugin": {"type": "string"},
        "consent_version": {"type": "string"},
        "registered": {"type": "boolean"},
    },
}


def _admin(method: str, summary: str, responses: dict[str, object], **operation: object) -> dict[str, object]:
    answers = {**responses, **_ADMIN_REFUSALS}
    return {
        method: {"summary": summary, "tags": ["admin"], "security": [{"admin": []}], **operation, "responses": answers}
    }


_DATE_RANGE = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string", "format": "date"}}
    for name in ("since", "until")
]
_ADMIN_PATHS: dict[str, object] = {
    "/admin/v1/manifests": _admin(
        "post",
        "Register an application or plugin manifest (every version is kept).",
        {
            "200": _json("This version was registered before.", _REGISTERED),
            "201": _json("Registered.", _REGISTERED),
            "400": _error("Not a valid manifest (problems lists each), not UTF-8, or cut short."),
            "413": _error("Larger than 1 MiB."),
            "415": _error("Neither application/toml (or text/plain) nor application/json."),
        },
        requestBody={
            "required": True,
            "content": {
                "application/toml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string", "description": "TOML"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
    ),
    "/admin/v1/stats": _admin(
        "get",
        "Stored report rows, registered applications, refusals by reason, what accepted uploads dropped per "
        "application and reason (over the request log kept), rows per table.",
        {"200": _json("The figures.")},
    ),
    "/admin/v1/export/{app}": _admin(
        "get",
        "The raw rows of an application, one JSON object per report and day.",
        {
            "200": _text("JSON lines (also consentry-server export).", "application/x-ndjson"),
            "400": _error("A date that is not YYYY-MM-DD."),
            "404": _error("No such registered application."),
        },
        parameters=[_APP, *_DATE_RANGE],
    ),
}

# ---- open data, badges and the dashboard (open_data, badges, pages): published aggregates only ---------------
_DATA_FILE = {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}
_DATA_ANSWERS: dict[str, object] = {
    "200": {"description": "The file (CSV files come as downloads).", "content": _DATA_FILE},
    "304": _NOT_MODIFIED,
    "404": _error("No such published file, or nothing published yet."),
}
_BADGE_ANSWERS: dict[str, object] = {
    "200": _text("An SVG badge: the weekly users, or 'too few to show'.", "image/svg+xml"),
    "304": _NOT_MODIFIED,
    "404": _text("No such published application or plugin.", "text/plain"),
}
_STATIC_MEDIA = ("text/javascript", "text/css", "image/svg+xml", "application/json", "text/markdown", "text/plain")
_PUBLIC_FILES: dict[str, object] = {
    "/data/v1/index.json": _get(
        "Open data: the publication (time, threshold, suppression, noise) and its applications.",
        "open data",
        _DATA_ANSWERS,
        _IF_NONE_MATCH,
    ),
    "/data/v1/{app}/{name}": _get(
        "Open data of an application: manifest.json, ledger.json or .csv, {table}-{period}.json or .csv.",
        "open data",
        _DATA_ANSWERS,
        _APP,
        _path("name", "table: installs, counters or values; period: day, week or month"),
        _IF_NONE_MATCH,
    ),
    "/data/{rest}": _get(
        "Any other path under /data/: the same files when it names one, else 404.",
        "open data",
        {
            **_DATA_ANSWERS,
            "404": {
                "description": "No such published file (in plain text when the path holds a line break).",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
        },
        _path("rest"),
        _IF_NONE_MATCH,
    ),
    "/badges/{name}": _get(
        "The badge of a published application: /badges/{app}.svg.",
        "open data",
        _BADGE_ANSWERS,
        _path("name"),
        _IF_NONE_MATCH,
    ),
    "/badges/{app}/{name}": _get(
        "The badge of a plugin of a published application: /badges/{app}/{plugin}.svg.",
        "open data",
        _BADGE_ANSWERS,
        _APP,
        _path("name"),
        _IF_NONE_MATCH,
    ),
    "/": _get(
        "The dashboard: one page, drawn in the browser from the open data.",
        "pages",
        {"200": _text("The page.", "text/html")},
    ),
    "/static/{path}": _get(
        "The dashboard's scripts, styles and vendored files (those packaged, nothing else).",
        "pages",
        {"200": _text("The file.", *_STATIC_MEDIA), "404": _text("Not a packaged file.", "text/plain")},
        _path("path"),
    ),
    "/transparency/{name}": _get(
        "The transparency document of a published application (/transparency/{app}.json): its levels, "
        "retention and how to opt out.",
        "pages",
        {
            "200": _json(
                "The document; certificate_key is the public key usage certificates are verified against (null "
                "while there is none), so the page needs no other request.",
                {"type": "object", "properties": {"certificate_key": {"type": ["object", "null"]}}},
            ),
            "404": _error("No such published application."),
        },
        _path("name"),
    ),
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
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/api/v1/meta": {
                "get": {
                    "summary": "When the data was published, the threshold, suppression and noise.",
                    "tags": ["public"],
                    "responses": {
                        "200": _json(
                            "The publication's description (empty before the first): numbers as numbers, the "
                            "same keys and types as the open data's index.json.",
                            {
                                "type": "object",
                                "properties": {
                                    "format": {"type": "integer"},
                                    "threshold": {"type": "integer"},
                                    "publication": {"type": "integer"},
                                    "published_at": {"type": "string"},
                                    "suppression": {"type": "string"},
                                    "noise": {"type": ["object", "null"]},
                                },
                            },
                        )
                    },
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
            "/v1/traces": _otlp("OTLP/HTTP traces: spans become command runs of registered applications.", "Trace"),
            "/v1/metrics": _otlp("OTLP/HTTP metrics: delta counters become event counts.", "Metrics"),
            **_ADMIN_PATHS,
            **_PUBLIC_FILES,
            "/healthz": {
                "get": {"summary": "Liveness.", "tags": ["operations"], "responses": {"200": _json("Alive.")}}
            },
            "/openapi.json": _get("This description.", "operations", {"200": _json("OpenAPI 3.1.")}),
        },
        "components": {
            "schemas": {"Report": report, "Error": _ERROR},
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }
