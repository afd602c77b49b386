"""From an OpenTelemetry resource to what a report may say about where it ran: binned, and only if allowed.

A resource's attributes name the service (``service.name``: the registered application), its version
(``service.version``), the operating system (``os.type``, ``os.version``), the CPU architecture (``host.arch``),
the Python runtime (``process.runtime.name``, ``process.runtime.version``) and, as StripePy sends them, the
versions of dependencies (``dependency.<name>.version``). Each is binned to the wire schema's values and kept
only if some level of the application's manifest collects it. Everything else in a resource (host names,
process ids, ``service.instance.id``, SDK details) is never read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from consentry.wire.schema import APP_NAME, OTHER, SYSTEM_FIELDS, VERSION
from consentry_server.ingest.catalog import Catalog

__all__ = ["Source", "attribute_map", "bin_arch", "bin_os", "bin_os_version", "bin_python", "describe_resource"]

#: The OS families of the semantic conventions' ``os.type`` that the wire schema names.
_OS = {"linux": "linux", "darwin": "macos", "windows": "windows", "freebsd": "freebsd"}
#: ``host.arch`` as the semantic conventions spell it, and as ``platform.machine()`` does (StripePy sends that).
_ARCH = {
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "x64": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "x86": "x86",
    "i386": "x86",
    "i686": "x86",
    "arm32": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_PYTHONS = {"cpython": "cpython", "python": "cpython", "pypy": "pypy", "graalpy": "graalpy"}
#: Darwin kernel majors and the macOS major each shipped with (``os.version`` from ``platform.release()``).
_DARWIN = {19: "10", 20: "11", 21: "12", 22: "13", 23: "14", 24: "15", 25: "26"}
_MAJOR = re.compile(r"^(\d{1,4})(?:\.|$)")
_MAJOR_MINOR = re.compile(r"^(\d{1,2})\.(\d{1,3})(?:\.|$)")
_DEPENDENCY = re.compile(r"^dependency\.(.{1,100})\.version$")


def attribute_map(attributes: Iterable[KeyValue]) -> dict[str, AnyValue]:
    """Attributes by key; a key given twice keeps its first value."""
    out: dict[str, AnyValue] = {}
    for attribute in attributes:
        out.setdefault(attribute.key, attribute.value)
    return out


def _text(value: AnyValue | None) -> str | None:
    return value.string_value if value is not None and value.WhichOneof("value") == "string_value" else None


def bin_os(os_type: str | None) -> str | None:
    """``os.type`` as the wire schema's OS family."""
    return None if os_type is None else _OS.get(os_type.strip().lower(), "other")


def bin_os_version(family: str | None, version: str | None) -> str | None:
    """The OS major version as a native report gives it, where ``os.version`` says it unambiguously.

    Windows gives its release (``10``, ``11``); macOS its Darwin kernel version (``23.1.0`` is macOS 14) or its
    own (``14.1``). On Linux and the rest, ``os.version`` is a kernel release, not the distribution's version a
    native report carries, so it is left out.
    """
    match = _MAJOR.match(version.strip()) if version else None
    if match is None:
        return None
    major = int(match.group(1))
    if family == "windows":
        return str(major)
    if family == "macos":
        return _DARWIN.get(major) or (str(major) if 10 <= major <= 15 or 26 <= major <= 99 else None)  # noqa: PLR2004
    return None


def bin_arch(arch: str | None) -> str | None:
    """``host.arch`` as the wire schema's architecture."""
    return None if arch is None else _ARCH.get(arch.strip().lower(), "other")


def bin_python(runtime: str | None, version: str | None) -> tuple[str | None, str | None]:
    """``(python, python_impl)`` from ``process.runtime.name`` and ``.version``; nothing for other runtimes."""
    implementation = _PYTHONS.get((runtime or "").strip().lower())
    if implementation is None:
        return None, None
    match = _MAJOR_MINOR.match((version or "").strip())
    return (f"{match.group(1)}.{match.group(2)}" if match else None), implementation


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Source:
    """A resource as a report may describe it: the registered application, its version, binned fields."""

    catalog: Catalog
    app_version: str
    system: Mapping[str, str]
    dependencies: Mapping[str, str]

    def key(self) -> tuple[object, ...]:
        """Equal for resources a report cannot tell apart: they share a reporter id within one export."""
        return (
            self.catalog.app,
            self.app_version,
            tuple(sorted(self.system.items())),
            tuple(sorted(self.dependencies.items())),
        )


def _system(attributes: Mapping[str, AnyValue], collected: set[str]) -> dict[str, str]:
    family = bin_os(_text(attributes.get("os.type")))
    python, implementation = bin_python(
        _text(attributes.get("process.runtime.name")), _text(attributes.get("process.runtime.version"))
    )
    values = {
        "os": family,
        "os_version": bin_os_version(family, _text(attributes.get("os.version"))),
        "arch": bin_arch(_text(attributes.get("host.arch"))),
        "python": python,
        "python_impl": implementation,
    }
    system = {}
    for name, value in values.items():
        if value is not None and name in collected:
            try:
                system[name] = str(SYSTEM_FIELDS[name].check(value, name))
            except ValueError:
                continue
    return system


def _dependencies(attributes: Mapping[str, AnyValue], names: Iterable[str]) -> dict[str, str]:
    """``dependency.<name>.version`` of the ``names`` asked for (compared as PEP 503 normalises them)."""
    named = {_normalized(name): name for name in names}
    dependencies: dict[str, str] = {}
    for key, attribute in attributes.items():
        match = _DEPENDENCY.match(key)
        package = named.get(_normalized(match.group(1))) if match else None
        installed = _text(attribute)
        if package is not None and installed is not None and VERSION.regex.fullmatch(installed):
            dependencies.setdefault(package, installed)
    return dependencies


def describe_resource(resource: Resource, lookup: Callable[[str], Catalog | None]) -> Source | str:
    """The :class:`Source` of ``resource``, or the name of its service when that is not a registered application.

    ``lookup`` finds the catalog of a registered application by name.
    """
    attributes = attribute_map(resource.attributes)
    service = _text(attributes.get("service.name")) or ""
    catalog = lookup(service) if APP_NAME.regex.fullmatch(service) else None
    if catalog is None:
        return service
    levels = catalog.latest.levels
    system = _system(attributes, {name for level in levels for name in level.system})
    dependencies = _dependencies(attributes, [name for level in levels for name in level.dependencies])
    version = _text(attributes.get("service.version"))
    app_version = version if version is not None and VERSION.regex.fullmatch(version) else OTHER
    return Source(catalog, app_version, system, dependencies)
