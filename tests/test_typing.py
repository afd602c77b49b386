"""The documented public usage type-checks (tests/typing/), and a misuse of it is caught: the check can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent
USAGE = Path(__file__).with_name("typing") / "public_usage.py"
OPTIONS = ["--python-version", "3.11", "--strict", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml")]

pytestmark = pytest.mark.slow


def check(*files: Path) -> tuple[str, int]:
    out, err, status = mypy_api.run([*OPTIONS, *map(str, files)])
    return out + err, status


def test_the_documented_public_usage_type_checks() -> None:
    output, status = check(USAGE)
    assert status == 0, output


def test_a_misuse_of_the_public_api_is_reported(tmp_path: Path) -> None:
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        "import consentry\n"
        "telemetry = consentry.init('my_app/telemetry.toml')\n"
        "telemetry.count(3)\n"  # an event is named by a string
        "from consentry import FixedClock\n"  # not public: consentry.testing has it
    )
    output, status = check(misuse)
    assert status == 1
    assert 'Argument 1 to "count"' in output
    assert 'Module "consentry" has no attribute "FixedClock"' in output
