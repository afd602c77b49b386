"""Wire schema v1: the report a client uploads, described once as data.

Everything the client may send is listed here, with its limits. The decoder in :mod:`consentry.wire.codec`
and the JSON Schema file ``report-v1.schema.json`` are both derived from :data:`REPORT`.
"""

from __future__ import annotations

from consentry.wire.spec import Array, Bool, Date, Enum, Field, Int, Map, Nullable, Object, OneOf, Str, to_json_schema

__all__ = [
    "ACTIVITY",
    "APP_NAME",
    "COMMAND",
    "CONSENT_VERSION",
    "DATA",
    "DATA_SIZES",
    "DURATIONS",
    "EVENT_NAME",
    "EXCEPTION_NAME",
    "LEVEL_NAME",
    "MAX_COUNT",
    "MAX_DAYS",
    "MAX_EVENTS_PER_DAY",
    "MAX_REPORT_BYTES",
    "OTHER",
    "PACKAGE_NAME",
    "PARAM_NAME",
    "PARAM_VALUE",
    "PLUGIN",
    "REPORT",
    "REPORTER_ID",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "SYSTEM_FIELDS",
    "UNKNOWN_DURATION",
    "VERSION",
    "json_schema",
]

SCHEMA_VERSION = 1
SCHEMA_ID = "https://consentry.org/schema/report-v1.schema.json"

#: Largest encoded report accepted, in bytes (before compression).
MAX_REPORT_BYTES = 1024 * 1024
#: Largest single count: a day of one event cannot plausibly exceed this.
MAX_COUNT = 1_000_000_000
#: Most days one report may cover (a client catching up after a long pause).
MAX_DAYS = 31
#: Most distinct events counted in one day of one report.
MAX_EVENTS_PER_DAY = 5000
#: Name used for plugins that are not public, and for versions that are not releases.
OTHER = "other"

# ---- names -------------------------------------------------------------------------------------------------
APP_NAME = Str(
    r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$",
    64,
    "Application name: lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit.",
)
LEVEL_NAME = Str(
    r"^(?!none$)[a-z][a-z0-9_]{0,31}$",
    32,
    "A level declared in the application's manifest; never 'none', which collects nothing.",
)
EVENT_NAME = Str(
    r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$",
    128,
    "An event declared in the manifest, such as 'viewer.open' or 'segmentation/ct/total'.",
)
PACKAGE_NAME = Str(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$",
    100,
    "A Python distribution name (PEP 508), such as 'numpy' or 'napari-svg'.",
)
VERSION = Str(
    r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$",
    64,
    "A version string such as '0.5.0' or '1.2.0rc1'; 'other' for versions that are not releases.",
)
PARAM_NAME = Str(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", 64, "A command parameter declared in the manifest.")
PARAM_VALUE = Str(r"^[A-Za-z0-9_.:/+-]{1,64}$", 64, "A parameter value listed as allowed in the manifest.")
EXCEPTION_NAME = Str(
    r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
    100,
    "The class name of an exception, never its message or traceback.",
)
REPORTER_ID = Str(
    r"^[0-9a-f]{32}$",
    32,
    "HMAC-SHA256 of a random local secret with the application name and ISO week, first 128 bits in hex: "
    "stable within a week, unlinkable across weeks and applications.",
)
CONSENT_VERSION = Str(r"^[0-9a-f]{16}$", 16, "The manifest consent version the data was collected under.")
_COUNT = Int(1, MAX_COUNT, description="How many times; zero counts are left out.")

# ---- binned system fields ------------------------------------------------------------------------------------
#: Every system field a report may carry. A manifest level lists the subset it collects.
SYSTEM_FIELDS: dict[str, Str | Enum] = {
    "os": Enum(("linux", "macos", "windows", "freebsd", "other"), "Operating-system family."),
    "os_version": Str(
        r"^[a-z0-9][a-z0-9._-]{0,31}$",
        32,
        "Major version of the operating system, such as '14' (macOS), '11' (Windows) or 'ubuntu-24' (Linux).",
    ),
    "arch": Enum(("x86_64", "arm64", "x86", "arm", "ppc64le", "s390x", "riscv64", "other"), "CPU architecture."),
    "python": Str(r"^[0-9]{1,2}\.[0-9]{1,3}$", 6, "Python major.minor version."),
    "python_impl": Enum(("cpython", "pypy", "graalpy", "other"), "Python implementation."),
    "cpus": Enum(("1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", "65+"), "Logical CPU count, binned."),
    "memory": Enum(
        ("<2GB", "2-4GB", "4-8GB", "8-16GB", "16-32GB", "32-64GB", "64-128GB", "128GB+"),
        "Physical memory, binned.",
    ),
    "gpu": Enum(("nvidia", "amd", "intel", "apple", "other", "none"), "Vendor of the main GPU."),
    "screens": Enum(("0", "1", "2", "3+"), "Number of screens (GUI applications)."),
    "screen_size": Enum(
        ("<1280", "1280-1919", "1920-2559", "2560-3839", "3840+"),
        "Width of the main screen in logical pixels, binned (GUI applications).",
    ),
    "screen_scale": Enum(
        ("1", "1.25", "1.5", "2", "3+"),
        "Display scaling of the main screen, binned down (1.25 means 1.25 <= scale < 1.5).",
    ),
    "installer": Enum(
        ("pip", "conda", "uv", "pipx", "system", "bundle", "other"), "How the application was installed."
    ),
    "interface": Enum(("gui", "terminal", "jupyter", "script", "other"), "How the application is being used."),
}

DURATIONS = ("<1s", "1-10s", "10-60s", "1-10min", "10-60min", "1h+")
#: The duration of a command run whose sender did not measure it (dfx records with a null execution time); the
#: client itself always measures, so it never sends this.
UNKNOWN_DURATION = "unknown"
DATA_SIZES = ("SMALL", "MEDIUM", "LARGE", "VERY_LARGE")


def _per_day(value: Map | Object, what: str) -> Map:
    return Map(Date(), value, MAX_DAYS, f"{what}, per day covered by the report.")


def _counts(description: str) -> Map:
    return _per_day(Map(EVENT_NAME, _COUNT, MAX_EVENTS_PER_DAY), description)


ACTIVITY = Object(
    "Activity",
    {
        "runs": Field(Int(0, MAX_COUNT, description="Runs that lived longer than a minute.")),
        "active_minutes": Field(
            Int(0, 100_000, multiple_of=10, description="Active time, in 10-minute steps, summed over processes.")
        ),
    },
)

PLUGIN = Object(
    "Plugin",
    {
        "name": Field(PACKAGE_NAME),
        "version": Field(VERSION),
        "counts": Field(
            _counts("Counts of the plugin's own events (names as in the plugin's manifest)"),
            required=False,
            default=dict,
        ),
    },
    "An installed public plugin, or 'other' for every plugin that is not public.",
)

COMMAND = Object(
    "Command",
    {
        "day": Field(Date()),
        "name": Field(EVENT_NAME),
        "params": Field(
            Map(
                PARAM_NAME,
                OneOf((PARAM_VALUE, Bool())),
                64,
                "Allowed value of a parameter, or true/false for 'given'/'not given' when the manifest lists no "
                "allowed values.",
            ),
            required=False,
            default=dict,
        ),
        "duration": Field(
            Enum((*DURATIONS, UNKNOWN_DURATION), "Duration bucket; 'unknown' when the sender did not measure it.")
        ),
        "exit_code": Field(Int(0, 255, description="Exit status; 0 is success.")),
        "exception": Field(Nullable(EXCEPTION_NAME), required=False, default=lambda: None),
        "count": Field(_COUNT),
    },
    "Identical command runs of one day, counted.",
)

DATA = Object(
    "DataCategory",
    {
        "day": Field(Date()),
        "kind": Field(Str(r"^[a-z][a-z0-9_]{0,31}$", 32, "Kind of data, such as 'image' or 'points'.")),
        "class": Field(Str(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", 64, "Class name, such as 'ndarray'.")),
        "dtype": Field(Str(r"^[A-Za-z0-9_<>|=\[\]]{1,32}$", 32, "Element type, such as 'uint8'.")),
        "ndim": Field(Int(0, 64, description="Number of dimensions.")),
        "size": Field(Enum(DATA_SIZES, "Elements: SMALL < 1e6 <= MEDIUM < 1e8 <= LARGE < 1e10 <= VERY_LARGE.")),
        "count": Field(_COUNT),
    },
    "How often data of one category was seen in one day.",
)

REPORT = Object(
    "Report",
    {
        "schema": Field(Int(SCHEMA_VERSION, SCHEMA_VERSION, description="Wire schema version.")),
        "app": Field(APP_NAME),
        "app_version": Field(VERSION),
        "level": Field(LEVEL_NAME),
        "consent_version": Field(CONSENT_VERSION),
        "reporter": Field(REPORTER_ID),
        "first_report": Field(Bool("True on the first report this install ever sends for this application.")),
        "days": Field(Array(Date(), MAX_DAYS, min_items=1, unique=True, description="The days covered, ascending.")),
        "system": Field(
            Object("System", {name: Field(node, required=False) for name, node in SYSTEM_FIELDS.items()}),
            required=False,
            default=dict,
        ),
        "dependencies": Field(
            Map(PACKAGE_NAME, VERSION, 100, "Versions of the dependencies the manifest names."),
            required=False,
            default=dict,
        ),
        "counts": Field(_counts("Event counts"), required=False, default=dict),
        "activity": Field(_per_day(ACTIVITY, "Runs and active time"), required=False, default=dict),
        "exceptions": Field(
            _per_day(Map(EXCEPTION_NAME, _COUNT, 200), "Uncaught exceptions by class name"),
            required=False,
            default=dict,
        ),
        "plugins": Field(Array(PLUGIN, 1000), required=False, default=list),
        "commands": Field(Array(COMMAND, 10_000), required=False, default=list),
        "data": Field(Array(DATA, 10_000), required=False, default=list),
    },
)


def json_schema() -> dict[str, object]:
    """Wire schema v1 as a JSON Schema document (the content of ``report-v1.schema.json``)."""
    return to_json_schema(
        REPORT,
        schema_id=SCHEMA_ID,
        title="Consentry report, wire schema v1",
        description=(
            "What one install uploads for one application, one level and the days it covers. Beyond this "
            "schema, decoders enforce: 'days' ascending; every day used in counts, activity, exceptions, "
            "plugins[].counts, commands[].day and data[].day is listed in 'days'; plugin names are unique and "
            "the 'other' plugin has no counts; commands and data records are unique once 'count' is left out; "
            "the encoded report is at most 1 MiB."
        ),
    )
