"""YAML files edited by people: load with positions, validate, explain errors.

The PR team edits ``rules/*.yaml`` and ``escalation.yaml`` by hand. A pydantic
model is the single source of truth for each format; this module turns its
errors into ``file:line:column: key: problem (did you mean ...?)`` lines and
collects all of them at once, because fixing one typo per run is miserable.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from monitor.i18n import N_, Problem, Translator, Words

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem at one place. ``message`` is English (``monitor check``, the logs); ``words``, when the
    problem was written as a translatable template (most are), gives the console the same sentence in the
    visitor's language (``text``). Values in it (file names, keys, what the person typed) stay as written."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str
    message: str
    words: Words | None = None

    @classmethod
    def of(cls, file: str, line: int, column: int, key: str, message: str | Words) -> ConfigError:
        """A problem from a template (``Words``: the English message is the template filled) or plain text."""
        if isinstance(message, Words):
            return cls(file, line, column, key, str(message), message if message.translatable else None)
        return cls(file, line, column, key, message)

    @property
    def template(self) -> str | None:
        return self.words.template if self.words is not None else None

    def text(self, t: Translator | None = None) -> str:
        """``file:line:column: key: problem`` with the problem in ``t``'s language (English without a template)."""
        message = self.words.text(t) if self.words is not None else self.message
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {message}"

    def mapped(self, change: Callable[[str], str]) -> ConfigError:
        """The same problem with ``change`` applied to its file, message and text values (a temporary path
        replaced by the name the reader knows)."""
        return ConfigError(change(self.file), self.line, self.column, self.key, change(self.message),
                           self.words.mapped(change) if self.words is not None else None)

    def __str__(self) -> str:
        return self.text()


class ConfigInvalid(Exception):
    """Raised with every problem found in one or more files."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _TextDates(RoundTripConstructor):
    """Dates stay text until the model reads them.

    ruamel turns ``2026-12-25`` into a ``date`` while parsing, and ``2026-13-45`` into a bare
    ``ValueError`` with no file or line. Left as text, pydantic parses the date and a bad one is
    reported like any other value: ``escalation.yaml:7:16: ... expected a date like 2026-12-25``.
    """

    def construct_yaml_timestamp(self, node: ScalarNode, values: Any = None) -> Any:
        return self.construct_scalar(node)


_TextDates.add_constructor("tag:yaml.org,2002:timestamp", _TextDates.construct_yaml_timestamp)


# A configuration file is a few kB; a bigger one is a mistake (a data export saved as rules/x.yaml), and parsing
# megabytes would stall `monitor check` and every reload for tens of seconds.
MAX_FILE_BYTES = 1_000_000
# Values a file may expand to through anchors (&a) and aliases (*a): a 600-byte "billion laughs" file would
# otherwise expand to gigabytes when handed to the model. Real files reuse an anchor a handful of times.
MAX_VALUES = 100_000


def load_yaml(path: Path) -> Any:
    """Parse YAML keeping line/column information on every mapping and sequence.

    Every refusal is one plain sentence at the line to fix (``ConfigInvalid``): the file
    too large, not UTF-8, or not YAML (a tab, a quote or bracket left open, a key twice ...).
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            _raise(path, 0, 0, Words.of(N_("the file is {size} MB, more than a configuration file can be (at most "
                                           "{limit} MB); is it the right file?"),
                                        size=f"{size / 1e6:.1f}", limit=MAX_FILE_BYTES // 1_000_000))
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigInvalid([ConfigError.of(str(path), 0, 0, "", Words.of(N_("cannot read file: {reason}"),
                                                                           reason=exc.strerror))]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return _raise(path, line, col, Words.of(N_("the file is not UTF-8 text (byte {byte} here); save it as "
                                                   "UTF-8 in your editor"), byte=f"0x{data[exc.start]:02X}"))
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextDates
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        line, col, message = syntax_problem(exc, text.splitlines())
        return _raise(path, line, col, message)
    except ReaderError as exc:  # a character YAML does not accept at all (a bell, a NUL)
        where = exc.position if isinstance(exc.position, int) else 0
        line = text.count("\n", 0, where) + 1
        return _raise(path, line, where - (text.rfind("\n", 0, where) + 1) + 1, _CONTROL)
    except YAMLError:
        return _raise(path, 0, 0, _UNREADABLE)
    except ValueError:  # a value ruamel itself cannot build (a number too large ...)
        return _raise(path, 0, 0, _UNREADABLE)


_UNREADABLE = Words(N_("this is not readable as YAML; check the indentation (spaces only), quotes and brackets "
                       "here and on the line above"))
_CONTROL = Words(N_("the file has an invisible control character here; retype this line"))


def syntax_problem(exc: MarkedYAMLError, lines: Sequence[str]) -> tuple[int, int, Words]:
    """Line, column and one plain sentence for ruamel's syntax error (whose words are the parser's)."""
    problem = str(exc.problem or "")
    context = str(exc.context or "")
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    start = exc.context_mark
    opened = (start.line + 1, start.column + 1) if start else (line, col)

    def text_at(where: tuple[int, int]) -> str:
        row, column = where
        return lines[row - 1][column - 1 : column] if 0 < row <= len(lines) and column > 0 else ""

    if "'\\t'" in problem or "\t" in problem:
        return line, col, Words(N_("a tab is used to indent here; YAML files are indented with spaces only"))
    if "duplicate key" in problem:
        key = re.search(r'duplicate key "(.*?)"', problem)
        if key is None:
            return line, col, Words(N_("a key appears twice in the same group; keep one of them"))
        return line, col, Words.of(N_("the key '{key}' appears twice in the same group; keep one of them"),
                                   key=key.group(1))
    if "quoted scalar" in context:
        if "unknown escape" in problem or "expected escape" in problem:
            return line, col, Words(N_("a backslash inside double quotes starts an escape this is not; put the "
                                       "value in single quotes instead (regex: ['dubbel\\s+'])"))
        quote = text_at(opened) or '"'
        return (*opened, Words.of(N_("this quote ({quote}) is never closed; end the value with {quote} on the same "
                                     "line"), quote=quote))
    if "flow sequence" in context or "flow mapping" in context:
        bracket, closing = ("[", "]") if "sequence" in context else ("{", "}")
        if "stream end" in problem or start is None or (mark is not None and mark.line != start.line):
            return (*opened, Words.of(N_("this '{bracket}' is never closed with '{closing}' on its line (or a "
                                         "comma is missing between two items)"), bracket=bracket, closing=closing))
        return line, col, Words.of(N_("a comma is missing between two items of the '{bracket}...{closing}' list "
                                      "here"), bracket=bracket, closing=closing)
    if "undefined alias" in problem:
        return line, col, Words(N_("this '*name' refers to an anchor '&name' that is not defined above it"))
    if "mapping values are not allowed" in problem:
        before = _previous_content_line(lines, line)
        if before and ":" not in lines[before - 1] and not lines[before - 1].lstrip().startswith("-"):
            return before, 1, Words(N_("this line has no ':' between its key and its value"))
        return line, col, Words(N_("a ': ' inside a value is read as a new key; put the value in quotes "
                                   "(description: 'it is: broken'), or indent this line like the keys above it"))
    if "could not find expected ':'" in problem:
        return (*opened, Words(N_("this line has no ':' between its key and its value (or a quote in it is not "
                                  "closed)")))
    if "block end" in problem or "expected key" in problem or "expected '-' indicator" in problem:
        return line, col, Words(N_("this line is not indented like the lines of its group; line it up with the "
                                   "keys above it (or with the '-' of a list item)"))
    if "cannot start any token" in problem:
        char = re.search(r"found character '(.+?)'", problem)
        if char is None:
            return line, col, Words(N_("a value cannot start with this character; put the value in quotes"))
        return line, col, Words.of(N_("a value cannot start with '{char}'; put the value in quotes"),
                                   char=char.group(1))
    if "special characters are not allowed" in problem or "control character" in problem:
        return line, col, _CONTROL
    if "expected a comment or a line break" in problem or "expected <document end>" in problem:
        return line, col, Words(N_("something follows a value where the line should end; put the whole value in "
                                   "quotes, or move it to its own line"))
    if "expected node content" in problem:
        return line, col, Words(N_("a value is missing here (two commas in a row, or a key with nothing after "
                                   "it)"))
    return line, col, _UNREADABLE


def _previous_content_line(lines: Sequence[str], line: int) -> int:
    """The 1-based number of the nearest non-blank, non-comment line before ``line`` (0 if none)."""
    for number in range(line - 1, 0, -1):
        stripped = lines[number - 1].strip() if number <= len(lines) else ""
        if stripped and not stripped.startswith("#"):
            return number
    return 0


def _raise(path: Path, line: int, col: int, message: str | Words) -> Any:
    raise ConfigInvalid([ConfigError.of(str(path), line, col, "", message)])


class _Expansion:
    """Counts the values ``to_plain`` builds, so aliases cannot expand a small file without bound."""

    def __init__(self, limit: int) -> None:
        self.left = limit


def to_plain(node: Any, *, limit: int = MAX_VALUES, path: Path | None = None) -> Any:
    """ruamel's commented containers to plain dicts/lists, for pydantic.

    ``ConfigInvalid`` when aliases make the file expand to more than ``limit`` values.
    """
    budget = _Expansion(limit)

    def plain(value: Any) -> Any:
        budget.left -= 1
        if budget.left < 0:
            raise ConfigInvalid([ConfigError.of(
                str(path or "the file"), 0, 0, "",
                Words.of(N_("the file's aliases (*name) repeat its anchors (&name) into more than {limit} values; "
                            "write the values out or reuse fewer times"), limit=limit))])
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(node)


def comment_values(root: Any, lines: Sequence[str], path: Path) -> list[ConfigError]:
    """``key: #word`` has no value: YAML reads ``#word`` as a comment. Almost always a Slack channel or a
    hashtag meant as the value; say so at its line rather than let the key be silently empty."""
    errors: list[ConfigError] = []
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, CommentedMap):
            for key, value in node.items():
                if value is None:
                    pos = node.lc.key(key)
                    text = lines[pos[0]][pos[1]:] if pos and pos[0] < len(lines) else ""
                    found = re.match(rf"{re.escape(str(key))}\s*:\s+(#\S+)", text)
                    if found:
                        errors.append(ConfigError.of(
                            str(path), pos[0] + 1, pos[1] + 1, str(key),
                            Words.of(N_("'{value}' is read as a comment, so '{key}' is empty; put it in quotes: "
                                        "{key}: '{value}'"), value=found.group(1), key=str(key))))
                else:
                    stack.append(value)
        elif isinstance(node, CommentedSeq):
            stack.extend(node)
    return errors


def position(root: Any, loc: Sequence[int | str], *, key_itself: bool = False) -> tuple[int, int]:
    """Best line/column for a pydantic error location inside the parsed YAML."""
    node = root
    line, col = (1, 1)
    if isinstance(root, CommentedMap | CommentedSeq) and root.lc.line is not None:
        line, col = root.lc.line + 1, root.lc.col + 1
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            pos = node.lc.key(part) if (last and key_itself) else node.lc.value(part)
            if pos is None:
                pos = node.lc.key(part)
            line, col = pos[0] + 1, pos[1] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.lc.item(part)
            line, col = pos[0] + 1, pos[1] + 1
            node = node[part]
        else:
            break
    return line, col


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types behind Optional/Union/Annotated."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_unwrap(arg))
        return out
    return [tp]


def allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names (and aliases) valid at ``loc``, used to suggest a fix for a typo."""
    candidates: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for tp in candidates:
            for t in _unwrap(tp):
                if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                    field = t.model_fields.get(part)
                    if field is None:
                        for f in t.model_fields.values():
                            if f.alias == part:
                                field = f
                    if field is not None:
                        nxt.append(field.annotation)
                elif typing.get_origin(t) in (list, tuple, typing.Sequence) and isinstance(part, int):
                    nxt.extend(typing.get_args(t)[:1])
                elif typing.get_origin(t) is dict and isinstance(part, str):
                    nxt.extend(typing.get_args(t)[1:2])
        candidates = nxt
    keys: list[str] = []
    for tp in candidates:
        for t in _unwrap(tp):
            if isinstance(t, type) and issubclass(t, BaseModel):
                for name, f in t.model_fields.items():
                    keys.append(f.alias or name)
    return keys


def dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_FRIENDLY = {
    "int_parsing": N_("expected a whole number"),
    "int_type": N_("expected a whole number"),
    "int_from_float": N_("expected a whole number"),
    "float_parsing": N_("expected a number"),
    "float_type": N_("expected a number"),
    "bool_parsing": N_("expected true or false"),
    "bool_type": N_("expected true or false"),
    "string_type": N_("expected text"),
    "list_type": N_("expected a list, e.g. [a, b]"),
    "dict_type": N_("expected a group of keys (key: value lines)"),
    "model_type": N_("expected a group of keys (key: value lines)"),
    "model_attributes_type": N_("expected a group of keys (key: value lines)"),
    "time_parsing": N_("expected a time like '08:00'"),
    "time_type": N_("expected a time like '08:00'"),
    "date_from_datetime_parsing": N_("expected a date like 2026-12-25"),
    "date_parsing": N_("expected a date like 2026-12-25"),
}


# What a value must look like, for the patterns of the models (the pattern itself means nothing to a PR officer).
PATTERN_WORDS = {
    r"^[UW][A-Z0-9]{2,}$": N_("a Slack user id looks like U024BE7LH: U or W, then capitals and digits (in Slack: "
                              "the person's profile, then ⋮, then 'Copy member ID')"),
    r"^[a-z0-9][a-z0-9_-]*$": N_("use lowercase letters, digits, '-' and '_', starting with a letter or digit"),
    r"^[^@\s]+@[^@\s]+$": N_("expected an e-mail address like name@example.com"),
    r"^\d+$": N_("expected digits only, e.g. 104958162837"),
    r"^v\d+\.\d+$": N_("expected a version like v21.0"),
    r"^UC[\w-]{22}$": N_("a YouTube channel id is UC followed by 22 letters, digits, '-' or '_'"),
    r"^([01]\d|2[0-3]):[0-5]\d$": N_("expected a time like 09:00"),
}

# Where a list of words may also be given per language (``KeywordList``): one message for both forms.
_PER_LANGUAGE = N_("expected a list like [boycot, oplichting], or one list per language like "
                   "{nl: [boycot], fr: [boycott]}")


def either(items: Sequence[str | Words]) -> str | Words:
    """'a, b or c' with the 'or' in the reader's language (the items as they are)."""
    if len(items) == 1:
        return items[0]
    if all(isinstance(i, str) for i in items):
        return Words.of(N_("{items} or {last}"), items=", ".join(map(str, items[:-1])), last=items[-1])
    out = items[0]
    for item in items[1:]:
        out = Words.of(N_("{items} or {last}"), items=out, last=item)
    return out


def _together(parts: Sequence[Words]) -> Words:
    """Several problems of one value, one after the other."""
    out = parts[0]
    for part in parts[1:]:
        out = Words.of(N_("{first}; {second}"), first=out, second=part)
    return out


def _union_tag(part: int | str) -> bool:
    """pydantic names the branch of a union in the location ('list[str]', 'dict[str,list[str]]'): not a key."""
    return isinstance(part, str) and (part.startswith("function-") or "[" in part
                                      or part in ("str", "int", "float", "bool", "list", "dict", "none"))


def explain(exc: ValidationError, model: type[BaseModel], root: Any, path: Path) -> list[ConfigError]:
    errors: list[ConfigError] = []
    raw = exc.errors(include_url=False)
    # A misspelt required key shows up twice (unknown 'severty', missing 'severity'): report the typo only.
    suggested: set[tuple[Any, ...]] = set()
    for err in raw:
        loc = [p for p in err["loc"] if not _union_tag(p)]
        etype = err["type"]
        if etype == "extra_forbidden":
            key = str(loc[-1])
            line, col = position(root, loc, key_itself=True)
            allowed = allowed_keys(model, loc[:-1])
            hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            msg = (Words.of(N_("unknown key '{key}'; did you mean '{hint}'?"), key=key, hint=hint[0]) if hint else
                   Words.of(N_("unknown key '{key}'; expected one of: {allowed}"), key=key, allowed=", ".join(allowed)))
            errors.append(ConfigError.of(str(path), line, col, dotted(loc[:-1]), msg))
            if hint:
                suggested.add((*loc[:-1], hint[0]))
    # A value fitting no branch of a union fails once per branch: one message for the value.
    by_place: dict[tuple[Any, ...], list[ErrorDetails]] = {}
    clean = [tuple(p for p in err["loc"] if not _union_tag(p)) for err in raw]
    for err, loc_here in zip(raw, clean, strict=True):
        # The branch that got further (a dict whose value is wrong) explains better than "expected a list".
        if _union_tag(err["loc"][-1]) and any(len(other) > len(loc_here) and other[:len(loc_here)] == loc_here
                                              for other in clean):
            err["type"] = "superseded"
    for err in raw:
        if err["type"] == "superseded":
            continue
        loc = [p for p in err["loc"] if not _union_tag(p)]
        if err["type"] == "extra_forbidden" or (err["type"] == "missing" and tuple(loc) in suggested):
            continue
        by_place.setdefault(tuple(loc), []).append(err)
    for place, errs in by_place.items():
        loc = list(place)
        if errs[0]["type"] == "missing":
            line, col = position(root, loc[:-1])
            errors.append(ConfigError.of(str(path), line, col, dotted(loc),
                                         Words(N_("this key is required but missing"))))
            continue
        line, col = position(root, loc)
        branches = [e for e in errs if any(_union_tag(p) for p in e["loc"])]
        message: Words
        if len(branches) > 1 and loc and loc[-1] in ("keywords", "regex"):
            message = _given(Words(_PER_LANGUAGE), branches[0]["input"])
        elif len(branches) > 1:
            words = list(dict.fromkeys(describe_words(e, show_input=False) for e in branches))
            joined = either(words)
            message = _given(joined if isinstance(joined, Words) else Words.plain(joined), branches[0]["input"])
        else:
            message = _together(list(dict.fromkeys(describe_words(e) for e in errs)))
        errors.append(ConfigError.of(str(path), line, col, dotted(loc), message))
    return errors


def shown_words(value: Any) -> str | Words:
    """A value as the person typed it (YAML words, not Python's: true, not True; no quotes escaped); what is
    not one value ('a list') in the reader's words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return Words(N_("nothing"))
    if isinstance(value, str):
        text = " ".join(value.split())
        return f"'{text[:60]}…'" if len(text) > 60 else f"'{text}'"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return Words(N_("a group of keys"))
    if isinstance(value, list):
        return Words(N_("a list"))
    return f"'{value}'"


def shown(value: Any) -> str:
    """``shown_words`` in English."""
    return str(shown_words(value))


def _given(problem: Words, value: Any, hide: bool = False) -> Words:
    if hide and not isinstance(value, dict | list):
        return Words.of(N_("{problem} (value hidden)"), problem=problem)
    return Words.of(N_("{problem} (got {value})"), problem=problem, value=shown_words(value))


def _bounds(err: ErrorDetails) -> Words | None:
    """pydantic's 'Input should be greater than or equal to 0' and friends, in plain words."""
    ctx = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in (err.get("ctx") or {}).items()}
    etype = err["type"]
    if etype == "greater_than_equal":
        return Words.of(N_("must be at least {low}"), low=ctx.get("ge"))
    if etype == "greater_than":
        return Words.of(N_("must be more than {low}"), low=ctx.get("gt"))
    if etype == "less_than_equal":
        return Words.of(N_("must be at most {high}"), high=ctx.get("le"))
    if etype == "less_than":
        return Words.of(N_("must be less than {high}"), high=ctx.get("lt"))
    if etype == "string_too_short":
        return Words(N_("must not be empty")) if ctx.get("min_length") == 1 else \
            Words.of(N_("must be at least {n} characters long"), n=ctx.get("min_length"))
    if etype == "string_too_long":
        return Words.of(N_("must be at most {n} characters long"), n=ctx.get("max_length"))
    if etype == "too_short":
        n = ctx.get("min_length")
        return Words(N_("list at least 1 item")) if n == 1 else Words.of(N_("list at least {n} items"), n=n)
    if etype == "too_long":
        return Words.of(N_("list at most {n} items"), n=ctx.get("max_length"))
    if etype in ("literal_error", "enum"):
        expected = str(ctx.get("expected"))
        choices = re.findall(r"'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?", expected)
        written = ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else "".join(choices)
        if choices and written == expected:
            return Words.of(N_("expected {choices}"), choices=either(choices))
        return Words.of(N_("expected {choices}"), choices=expected)
    if etype == "string_pattern_mismatch":
        return Words(PATTERN_WORDS.get(str(ctx.get("pattern")), N_("this value does not have the expected form")))
    return None


def describe_words(err: ErrorDetails, *, hide_input: bool = False, show_input: bool = True) -> Words:
    """One pydantic error in the words of the person who typed the value, translatable where we wrote them
    (``Problem`` from a validator, pydantic's common kinds); pydantic's own text for the rare others."""
    etype = err["type"]
    cause = (err.get("ctx") or {}).get("error")
    friendly = _FRIENDLY.get(etype)
    words: Words | None = Words(friendly) if friendly else _bounds(err)
    if words is None and isinstance(cause, Problem):
        words = cause.words
    if words is None:
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if msg.startswith("Input should be "):
            msg = "expected " + msg.removeprefix("Input should be ").removeprefix("a valid ")
        words = Words.plain(msg)
    if show_input and etype not in ("value_error", "assertion_error", "missing"):
        words = _given(words, err.get("input"), hide_input)
    return words


def describe(err: ErrorDetails, *, hide_input: bool = False, show_input: bool = True) -> str:
    """One pydantic error in the words of the person who typed the value (English: ``describe_words``)."""
    return str(describe_words(err, hide_input=hide_input, show_input=show_input))


def sort_errors(errors: Sequence[ConfigError]) -> list[ConfigError]:
    return sorted(errors, key=lambda e: (e.file, e.line, e.column))


Location = tuple[int | str, ...]


@typing.runtime_checkable
class CrossChecked(typing.Protocol):
    """A model whose parts refer to each other (a level naming a responder defined elsewhere).

    Field validators cannot see the rest of the file, and a model validator's error points at the
    top of the file. ``located_problems`` returns each problem with the location of the value at
    fault, so the person editing the file is sent to the line of the level, not to line 1.
    """

    def located_problems(self) -> list[tuple[Location, str | Words]]: ...


@typing.runtime_checkable
class Warns(typing.Protocol):
    """A model that can see, besides errors, settings that work but probably not as meant (``located_warnings``)."""

    def located_warnings(self) -> list[tuple[Location, str | Words]]: ...


def parse(model: type[M], path: Path, warnings: list[ConfigError] | None = None) -> M:
    """Load and validate one file, raising ``ConfigInvalid`` with every problem in it.

    ``warnings``, when given, receives what the model finds worth a warning (``Warns``), each at its line.
    """
    root = load_yaml(path)
    if root is None:
        raise ConfigInvalid([ConfigError.of(str(path), 1, 1, "", Words(N_("the file is empty")))])
    lines = path.read_text(encoding="utf-8").splitlines()
    if not isinstance(root, dict):
        line, col = position(root, ()) if isinstance(root, CommentedSeq) else (
            _previous_content_line(lines, len(lines) + 1), 1)
        kind = Words(N_("a list")) if isinstance(root, list) else Words.of(N_("the single value {value}"),
                                                                          value=shown_words(root))
        raise ConfigInvalid([ConfigError.of(str(path), line, col, "", Words.of(
            N_("expected a group of keys (key: value lines) at the top of the file, got {kind}"), kind=kind))])
    empty = comment_values(root, lines, path)
    try:
        parsed = model.model_validate(to_plain(root, path=path), context={"root": root, "path": path})
    except ValidationError as exc:
        # A key left empty by a '#' explains the model's complaint on its line (a level with no channel).
        blamed = {e.line for e in empty}
        raise ConfigInvalid(sort_errors(empty + [e for e in explain(exc, model, root, path)
                                                 if e.line not in blamed])) from None
    if empty:
        raise ConfigInvalid(empty)
    if isinstance(parsed, CrossChecked):
        problems = parsed.located_problems()
        if problems:
            raise ConfigInvalid(sort_errors([ConfigError.of(str(path), *position(root, loc), dotted(loc), message)
                                             for loc, message in problems]))
        if warnings is not None and isinstance(parsed, Warns):
            warnings.extend(ConfigError.of(str(path), *position(root, loc), dotted(loc), message)
                            for loc, message in parsed.located_warnings())
    return parsed
