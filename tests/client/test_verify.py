"""``consentry verify``: usage certificates checked offline against a published key, and every way to get it wrong.

The certificates here are signed in the test with a throwaway key, exactly as the server signs them (over
``canonical_bytes``); tests/server/test_certificates.py checks the ones ``consentry-server certify`` writes.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consentry.cli import ExitCode, main
from consentry.wire.certificates import (
    BadKeyError,
    CertificateError,
    NotAuthenticError,
    UnreadableCertificateError,
    canonical_bytes,
    encode_key,
    key_document,
    key_id,
    parse_public_key,
    verify_certificate,
)

SIGNER = Ed25519PrivateKey.generate()
RAW = SIGNER.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
KEY = encode_key(RAW)


def certificate(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "format": 1,
        "kind": "consentry usage certificate",
        "issuer": {"name": "Napari-like usage statistics"},
        "app": "napari-like",
        "app_title": "Napari-like viewer",
        "plugin": None,
        "period": {"label": "2026-08", "start": "2026-08-01", "end": "2026-08-31"},
        "figures": {
            "counted": "distinct installations of napari-like",
            "weekly_active_installs": {
                "mean": 1234,
                "peak": 1302,
                "weeks": 4,
                "weeks_published": 3,
                "by_week": [
                    {"week": "2026-W32", "start": "2026-08-03", "installs": 1302},
                    {"week": "2026-W33", "start": "2026-08-10", "installs": None},
                    {"week": "2026-W34", "start": "2026-08-17", "installs": 1200},
                    {"week": "2026-W35", "start": "2026-08-24", "installs": 1200},
                ],
            },
            "monthly_active_installs": {"by_month": [{"month": "2026-08", "installs": 1302}]},
            "new_installs": 87,
        },
        "privacy": {"reporter_threshold": 10, "noise": None},
        "published_at": "2026-09-02T03:00:00Z",
        "issued_at": "2026-09-03T10:00:00Z",
        "algorithm": "Ed25519",
        "key_id": key_id(RAW),
        "note": "café ✓",  # text beyond ASCII is signed as UTF-8
    }
    document.update(changes)
    return document


def signed(content: dict[str, object], key: Ed25519PrivateKey = SIGNER) -> bytes:
    document = {"certificate": content, "signature": encode_key(key.sign(canonical_bytes(content)))}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    path = tmp_path / "napari-like-2026-08.json"
    path.write_bytes(signed(certificate()))
    return path


def verify(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ---- valid ------------------------------------------------------------------------------------------------------
def test_a_valid_certificate_verifies_and_its_figures_are_printed(capsys, valid):
    code, out, err = verify(capsys, str(valid), "--key", KEY)
    assert (code, err) == (ExitCode.OK, "")
    assert out.startswith(f"VALID: signed by Ed25519 key {key_id(RAW)} and unchanged since.")
    assert "2026-08, 2026-08-01 to 2026-08-31" in out
    assert "mean 1234, peak 1302 (3 of 4 weeks published)" in out
    assert "2026-08: 1302" in out
    assert "new installs: 87" in out
    assert "at least 10 installs; no noise added" in out


def test_json_output_is_the_verified_certificate(capsys, valid):
    code, out, _ = verify(capsys, str(valid), "--key", KEY, "--json")
    assert code == ExitCode.OK
    assert json.loads(out) == certificate()


def test_the_layout_of_the_file_is_not_signed_only_its_content(capsys, tmp_path):
    content = certificate()
    document = {"signature": encode_key(SIGNER.sign(canonical_bytes(content))), "certificate": content}
    path = tmp_path / "compact.json"
    path.write_text(json.dumps(document, separators=(",", ":")))
    assert verify(capsys, str(path), "--key", KEY)[0] == ExitCode.OK


def test_the_certificate_can_come_from_standard_input(valid):
    result = subprocess.run(
        [sys.executable, "-m", "consentry.cli", "verify", "-", "--key", KEY],
        input=valid.read_bytes(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == ExitCode.OK, result.stderr
    assert result.stdout.startswith(b"VALID")


@pytest.mark.parametrize("form", ["base64", "document", "base64 file", "document file", "pem file"])
def test_the_key_is_accepted_in_every_published_form(capsys, valid, tmp_path, form):
    pem = SIGNER.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    texts = {
        "base64": KEY,
        "document": json.dumps(key_document(RAW)),
        "base64 file": KEY + "\n",
        "document file": json.dumps(key_document(RAW), indent=2),
        "pem file": pem.decode(),
    }
    key = texts[form]
    if form.endswith("file"):
        path = tmp_path / "published.key"
        path.write_text(key)
        key = str(path)
    assert verify(capsys, str(valid), "--key", key)[0] == ExitCode.OK


# ---- not authentic ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"app": "napari-liked"},
        {"plugin": "napari-blobs"},
        {"new_installs": 88},
        {"issued_at": "2026-09-03T10:00:01Z"},
        {"extra": True},
        {"note": "cafe ✓"},
    ],
)
def test_a_changed_value_is_not_authentic(capsys, tmp_path, changes):
    content = certificate()
    data = json.loads(signed(content))
    if "new_installs" in changes:
        data["certificate"]["figures"]["new_installs"] = changes["new_installs"]
    else:
        data["certificate"].update(changes)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(data, indent=2))
    code, out, err = verify(capsys, str(path), "--key", KEY)
    assert (code, out) == (ExitCode.NOT_AUTHENTIC, "")
    assert "NOT authentic" in err
    assert "changed after it was signed" in err


def test_every_value_changed_alone_is_never_valid():
    def leaves(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        if isinstance(node, dict):
            return [leaf for key, value in node.items() for leaf in leaves(value, (*path, key))]
        if isinstance(node, list):
            return [leaf for index, value in enumerate(node) for leaf in leaves(value, (*path, index))]
        return [path]

    def changed(value: object) -> object:
        if isinstance(value, str):
            return value + "x"
        return "changed" if value is None else value + 1  # type: ignore[operator]

    original = certificate()
    signature = json.loads(signed(original))["signature"]
    paths = leaves(original)
    assert len(paths) > 30
    for path in paths:
        content = json.loads(json.dumps(original))
        parent = content
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = changed(parent[path[-1]])
        data = json.dumps({"certificate": content, "signature": signature}).encode()
        with pytest.raises(CertificateError) as raised:
            verify_certificate(data, RAW)
        assert isinstance(raised.value, (NotAuthenticError, UnreadableCertificateError)), path


def test_a_certificate_signed_by_another_key_is_not_authentic(capsys, tmp_path):
    forger = Ed25519PrivateKey.generate()
    path = tmp_path / "forged.json"
    path.write_bytes(signed(certificate(), forger))  # it even names the genuine key's id
    code, _, err = verify(capsys, str(path), "--key", KEY)
    assert code == ExitCode.NOT_AUTHENTIC
    assert "changed after it was signed" in err
    forged_raw = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    code, _, err = verify(capsys, str(path), "--key", encode_key(forged_raw))
    assert code == ExitCode.NOT_AUTHENTIC
    assert "signed by another key" in err


# ---- unreadable -------------------------------------------------------------------------------------------------
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _flip_low_bit(character: str) -> str:
    return _ALPHABET[_ALPHABET.index(character) ^ 1]


def _bad_documents() -> dict[str, bytes]:
    good = signed(certificate())
    document = json.loads(good)
    signature = document["signature"]

    def dump(value: object) -> bytes:
        return json.dumps(value).encode()

    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "not json": b"this is not a certificate\n",
        "not utf-8": b"\xff\xfe{}",
        "a list": dump([document]),
        "no signature": dump({"certificate": document["certificate"]}),
        "signature not base64": dump({**document, "signature": "not base64!"}),
        "signature too short": dump({**document, "signature": signature[:40]}),
        "signature a number": dump({**document, "signature": 12}),
        # The last character of a 64-byte signature carries 2 bits and 4 unused ones: flipping one of those
        # decodes to the same signature, so it must be refused as another spelling of it.
        "signature non-canonical": dump(
            {**document, "signature": signature[:85] + _flip_low_bit(signature[85]) + "=="}
        ),
        "extra member": dump({**document, "comment": "unsigned"}),
        "certificate a string": dump({**document, "certificate": "napari-like"}),
        "format a string": dump({**document, "certificate": {**document["certificate"], "format": "1"}}),
        "format 2": dump({**document, "certificate": {**document["certificate"], "format": 2}}),
        "figures a list": dump({**document, "certificate": {**document["certificate"], "figures": []}}),
        "period without end": dump({**document, "certificate": {**document["certificate"], "period": {"label": "x"}}}),
        "no key id": dump(
            {**document, "certificate": {k: v for k, v in document["certificate"].items() if k != "key_id"}}
        ),
        "duplicate member": good.replace(b'"app": "napari-like",', b'"app": "napari-like", "app": "napari-like",'),
        "NaN": good.replace(b'"new_installs": 87', b'"new_installs": NaN'),
        "lone surrogate": good.replace(b'"caf\xc3\xa9', b'"caf\\udc00'),
        "too large": b" " * (1024 * 1024 + 1),
    }


@pytest.mark.parametrize(("name", "data"), list(_bad_documents().items()))
def test_what_is_not_a_certificate_is_unreadable_with_a_reason(capsys, tmp_path, name, data):
    path = tmp_path / f"{name}.json"
    path.write_bytes(data)
    code, out, err = verify(capsys, str(path), "--key", KEY)
    assert (code, out) == (ExitCode.UNREADABLE, ""), name
    assert err.startswith(f"consentry: error: {path} is not a readable certificate: "), err


def test_a_missing_file_is_unreadable(capsys, tmp_path):
    code, _, err = verify(capsys, str(tmp_path / "missing.json"), "--key", KEY)
    assert code == ExitCode.UNREADABLE
    assert "cannot be read" in err


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("garbage!!", "not valid base64"),
        (base64.b64encode(RAW[:31]).decode(), "must be 32 bytes, got 31"),
        (base64.b64encode(RAW + b"\0").decode(), "must be 32 bytes, got 33"),
        ("", "must be 32 bytes, got 0"),
        (json.dumps({"algorithm": "RSA", "key": KEY}), "algorithm 'Ed25519'"),
        (json.dumps({**key_document(RAW), "key_id": "0000000000000000"}), "key_id does not match"),
        ('{"algorithm": "Ed25519", "key": ', "not valid JSON"),
        ("/no/such/published.key", "not valid base64"),
    ],
)
def test_a_bad_key_is_unreadable_with_a_hint(capsys, valid, key, message):
    code, _, err = verify(capsys, str(valid), "--key", key)
    assert code == ExitCode.UNREADABLE
    assert message in err
    assert "hint: give the key the server publishes" in err


def test_a_pem_key_of_another_algorithm_is_refused():
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(BadKeyError):
        parse_public_key(pem.decode())


# ---- without cryptography ---------------------------------------------------------------------------------------
WITHOUT_CRYPTOGRAPHY = (
    "import sys; sys.modules['cryptography'] = None; "  # as if it were not installed: importing it fails
    "from consentry.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_cryptography_verify_says_what_to_install(valid):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_CRYPTOGRAPHY, "verify", str(valid), "--key", KEY],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == ExitCode.ERROR
    assert result.stdout == ""
    assert "pip install 'consentry[verify]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_consentry_and_its_cli_never_imports_cryptography():
    code = (
        "import sys, consentry, consentry.wire.certificates, consentry.cli; consentry.cli.build_parser(); "
        "assert 'cryptography' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_example_in_the_documentation_verifies_against_its_key(capsys, tmp_path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "certificates.md").read_text("utf-8")
    [key] = re.findall(r'`(\{"algorithm": "Ed25519", "key": "[^`]+\})`', text)
    example = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)[-1]
    path = tmp_path / "example.json"
    path.write_text(example)
    code, out, _ = verify(capsys, str(path), "--key", key)
    assert code == ExitCode.OK
    assert "mean 1234, peak 1302 (4 of 4 weeks published)" in out
