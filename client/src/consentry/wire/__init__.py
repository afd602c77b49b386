"""Wire schema v1: the report format, as Python types and as a JSON Schema file; what client and server share.

Besides the report (its schema, codec and values), the modules here are what the server and the client must
agree on: :mod:`.bins` (the coarse values of durations, data sizes and commands), :mod:`.certificates` (signed
usage certificates) and :mod:`.strict_json` (how hand-written and foreign JSON documents are read).

``report-v1.schema.json`` beside this module is generated from :mod:`consentry.wire.schema`; regenerate it
with ``python -m consentry.wire > client/src/consentry/wire/report-v1.schema.json``.

Names are imported from their modules on first use, so that importing one part (the schema's limits, say) does
not import the codec.
"""

from __future__ import annotations

from consentry._lazy import lazy_exports

TYPE_CHECKING = False  # not imported from typing, which costs more than this package (see pyproject.toml)

_EXPORTS = {
    "decode": "consentry.wire.codec",
    "encode": "consentry.wire.codec",
    "from_checked": "consentry.wire.codec",
    "from_json": "consentry.wire.codec",
    "to_json": "consentry.wire.codec",
    "Activity": "consentry.wire.report",
    "Command": "consentry.wire.report",
    "DataCategory": "consentry.wire.report",
    "Plugin": "consentry.wire.report",
    "Report": "consentry.wire.report",
    "DATA_SIZES": "consentry.wire.schema",
    "DURATIONS": "consentry.wire.schema",
    "MAX_COUNT": "consentry.wire.schema",
    "MAX_REPORT_BYTES": "consentry.wire.schema",
    "OTHER": "consentry.wire.schema",
    "SCHEMA_VERSION": "consentry.wire.schema",
    "SYSTEM_FIELDS": "consentry.wire.schema",
    "json_schema": "consentry.wire.schema",
    "WireError": "consentry.wire.spec",
}

__all__ = [
    "DATA_SIZES",
    "DURATIONS",
    "MAX_COUNT",
    "MAX_REPORT_BYTES",
    "OTHER",
    "SCHEMA_VERSION",
    "SYSTEM_FIELDS",
    "Activity",
    "Command",
    "DataCategory",
    "Plugin",
    "Report",
    "WireError",
    "decode",
    "encode",
    "from_checked",
    "from_json",
    "json_schema",
    "to_json",
]


if not TYPE_CHECKING:  # to a type checker, a module-level __getattr__ would make every name exist
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)

if TYPE_CHECKING:
    from consentry.wire.codec import decode, encode, from_checked, from_json, to_json
    from consentry.wire.report import Activity, Command, DataCategory, Plugin, Report
    from consentry.wire.schema import (
        DATA_SIZES,
        DURATIONS,
        MAX_COUNT,
        MAX_REPORT_BYTES,
        OTHER,
        SCHEMA_VERSION,
        SYSTEM_FIELDS,
        json_schema,
    )
    from consentry.wire.spec import WireError
