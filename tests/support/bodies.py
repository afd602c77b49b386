"""Hostile request bodies shared by the ingest tests (native, OTLP, the seed formats)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = ["MIB", "chunked", "gzip_bomb"]

MIB = 1024 * 1024


def gzip_bomb(size: int = 50 * MIB) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 1000:1) without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(MIB)
    return b"".join([*(compressor.compress(chunk) for _ in range(size // MIB)), compressor.flush()])


def chunked(body: bytes) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked), 64 KiB at a time."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]
