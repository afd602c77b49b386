"""Wire schema v1: the report format, as Python types and as a JSON Schema file.

``report-v1.schema.json`` beside this module is generated from :mod:`consentry.wire.schema`; regenerate it
with ``python -m consentry.wire > client/src/consentry/wire/report-v1.schema.json``.
"""

from consentry.wire.codec import decode, encode, from_json, to_json
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
    "from_json",
    "json_schema",
    "to_json",
]
