"""Reading files people hand to a command: UTF-8 text line by line, or one line naming what is wrong.

``monitor classify``, ``monitor import`` and ``monitor backtest --data`` read
files that may be anything: an export in UTF-16, a binary dropped by mistake,
an archive cut off by garbage. Python's text mode fails inside the iteration
with a byte offset nobody can find; these helpers decode each line strictly
and stop at the first bad one with ``FILE:LINE`` and the reason, and make
texts printable and storable (a lone surrogate escaped in JSON is valid JSON
but cannot be encoded as UTF-8).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from monitor.models import TEXT_LIMIT, clean_text


class BadInput(Exception):
    """A file a command reads is not what it expects; the message names the file and line."""




def scrub(text: str) -> str:
    """``text`` as the pipeline stores and scores it (``models.clean_text``, the one rule): lone surrogates
    (from ``"\\ud800"`` in JSON) become U+FFFD, NUL and other controls go, length capped."""
    return clean_text(text, TEXT_LIMIT)


def text_lines(stream: Iterable[bytes], name: str) -> Iterator[tuple[int, str]]:
    """(line number, text without its line break) of a UTF-8 byte stream; ``BadInput`` at the first line that is not.

    Decoding line by line, strictly, is what lets the error name the line: a
    file opened in text mode fails somewhere inside the iteration with a byte
    offset nobody can find. A UTF-8 byte order mark is tolerated; UTF-16 (with
    its mark, or without it: NUL bytes) and binary data are named as such.
    """
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise BadInput(f"{name}: UTF-16 text; convert it to UTF-8 first "
                               "(iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8)")
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if b"\x00" in raw:
            raise BadInput(f"{name}:{number}: NUL bytes: binary data or UTF-16 text, not UTF-8 text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"{name}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                           f"{exc.start + 1}); binary data or another encoding") from None
        yield number, text.rstrip("\r\n")


def json_lines(stream: Iterable[bytes], name: str) -> Iterator[tuple[str, Any, str | None]]:
    """("NAME:LINE", document, problem) per non-blank line of a JSON-lines byte stream: ``problem`` is the
    skip reason ("NAME:LINE: skipped: not JSON (...)", document None) for a line that does not parse.

    ``monitor import`` and ``backtest --data`` read the same files and must report a bad line alike;
    ``BadInput`` (``text_lines``) for a file that is not UTF-8 text.
    """
    for line_no, line in text_lines(stream, name):
        if not line.strip():
            continue
        where = f"{name}:{line_no}"
        try:
            yield where, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield where, None, f"{where}: skipped: not JSON ({exc.msg})"
