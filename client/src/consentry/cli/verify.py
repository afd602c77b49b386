"""``consentry verify FILE --key KEY``: check a usage certificate offline and print what it states."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from consentry.cli.failures import CliError, ExitCode

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]  # noqa: SLF001 - argparse's type for subcommands

__all__ = ["add_parser", "verify_command"]

_KEY_HINT = (
    "give the key the server publishes at /api/v1/certificates/key (or `consentry-server certify --show-key`): "
    "its base64 text, its JSON document, or a file holding either"
)


def add_parser(sub: Subparsers) -> None:
    """Register ``verify``."""
    verify = sub.add_parser(
        "verify",
        help="check a signed usage certificate against the server's published key",
        description="Check, offline, that the usage certificate FILE (written by `consentry-server certify`) was "
        "signed by KEY and not changed since by a single byte of its content, then print the figures it states. "
        "KEY is the key the server publishes (GET /api/v1/certificates/key): its base64 text, its JSON document, "
        "or a file holding either; take it from the server's site, not from whoever sent the certificate. Needs "
        "the cryptography library: pip install 'consentry[verify]'. Exit code 0: valid; 8: not authentic "
        "(changed, or signed by another key); 9: the certificate or the key cannot be read.",
    )
    verify.add_argument("file", metavar="FILE", help="the certificate (a JSON file; - reads standard input)")
    verify.add_argument("--key", required=True, metavar="KEY", help="the published key, or a file holding it")
    verify.add_argument("--json", action="store_true", help="print the verified certificate as JSON")


def _key(text: str) -> bytes:
    from consentry.wire.certificates import (  # noqa: PLC0415 - only this command needs it
        MAX_KEY_FILE_BYTES,
        BadKeyError,
        parse_public_key,
    )

    path = Path(text)
    source, what = text, "--key"
    try:
        if path.is_file():
            with path.open("rb") as file:
                source, what = file.read(MAX_KEY_FILE_BYTES + 1).decode("utf-8"), f"the key file {text}"
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"the key file {text} cannot be read: {error}", _KEY_HINT, ExitCode.UNREADABLE) from None
    try:
        return parse_public_key(source)
    except BadKeyError as error:
        raise CliError(f"{what}: {error}", _KEY_HINT, ExitCode.UNREADABLE) from None


def _read(name: str) -> bytes:
    from consentry.wire.certificates import MAX_CERTIFICATE_BYTES  # noqa: PLC0415

    try:
        if name == "-":
            return sys.stdin.buffer.read(MAX_CERTIFICATE_BYTES + 1)
        with Path(name).open("rb") as file:
            return file.read(MAX_CERTIFICATE_BYTES + 1)
    except OSError as error:
        raise CliError(f"{name} cannot be read: {error.strerror or error}", code=ExitCode.UNREADABLE) from None


def _number(value: object) -> str:
    return "not published (fewer installs than the threshold)" if value is None else str(value)


def _lines(certificate: Mapping[str, object]) -> list[str]:
    """The certificate as text; tolerant of members it does not know (it was signed, so it is shown as it is)."""

    def get(mapping: object, name: str) -> object:
        return mapping.get(name) if isinstance(mapping, Mapping) else None

    period = certificate["period"]
    figures = certificate["figures"]
    subject = str(certificate["app"]) + (f", plugin {certificate['plugin']}" if certificate.get("plugin") else "")
    lines = [
        f"application:  {subject}",
        f"period:       {get(period, 'label')}, {get(period, 'start')} to {get(period, 'end')}",
        f"counted:      {get(figures, 'counted')}",
    ]
    weekly = get(figures, "weekly_active_installs")
    if isinstance(weekly, Mapping):
        lines.append(
            f"weekly active installs: mean {_number(weekly.get('mean'))}, peak {_number(weekly.get('peak'))} "
            f"({weekly.get('weeks_published')} of {weekly.get('weeks')} weeks published)"
        )
    months = get(get(figures, "monthly_active_installs"), "by_month")
    if isinstance(months, list) and months:
        lines.append("monthly active installs:")
        lines += [f"  {get(month, 'month')}: {_number(get(month, 'installs'))}" for month in months]
    if isinstance(figures, Mapping) and "new_installs" in figures:
        lines.append(f"new installs: {_number(figures['new_installs'])}")
    for name, value in figures.items() if isinstance(figures, Mapping) else ():
        if name not in ("counted", "weekly_active_installs", "monthly_active_installs", "new_installs"):
            lines.append(f"{name}: {json.dumps(value, sort_keys=True)}")
    privacy = certificate.get("privacy")
    noise = get(privacy, "noise")
    noted = "no noise added" if noise is None else f"noise added: {json.dumps(noise, sort_keys=True)}"
    issuer = get(certificate.get("issuer"), "name")
    lines.append(f"privacy:      every number rests on at least {get(privacy, 'reporter_threshold')} installs; {noted}")
    lines.append(
        f"issued:       {certificate['issued_at']} by {issuer}, from data published {certificate.get('published_at')}"
    )
    return lines


def verify_command(args: argparse.Namespace) -> ExitCode:
    """Verify ``args.file`` against ``args.key``; print the certificate when it is authentic."""
    from consentry.wire import certificates  # noqa: PLC0415 - only this command needs it

    key = _key(args.key)
    data = _read(args.file)
    try:
        certificate = certificates.verify_certificate(data, key)
    except certificates.VerifierMissingError as error:
        raise CliError(str(error), f"install it with: {certificates.INSTALL_HINT}", ExitCode.ERROR) from None
    except certificates.UnreadableCertificateError as error:
        raise CliError(f"{args.file} is not a readable certificate: {error}", code=ExitCode.UNREADABLE) from None
    except certificates.BadKeyError as error:
        raise CliError(f"--key: {error}", _KEY_HINT, ExitCode.UNREADABLE) from None
    except certificates.NotAuthenticError as error:
        raise CliError(f"{args.file} is NOT authentic: {error}", code=ExitCode.NOT_AUTHENTIC) from None
    if args.json:
        sys.stdout.write(json.dumps(certificate, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return ExitCode.OK
    sys.stdout.write(
        f"VALID: signed by {certificate.get('algorithm', certificates.ALGORITHM)} key {certificate['key_id']} "
        "and unchanged since.\n"
    )
    sys.stdout.write("".join(line + "\n" for line in _lines(certificate)))
    return ExitCode.OK
