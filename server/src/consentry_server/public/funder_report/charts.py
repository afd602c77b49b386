"""Charts as inline SVG, drawn on the server: no script, no network, printable.

A number that was not published is drawn as a hatched "hidden" column, never as a bar of zero. Every bar
carries its number (``data-value``) and a ``<title>``, so the chart reads the same to a screen reader and a test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "column_chart"]

_WIDTH = 720
_HIDDEN = "hidden"
_LONGEST_LABEL = 32  # characters of a bar's label shown before an ellipsis


def _nice_top(value: int) -> int:
    """A round number at or above ``value`` for the top of an axis (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _text(x: float, y: float, text: str, **attributes: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def _open(chart_id: str, title: str, height: int) -> str:
    """The ``<svg>`` element's start and its title."""
    name = escape(chart_id)
    return (
        f'<svg id="{name}" class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="{name}-title" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{name}-title">{escape(title)}</title>'
    )


def column_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int | None], unit: str) -> str:
    """Vertical columns, one per label (weeks); ``None`` is drawn hatched and labelled hidden."""
    height, left, bottom, top = 260, 52, 46, 16
    plot_w, plot_h = _WIDTH - left - 12, height - top - bottom
    peak = _nice_top(max((v for v in values if v is not None), default=0))
    step = plot_w / max(len(values), 1)
    bar = max(step * 0.7, 2.0)
    parts = [
        _open(chart_id, title, height),
        (
            f'<defs><pattern id="{escape(chart_id)}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern></defs>'
        ),
    ]
    for tick in range(5):
        level = peak * tick // 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(_text(left - 6, y + 4, f"{level:,}", class_="tick", text_anchor="end"))
    every = max(1, math.ceil(len(labels) / 14))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + index * step + (step - bar) / 2
        if value is None:
            parts.append(
                f'<rect x="{x:.1f}" y="{top}" width="{bar:.1f}" height="{plot_h}" class="hidden-bar" '
                f'fill="url(#{escape(chart_id)}-hatch)" data-label="{escape(label)}" data-value="{_HIDDEN}">'
                f"<title>{escape(label)}: {_HIDDEN}</title></rect>"
            )
        else:
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" class="bar" '
                f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}: {value:,} {escape(unit)}'
                "</title></rect>"
            )
        if index % every == 0:
            parts.append(_text(x + bar / 2, height - bottom + 16, label.split("-", 1)[-1], class_="tick",
                               text_anchor="middle"))  # fmt: skip
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, int]], unit: str) -> str:
    """Horizontal bars with their labels and numbers, largest first as given."""
    row, left, right = 24, 210, 70
    height = max(row * len(items) + 8, 32)
    peak = max((value for _, value in items), default=1) or 1
    plot_w = _WIDTH - left - right
    parts = [_open(chart_id, title, height)]
    for index, (label, value) in enumerate(items):
        y = 4 + index * row
        w = plot_w * value / peak
        shown = label if len(label) <= _LONGEST_LABEL else label[: _LONGEST_LABEL - 1] + "…"
        parts.append(_text(left - 8, y + 15, shown, class_="label", text_anchor="end"))
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" class="bar" data-label="{escape(label)}" '
            f'data-value="{value}"><title>{escape(label)}: {value:,} {escape(unit)}</title></rect>'
        )
        parts.append(_text(left + w + 6, y + 15, f"{value:,}", class_="value"))
    parts.append("</svg>")
    return "".join(parts)
