"""Binned system information, computed lazily and only for the fields the consented levels collect.

Every value is coarse on purpose: a family and a major version, a range, a vendor. Nothing here reads host
names, user names, paths, serial numbers or anything else that could single out a machine.
"""

from __future__ import annotations

import os
import re
import sys

from consentry.wire.schema import SYSTEM_FIELDS, VERSION

# A recorder imports this module when it starts; platform (which compiles a dozen patterns when imported) and
# pathlib are imported by the probes that need them.
TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "bin_cpus",
    "bin_memory",
    "bin_screen_scale",
    "bin_screen_width",
    "bin_screens",
    "collect_system",
    "dependency_versions",
]

_GIB = 1024**3


def bin_cpus(count: int | None) -> str | None:
    """Logical CPUs in the ranges of the wire schema."""
    if count is None or count < 1:
        return None
    for upper, label in ((1, "1"), (2, "2"), (4, "3-4"), (8, "5-8"), (16, "9-16"), (32, "17-32"), (64, "33-64")):
        if count <= upper:
            return label
    return "65+"


def bin_memory(total_bytes: int | None) -> str | None:
    """Physical memory in the ranges of the wire schema (powers of two, in GiB)."""
    if total_bytes is None or total_bytes <= 0:
        return None
    gib = total_bytes / _GIB
    bins = ((2, "<2GB"), (4, "2-4GB"), (8, "4-8GB"), (16, "8-16GB"), (32, "16-32GB"), (64, "32-64GB"))
    for upper, label in bins:
        # Machines report a little less than their nominal size: 15.6 GiB is a 16 GB machine.
        if gib < upper * 0.95:
            return label
    return "64-128GB" if gib < 128 * 0.95 else "128GB+"


def bin_screens(count: int) -> str:
    """Number of screens: 0, 1, 2 or 3+."""
    return str(count) if 0 <= count <= 2 else "3+"  # noqa: PLR2004 - the bins of the wire schema


def bin_screen_width(pixels: int) -> str:
    """Width of the main screen in logical pixels."""
    for upper, label in ((1280, "<1280"), (1920, "1280-1919"), (2560, "1920-2559"), (3840, "2560-3839")):
        if pixels < upper:
            return label
    return "3840+"


def bin_screen_scale(scale: float) -> str:
    """Display scaling, binned down: 1.25 means 1.25 <= scale < 1.5."""
    for lower, label in ((3.0, "3+"), (2.0, "2"), (1.5, "1.5"), (1.25, "1.25")):
        if scale >= lower:
            return label
    return "1"


def _os(name: str = sys.platform) -> str:
    for prefix, family in (("linux", "linux"), ("darwin", "macos"), ("win32", "windows"), ("freebsd", "freebsd")):
        if name.startswith(prefix):
            return family
    return "other"


def _token(text: str) -> str | None:
    token = re.sub(r"[^a-z0-9._-]", "", text.lower())[:32]
    return token if token and token[0].isalnum() else None


def _os_version() -> str | None:
    import platform  # noqa: PLC0415 - see the imports

    family = _os()
    if family == "macos":
        return _token(platform.mac_ver()[0].split(".")[0])
    if family == "windows":
        return _token(platform.release())
    if family == "linux":
        try:
            release = platform.freedesktop_os_release()
        except OSError:
            return None
        distro = release.get("ID", "linux")
        major = release.get("VERSION_ID", "").split(".")[0]
        return _token(f"{distro}-{major}" if major else distro)
    return _token(platform.release().split(".")[0])


def _arch() -> str:
    import platform  # noqa: PLC0415 - see the imports

    machine = platform.machine().lower()
    aliases = {
        "amd64": "x86_64",
        "x86_64": "x86_64",
        "x64": "x86_64",
        "arm64": "arm64",
        "aarch64": "arm64",
        "i386": "x86",
        "i686": "x86",
        "x86": "x86",
        "armv7l": "arm",
        "armv6l": "arm",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }
    return aliases.get(machine, "other")


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gpu() -> str | None:
    from pathlib import Path  # noqa: PLC0415 - see the imports

    if sys.platform == "darwin" and _arch() == "arm64":
        return "apple"
    vendors = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
    found = None
    for card in sorted(Path("/sys/class/drm").glob("card[0-9]*/device/vendor")):
        try:
            vendor = vendors.get(card.read_text().strip(), "other")
        except OSError:
            continue
        if found is None or found == "intel":  # a discrete GPU wins over an integrated one
            found = vendor
    return found


def _installer(distribution: str | None) -> str | None:
    from pathlib import Path  # noqa: PLC0415 - see the imports

    if getattr(sys, "frozen", False):
        return "bundle"
    if (Path(sys.prefix) / "conda-meta").is_dir():
        return "conda"
    if "pipx" in Path(sys.prefix).parts:
        return "pipx"
    if distribution:
        import importlib.metadata  # noqa: PLC0415 - heavy, and rarely needed

        try:
            installer = (importlib.metadata.distribution(distribution).read_text("INSTALLER") or "").strip().lower()
        except importlib.metadata.PackageNotFoundError:
            installer = ""
        if installer in ("pip", "uv", "conda"):
            return installer
        if installer:
            return "system" if installer in ("debian", "rpm", "dpkg") else "other"
    return None


def _python_impl() -> str:
    name = sys.implementation.name
    return name if name in ("cpython", "pypy", "graalpy") else "other"


def collect_system(
    fields: Iterable[str], *, distribution: str | None = None, supplied: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The binned values of ``fields``; a field that cannot be determined is left out.

    ``supplied`` holds values the host application knows better (screens, screen size and scaling, interface),
    already binned.
    """
    probes: dict[str, Callable[[], str | None]] = {
        "os": _os,
        "os_version": _os_version,
        "arch": _arch,
        "python": lambda: f"{sys.version_info.major}.{sys.version_info.minor}",
        "python_impl": _python_impl,
        "cpus": lambda: bin_cpus(os.cpu_count()),
        "memory": lambda: bin_memory(_memory()),
        "gpu": _gpu,
        "installer": lambda: _installer(distribution),
    }
    given = dict(supplied or {})
    out: dict[str, str] = {}
    for name in fields:
        value = given.get(name)
        if value is None and name in probes:
            try:
                value = probes[name]()
            except Exception:  # noqa: BLE001 - an exotic platform leaves a field out, nothing more
                value = None
        node = SYSTEM_FIELDS.get(name)
        if value is None or node is None:
            continue
        try:
            out[name] = str(node.check(value, name))
        except ValueError:
            continue
    return out


def dependency_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names``; missing ones, and versions the wire schema cannot carry, are left out."""
    names = list(names)
    if not names:
        return {}
    import importlib.metadata  # noqa: PLC0415 - heavy, and rarely needed

    out: dict[str, str] = {}
    for name in names:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if VERSION.regex.fullmatch(version):
            out[name] = version
    return out
