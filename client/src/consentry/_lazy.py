"""Names of a package imported from their modules on first use (PEP 562), so importing the package is free."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], names: list[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``, whose ``exports`` map names to modules."""

    def __getattr__(name: str) -> object:  # noqa: N807 - it is the module's __getattr__
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        __import__(module)  # not importlib.import_module: importlib itself would be one more import
        value = getattr(sys.modules[module], name)
        setattr(sys.modules[package], name, value)  # next time, a plain attribute
        return value

    def __dir__() -> list[str]:  # noqa: N807 - it is the module's __dir__
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
