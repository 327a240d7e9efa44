"""Small HTML pieces every part of the report uses: tables, anchors, figures with captions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape


def slug(text: str) -> str:
    """An id fragment for anchors ("brand-lumora"): stable, so links into a report keep working."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "brand"


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, row_classes: Sequence[str] | None = None,
          text_cols: Sequence[int] = (), cards: bool = False) -> str:
    """A table in its own scroll box (never the page's); cells are already-escaped HTML.

    ``cards``: on a phone each row becomes a card (the first cell its title, every other cell labelled with
    its column), so the key figures read without sideways scrolling (``style.CSS``, ``table.cards``).
    """
    def cell(tag: str, i: int, value: str) -> str:
        cls = ' class="text"' if i in text_cols else ""
        label = f' data-label="{escape(head[i], quote=True)}"' if cards and tag == "td" and i < len(head) else ""
        return f"<{tag}{cls}{label}>{value}</{tag}>"

    out = ['<div class="table-wrap"><table class="cards">' if cards else '<div class="table-wrap"><table>',
           "<thead><tr>",
           "".join(cell("th", i, escape(h)) for i, h in enumerate(head)), "</tr></thead><tbody>"]
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        out.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure(caption: str, body: str) -> str:
    """A chart with a visible caption (every chart has one: the title inside the SVG is not shown)."""
    return f"<figure><figcaption>{escape(caption)}</figcaption>{body}</figure>"
