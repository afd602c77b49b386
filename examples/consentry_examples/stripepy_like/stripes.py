"""The toy science of the stripepy-like tool: synthetic contact matrices and the stripes in them.

A contact matrix is a square table of counts, stored as text (one row per line). A "stripe" is a column whose
band just below the diagonal holds clearly more contacts than the average column does, which is, very roughly,
what StripePy looks for in Hi-C data. Pure Python, deterministic, small.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "BAND",
    "Matrix",
    "coarse",
    "find_stripes",
    "normalize",
    "pseudodistribution",
    "read_matrix",
    "sample_matrix",
    "write_matrix",
]

Matrix = list[list[float]]
#: How many bins below the diagonal make a column's band.
BAND = 5


def sample_matrix(name: str, size: int) -> Matrix:
    """A synthetic contact matrix for sample ``name``: decay with distance, noise, and three planted stripes."""
    rng = random.Random(name)  # the same sample every time
    stripes = set(rng.sample(range(size - BAND), 3))
    matrix = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1):
            value = 100.0 / (1 + i - j) + rng.uniform(0, 5)
            if j in stripes and i - j <= BAND:
                value *= 4
            matrix[i][j] = matrix[j][i] = round(value, 1)
    return matrix


def write_matrix(path: Path, matrix: Matrix) -> None:
    """Store ``matrix`` as text."""
    path.write_text("\n".join(" ".join(f"{value:g}" for value in row) for row in matrix) + "\n", encoding="utf-8")


def read_matrix(path: Path) -> Matrix:
    """Read a matrix written by :func:`write_matrix`; ``ValueError`` if it is not a square table of numbers."""
    rows = [[float(value) for value in line.split()] for line in path.read_text("utf-8").splitlines() if line.strip()]
    if not rows or any(len(row) != len(rows) for row in rows):
        raise ValueError(f"{path.name} is not a square contact matrix")
    return rows


def normalize(matrix: Matrix, method: str) -> Matrix:
    """Balance the matrix: ``NONE``; ``VC`` and ``VC_SQRT`` (vanilla coverage); ``KR`` and ``ICE`` (iterated)."""
    if method == "NONE":
        return matrix
    rounds = 10 if method in ("KR", "ICE") else 1
    power = 0.5 if method == "VC_SQRT" else 1.0
    for _ in range(rounds):
        sums = [sum(row) or 1.0 for row in matrix]
        mean = sum(sums) / len(sums)
        scale = [(total / mean) ** power for total in sums]
        matrix = [[value / (scale[i] * scale[j]) for j, value in enumerate(row)] for i, row in enumerate(matrix)]
    return matrix


def _band(matrix: Matrix, column: int) -> float:
    below = [matrix[row][column] for row in range(column + 1, min(column + 1 + BAND, len(matrix)))]
    return sum(below) / len(below) if below else 0.0


def find_stripes(matrix: Matrix, *, threads: int = 1, threshold: float = 1.5) -> list[dict[str, float]]:
    """The columns whose band is ``threshold`` times the median band or more, strongest first.

    The last columns, whose band the edge of the matrix cuts short, are left out.
    """
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        bands = list(pool.map(lambda column: _band(matrix, column), range(max(1, len(matrix) - BAND))))
    median = sorted(bands)[len(bands) // 2] or 1.0
    found = [
        {"column": column, "strength": round(band / median, 3)}
        for column, band in enumerate(bands)
        if band >= threshold * median
    ]
    return sorted(found, key=lambda stripe: -stripe["strength"])


def pseudodistribution(matrix: Matrix) -> list[float]:
    """The mean band of each column, scaled to at most 1 (what ``plot pseudodistribution`` draws)."""
    bands = [_band(matrix, column) for column in range(len(matrix))]
    top = max(bands) or 1.0
    return [round(band / top, 3) for band in bands]


def coarse(matrix: Matrix, bins: int = 8) -> Matrix:
    """The matrix summed into ``bins`` x ``bins`` blocks, on a log scale (what ``plot contact-map`` draws)."""
    step = math.ceil(len(matrix) / bins)
    out = []
    for i in range(0, len(matrix), step):
        row = []
        for j in range(0, len(matrix), step):
            block = sum(value for line in matrix[i : i + step] for value in line[j : j + step])
            row.append(round(math.log10(1 + block), 2))
        out.append(row)
    return out
