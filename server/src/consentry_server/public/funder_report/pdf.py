"""A PDF of a report, printed by headless Chromium through Playwright, where both are installed.

Neither is a dependency of the server: Playwright is the browser driver the project's browser tests use, and a
PDF engine of our own would be a heavy dependency for one optional file. Without either, the command says so
in one line. The page is given to the browser as a string and every request it might make is refused: the
report loads nothing, and printing it must not either.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "PdfError", "find_chromium", "write_pdf"]

#: The browser's switches: headless, no sandbox (it runs as the caller), and no traffic of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_CHROMIUM_VARIABLE = "CONSENTRY_CHROMIUM"
_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


class PdfError(RuntimeError):
    """No PDF can be printed here: the message says what is missing, in one line."""


def find_chromium() -> str | None:
    """The Chromium to print with: ``$CONSENTRY_CHROMIUM``, else a system Chromium, else ``None``."""
    named = os.environ.get(_CHROMIUM_VARIABLE)
    if named:
        return named if Path(named).is_file() else None
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return next((path for path in _CANDIDATES if Path(path).is_file()), None)


def write_pdf(html: str, destination: Path) -> None:
    """Print ``html`` to ``destination`` (A4, with the page's print stylesheet)."""
    try:
        from playwright.sync_api import Error, sync_playwright  # noqa: PLC0415 - optional
    except ImportError:
        raise PdfError("--pdf needs Playwright and Chromium: pip install playwright, and install chromium") from None
    chromium = find_chromium()
    if chromium is None:
        raise PdfError(
            f"--pdf needs Chromium: install it (Debian: apt install chromium) or set {_CHROMIUM_VARIABLE} to its path"
        )
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.abort())
                page.set_content(html, wait_until="load")
                page.emulate_media(media="print")
                page.pdf(path=str(destination), format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                browser.close()
    except Error as error:
        first = (str(error).strip().splitlines() or ["unknown error"])[0]
        raise PdfError(f"Chromium ({chromium}) could not print the PDF: {first}") from None
