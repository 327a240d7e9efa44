"""Charts as inline SVG written by hand: no JavaScript, no CDN, no plotting dependency.

The report must open from a mail attachment or a file share, offline, on a
phone, and print; an ``<svg>`` with a ``viewBox`` scales to any width and
prints as vectors. Each mark carries a ``<title>`` (the exact number on hover
or long-press) and every chart sits next to a table with the same numbers, so
nothing is only readable as a picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 520, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 18, 34

# Colour-blind-safe qualitative palette (Okabe–Ito), assigned to sources in a fixed order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
SENTIMENT_STYLE = {  # colour, dash pattern, marker: lines differ by more than colour
    "negative": ("#C0392B", "", "circle"),
    "neutral": ("#7F8C8D", "6 4", "square"),
    "positive": ("#1E8449", "2 3", "diamond"),
}


def source_colours(sources: Sequence[str]) -> dict[str, str]:
    """The same source gets the same colour in every brand's chart."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(set(sources)))}


def _num(value: float) -> str:
    """Compact coordinates: the SVG stays small and byte-for-byte reproducible."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ceiling(value: float) -> float:
    """Smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (at least 1): round axis ends."""
    if value <= 1:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if value <= step * exp:
            return step * exp
    return 10.0 * exp


def count_ticks(top: float) -> list[float]:
    """Grid lines for a count axis: whole numbers only (4, 5 or 2 steps), never a "2" that means 2.5."""
    for steps in (4, 5, 2):
        if (top / steps).is_integer():
            return [top * k / steps for k in range(steps + 1)]
    return [0.0, top]


def _fmt_int(value: float) -> str:
    return f"{round(value):,}"


AXIS_CHAR_W = 9.5  # px per character of an axis label at the phone font size (15 px), with room to spare


def left_margin(labels: Sequence[str]) -> int:
    """Room for the longest y-axis label, so "200,000" is never cut to "00,000" (at least ``LEFT``)."""
    longest = max((len(t) for t in labels), default=0)
    return max(LEFT, round(longest * AXIS_CHAR_W) + 10)


@dataclass(frozen=True, slots=True)
class _Frame:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT

    @property
    def plot_w(self) -> float:
        return self.width - self.left - RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - TOP - BOTTOM

    def y(self, value: float, top: float) -> float:
        return TOP + self.plot_h * (1 - value / top)


def _open(chart_id: str, title: str, desc: str, frame: _Frame) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


def _grid(frame: _Frame, top: float, ticks: Sequence[float], label: str = "{}") -> list[str]:
    out = []
    for t in ticks:
        y = _num(frame.y(t, top))
        out.append(f'<line class="grid" x1="{frame.left}" x2="{frame.width - RIGHT}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="axis" x="{frame.left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                   f"{escape(label.format(_fmt_int(t)))}</text>")
    return out


def _x_labels(frame: _Frame, labels: Sequence[str]) -> list[str]:
    slot = frame.plot_w / max(len(labels), 1)
    return [
        f'<text class="axis" x="{_num(frame.left + slot * (i + 0.5))}" y="{frame.height - 12}" '
        f'text-anchor="middle">{escape(text)}</text>'
        for i, text in enumerate(labels)
    ]


# Fills that differ by more than colour (WCAG 1.4.1): a reader who cannot tell the colours apart, or
# holds a black-and-white print, still tells the stacks apart; each segment also carries its number.
PATTERNS = ("solid", "hatch", "dots", "cross")
SEGMENT_LABEL_MIN_H = 15  # px of a segment below which its number would not fit inside it


def _pattern_defs(chart_id: str, colours: Mapping[str, str], patterns: Mapping[str, str]) -> tuple[list[str],
                                                                                               dict[str, str]]:
    """``<defs>`` for the patterned keys, and the ``fill`` value of every key."""
    defs, fills = [], {}
    for n, (key, colour) in enumerate(colours.items()):
        kind = patterns.get(key, "solid")
        if kind == "solid":
            fills[key] = colour
            continue
        pid = f"{chart_id}-p{n}"
        fills[key] = f"url(#{pid})"
        if kind == "hatch":
            marks = '<line x1="0" y1="0" x2="0" y2="7" stroke="#fff" stroke-width="3"/>'
            transform = ' patternTransform="rotate(45)"'
        elif kind == "cross":
            marks = ('<line x1="0" y1="0" x2="0" y2="7" stroke="#fff" stroke-width="2"/>'
                     '<line x1="0" y1="0" x2="7" y2="0" stroke="#fff" stroke-width="2"/>')
            transform = ' patternTransform="rotate(45)"'
        else:
            marks = '<circle cx="3.5" cy="3.5" r="1.6" fill="#fff"/>'
            transform = ""
        defs.append(f'<pattern id="{pid}" width="7" height="7" patternUnits="userSpaceOnUse"{transform}>'
                    f'<rect width="7" height="7" fill="{colour}"/>{marks}</pattern>')
    return ([f"<defs>{''.join(defs)}</defs>"] if defs else []), fills


def stacked_bars(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Mapping[str, int]],
                 colours: Mapping[str, str], *, highlight_last: bool = False,
                 patterns: Mapping[str, str] | None = None, label_segments: bool = False) -> str:
    """One bar per label, stacked by key (e.g. mentions per day by source), total on top.

    ``patterns`` gives keys a fill from ``PATTERNS`` besides their colour;
    ``label_segments`` writes each segment's number inside it when it fits.
    """
    totals = [sum(s.values()) for s in series]
    top = nice_ceiling(max(totals, default=0))
    ticks = count_ticks(top)
    frame = _Frame(left=left_margin([_fmt_int(t) for t in ticks]))
    desc = "; ".join(f"{lab}: {tot:,}" + (" (" + ", ".join(f"{k} {n:,}" for k, n in s.items() if n) + ")"
                                          if label_segments and tot else "")
                     for lab, tot, s in zip(labels, totals, series, strict=True))
    defs, fills = _pattern_defs(chart_id, colours, patterns or {})
    out = _open(chart_id, title, desc, frame) + defs + _grid(frame, top, ticks)
    slot = frame.plot_w / max(len(labels), 1)
    bar_w = slot * 0.62
    for i, (lab, values) in enumerate(zip(labels, series, strict=True)):
        x = frame.left + slot * i + (slot - bar_w) / 2
        base = 0
        cls = ' class="dim"' if highlight_last and i < len(labels) - 1 else ""
        out.append(f"<g{cls}>")
        for key in colours:
            n = values.get(key, 0)
            if not n:
                continue
            y1, y0 = frame.y(base + n, top), frame.y(base, top)
            out.append(f'<rect x="{_num(x)}" y="{_num(y1)}" width="{_num(bar_w)}" height="{_num(y0 - y1)}" '
                       f'fill="{fills[key]}" stroke="#fff" stroke-width="1">'
                       f'<title>{escape(f"{lab} · {key}: {n:,}")}</title></rect>')
            if label_segments and y0 - y1 >= SEGMENT_LABEL_MIN_H:
                out.append(f'<text class="seg" x="{_num(x + bar_w / 2)}" y="{_num((y0 + y1) / 2)}" '
                           f'text-anchor="middle" dominant-baseline="central">{n:,}</text>')
            base += n
        if totals[i]:
            out.append(f'<text class="value" x="{_num(x + bar_w / 2)}" y="{_num(frame.y(totals[i], top) - 4)}" '
                       f'text-anchor="middle">{totals[i]:,}</text>')
        out.append("</g>")
    out += _x_labels(frame, labels)
    out.append("</svg>")
    return "\n".join(out)


def _marker(kind: str, x: float, y: float, colour: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return (f'<rect x="{_num(x - 3.5)}" y="{_num(y - 3.5)}" width="7" height="7" fill="{colour}">'
                f"{title}</rect>")
    if kind == "diamond":
        pts = f"{_num(x)},{_num(y - 4.5)} {_num(x + 4.5)},{_num(y)} {_num(x)},{_num(y + 4.5)} {_num(x - 4.5)},{_num(y)}"
        return f'<polygon points="{pts}" fill="{colour}">{title}</polygon>'
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="4" fill="{colour}">{title}</circle>'


def share_lines(chart_id: str, title: str, labels: Sequence[str],
                shares: Mapping[str, Sequence[float | None]],
                styles: Mapping[str, tuple[str, str, str]] = SENTIMENT_STYLE) -> str:
    """Lines of shares (0–1) per label; a None breaks the line (a day with nothing scored).

    ``styles``: colour, dash and marker per series name (the names as the reader's language writes them).
    """
    frame = _Frame()
    top = 100.0
    out = _open(chart_id, title, "; ".join(
        f"{name}: " + ", ".join("–" if v is None else f"{v * 100:.0f}%" for v in values)
        for name, values in shares.items()), frame)
    out += _grid(frame, top, [0.0, 25.0, 50.0, 75.0, 100.0], "{}%")
    slot = frame.plot_w / max(len(labels), 1)
    for name, values in shares.items():
        colour, dash, marker = styles.get(name, ("#333333", "", "circle"))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[tuple[float, float]]] = [[]]
        points = []
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
                continue
            x, y = frame.left + slot * (i + 0.5), frame.y(v * 100, top)
            runs[-1].append((x, y))
            points.append(_marker(marker, x, y, colour, f"{labels[i]} · {name}: {v * 100:.1f}%"))
        out.append(f'<g class="series series-{escape(name)}">')
        for run in runs:
            if len(run) >= 2:
                coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in run)
                out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.5"'
                           f"{dash_attr}/>")
        out += points
        out.append("</g>")
    out += _x_labels(frame, labels)
    out.append("</svg>")
    return "\n".join(out)


def _swatch_background(colour: str, pattern: str) -> str:
    """CSS for a legend swatch that looks like the chart's ``<pattern>`` of the same key."""
    if pattern == "hatch":
        return f"background:repeating-linear-gradient(45deg,{colour} 0 3px,#fff 3px 5px)"
    if pattern == "cross":
        return (f"background:repeating-linear-gradient(45deg,transparent 0 3px,#fff 3px 4px),"
                f"repeating-linear-gradient(-45deg,{colour} 0 3px,#fff 3px 4px)")
    if pattern == "dots":
        return f"background:radial-gradient(circle,#fff 35%,transparent 40%) 0 0/5px 5px,{colour}"
    return f"background:{colour}"


def legend(colours: Mapping[str, str], *, styles: Mapping[str, tuple[str, str, str]] | None = None,
           patterns: Mapping[str, str] | None = None) -> str:
    """An HTML legend: it wraps on a narrow screen, which text inside an SVG cannot."""
    items = []
    for key, colour in colours.items():
        if patterns is not None:
            swatch = (f'<span class="swatch" style="{_swatch_background(colour, patterns.get(key, "solid"))}">'
                      "</span>")
        elif styles and key in styles:
            dash = styles[key][1]
            line = "solid" if not dash else ("dashed" if dash.startswith("6") else "dotted")
            swatch = f'<span class="swatch line" style="border-top:3px {line} {colour}"></span>'
        else:
            swatch = f'<span class="swatch" style="background:{colour}"></span>'
        items.append(f"<li>{swatch}{escape(key)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'
