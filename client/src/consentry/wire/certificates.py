"""Usage certificates: checking, offline, that one was signed by a server's published key and never changed.

A certificate is a JSON file ``{"certificate": {...}, "signature": "BASE64"}`` written by
``consentry-server certify`` (the format is described in ``docs/certificates.md``). The signature is Ed25519
over :func:`canonical_bytes` of the certificate object: UTF-8 JSON with sorted keys and no whitespace. The
format is defined here, once: the server signs these bytes and :func:`verify_certificate` checks them, so the
layout of the file (indentation, order of members) does not matter but every key and value does.

Reading is strict, so that what a person reads in the file is what was signed: a member given twice, ``NaN``,
members beside ``certificate`` and ``signature``, a signature or key in non-canonical base64 are refused.

Checking a signature needs the ``cryptography`` library, an optional extra (``pip install 'consentry[verify]'``)
imported only inside :func:`verify_certificate`: importing :mod:`consentry` stays free of dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from consentry.wire import strict_json

__all__ = [
    "ALGORITHM",
    "CERTIFICATE_FORMAT",
    "INSTALL_HINT",
    "MAX_CERTIFICATE_BYTES",
    "MAX_KEY_FILE_BYTES",
    "BadKeyError",
    "CertificateError",
    "NotAuthenticError",
    "UnreadableCertificateError",
    "VerifierMissingError",
    "canonical_bytes",
    "encode_key",
    "key_document",
    "key_id",
    "parse_public_key",
    "read_certificate",
    "verify_certificate",
]

#: The version of the certificate format this module reads and the server writes.
CERTIFICATE_FORMAT = 1
ALGORITHM = "Ed25519"
INSTALL_HINT = "pip install 'consentry[verify]'"
_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
#: Certificates are a few kilobytes; anything much larger is not one.
MAX_CERTIFICATE_BYTES = 1024 * 1024
#: The largest key file read (a published key document is a few hundred bytes).
MAX_KEY_FILE_BYTES = 64 * 1024
#: DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): ``-----BEGIN PUBLIC KEY-----`` files are this + key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_REQUIRED = {"app": str, "period": dict, "figures": dict, "issued_at": str, "key_id": str}
_JSON_TYPES = {str: "a string", dict: "a JSON object"}
_PERIOD = ("label", "start", "end")


class CertificateError(ValueError):
    """A certificate could not be verified; the message says why."""


class UnreadableCertificateError(CertificateError):
    """The input is not a certificate this version can read: not JSON, wrong shape, unknown format."""


class BadKeyError(CertificateError):
    """The key given is not an Ed25519 public key (base64 of 32 bytes, a key document or a PEM public key)."""


class NotAuthenticError(CertificateError):
    """The signature does not match: the certificate was changed after signing, or another key signed it."""


class VerifierMissingError(CertificateError):
    """The optional ``cryptography`` library, needed to check signatures, is not installed."""


def canonical_bytes(certificate: Mapping[str, object]) -> bytes:
    """The bytes a signature covers: UTF-8 JSON with sorted keys, no whitespace, no ``NaN``."""
    text = json.dumps(certificate, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def key_id(public_key: bytes) -> str:
    """A short name of a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def encode_key(public_key: bytes) -> str:
    """A raw public key as published: standard base64 of its 32 bytes."""
    return base64.b64encode(public_key).decode("ascii")


def key_document(public_key: bytes) -> dict[str, str]:
    """The published key as a JSON-ready document: algorithm, key (base64) and key id."""
    return {"algorithm": ALGORITHM, "key": encode_key(public_key), "key_id": key_id(public_key)}


def _base64(text: object, size: int, what: str, error: type[CertificateError]) -> bytes:
    """Strict, canonical base64 of exactly ``size`` bytes (so one value has one spelling)."""
    if not isinstance(text, str):
        raise error(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:
        raise error(f"{what} is not valid base64") from None
    if len(raw) != size:
        raise error(f"{what} must be {size} bytes, got {len(raw)}")
    if encode_key(raw) != text:
        raise error(f"{what} is not in canonical base64")
    return raw


def _loads(text: str) -> object:
    try:
        return strict_json.loads(text)
    except strict_json.StrictJSONError as error:
        raise UnreadableCertificateError(str(error)) from None


def parse_public_key(text: str) -> bytes:
    """The raw 32 bytes of a published key given as base64, as a key document (JSON) or as a PEM public key."""
    text = text.strip()
    if text.startswith("{"):
        try:
            document = _loads(text)
        except UnreadableCertificateError as error:
            raise BadKeyError(f"the key document is {error}") from None
        if not isinstance(document, dict) or document.get("algorithm") != ALGORITHM:
            raise BadKeyError(f"a key document must be a JSON object with algorithm {ALGORITHM!r} and key")
        raw = _base64(document.get("key"), _KEY_BYTES, "the key", BadKeyError)
        if "key_id" in document and document["key_id"] != key_id(raw):
            raise BadKeyError("the key document's key_id does not match its key")
        return raw
    if text.startswith("-----BEGIN PUBLIC KEY-----") and text.endswith("-----END PUBLIC KEY-----"):
        body = "".join(text.splitlines()[1:-1])
        der = _base64(body, len(_SPKI_PREFIX) + _KEY_BYTES, "the PEM public key", BadKeyError)
        if not der.startswith(_SPKI_PREFIX):
            raise BadKeyError("the PEM public key is not an Ed25519 key")
        return der[len(_SPKI_PREFIX) :]
    return _base64(text, _KEY_BYTES, "the key", BadKeyError)


def read_certificate(data: bytes) -> tuple[dict[str, object], bytes]:
    """The certificate object and the signature of a certificate file, after checking their shape."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise UnreadableCertificateError(f"larger than {MAX_CERTIFICATE_BYTES} bytes: not a certificate")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableCertificateError("not UTF-8 text") from None
    document = _loads(text)
    if not isinstance(document, dict) or set(document) != {"certificate", "signature"}:
        raise UnreadableCertificateError('a certificate is a JSON object with exactly "certificate" and "signature"')
    certificate = document["certificate"]
    if not isinstance(certificate, dict):
        raise UnreadableCertificateError('"certificate" must be a JSON object')
    signature = _base64(document["signature"], _SIGNATURE_BYTES, '"signature"', UnreadableCertificateError)
    version = certificate.get("format")
    if type(version) is not int:
        raise UnreadableCertificateError('"certificate.format" must be an integer')
    if version != CERTIFICATE_FORMAT:
        newer = "; a newer consentry may read it" if version > CERTIFICATE_FORMAT else ""
        raise UnreadableCertificateError(
            f"this consentry reads certificate format {CERTIFICATE_FORMAT}, not format {version}{newer}"
        )
    for name, kind in _REQUIRED.items():
        if type(certificate.get(name)) is not kind:
            raise UnreadableCertificateError(f'"certificate.{name}" is missing or not {_JSON_TYPES[kind]}')
    period = certificate["period"]
    if not isinstance(period, dict) or not all(isinstance(period.get(name), str) for name in _PERIOD):
        raise UnreadableCertificateError('"certificate.period" must have label, start and end strings')
    try:
        canonical_bytes(certificate)
    except UnicodeEncodeError:
        raise UnreadableCertificateError("a string holds an unpaired surrogate (\\ud800-\\udfff)") from None
    return certificate, signature


def verify_certificate(data: bytes, public_key: bytes) -> dict[str, object]:
    """The certificate object of ``data`` if ``public_key`` signed exactly it; else raise why not.

    Raises :class:`VerifierMissingError` without ``cryptography``, :class:`UnreadableCertificateError` when
    ``data`` is not a certificate, :class:`BadKeyError` for a key that is not 32 bytes, and
    :class:`NotAuthenticError` when the key id or the signature does not match.
    """
    try:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - an optional dependency
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415
    except ImportError:
        raise VerifierMissingError(f"checking a signature needs the cryptography library: {INSTALL_HINT}") from None
    if len(public_key) != _KEY_BYTES:
        raise BadKeyError(f"an {ALGORITHM} public key is {_KEY_BYTES} bytes, got {len(public_key)}")
    certificate, signature = read_certificate(data)
    if certificate["key_id"] != key_id(public_key):
        raise NotAuthenticError(
            f"signed by another key: the certificate names key {certificate['key_id']}, "
            f"the key given is {key_id(public_key)}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical_bytes(certificate))
    except InvalidSignature:
        raise NotAuthenticError(
            "the signature does not match: the certificate was changed after it was signed"
        ) from None
    return certificate
