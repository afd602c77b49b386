"""The server's secret that turns the batch ids of uploads into reporter ids that cannot be linked back to them.

dfx uploads carry no install id, only a random batch id that it sends again when it retries. The reporter id of
a batch is HMAC-SHA256 of the batch id (with the tool and its version) under a key only the server holds, cut
to 128 bits: a retry of a batch gets the same reporter id, so native ingest stores it once, while the stored id
cannot be recomputed from a batch id, nor linked to one, without the key.

The key is 32 random bytes in the file of the ``batch_key`` setting (default: ``batch-key`` beside a SQLite
database, else in ``consentry-data``), created on first use with mode 0600 and never replaced. Every host
that shares one database must be given the same file, or a retry that reaches another host counts twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from consentry_server.config import Settings
from consentry_server.secret_files import create_once

__all__ = ["batch_key_path", "batch_reporter", "load_batch_key"]

_KEY_BYTES = 32
_MIN_KEY_BYTES = 16
_MAX_KEY_BYTES = 4096


def batch_key_path(settings: Settings) -> Path:
    """The key file: the ``batch_key`` setting, else ``batch-key`` in the data folder."""
    if settings.batch_key:
        return Path(settings.batch_key)
    return (settings.sqlite_path.parent if settings.sqlite_path else Path("consentry-data")) / "batch-key"


def _create(path: Path) -> bytes:
    """A new key in ``path`` (mode 0600); if another process created one meanwhile, that one.

    Never replaces a key: the reporter ids of batches sent before must stay the same.
    """
    key = secrets.token_bytes(_KEY_BYTES)
    return key if create_once(path, key) else _read(path)


def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        key = file.read(_MAX_KEY_BYTES + 1)
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise OSError(f"batch key {path}: must hold {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes")
    return key


def load_batch_key(path: Path) -> bytes:
    """The key in ``path``, created if there is none; raises :class:`OSError` if it cannot be read or made."""
    try:
        return _read(path)
    except FileNotFoundError:
        return _create(path)


def batch_reporter(key: bytes, *parts: str) -> str:
    """The reporter id of ``parts`` (tool, batch id, version): 32 hex digits, as the wire format wants."""
    message = "\n".join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
