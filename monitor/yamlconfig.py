"""YAML files edited by people: load with positions, validate, explain errors.

The PR team edits ``rules/*.yaml`` and ``escalation.yaml`` by hand. A pydantic
model is the single source of truth for each format; this module turns its
errors into ``file:line:column: key: problem (did you mean ...?)`` lines and
collects all of them at once, because fixing one typo per run is miserable.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
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

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


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


def load_yaml(path: Path) -> Any:
    """Parse YAML keeping line/column information on every mapping and sequence."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigInvalid([ConfigError(str(path), 0, 0, "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ConfigInvalid([ConfigError(str(path), 0, 0, "", f"cannot read file: {exc.strerror}")]) from None
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextDates
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if "duplicate key" in problem:
            problem = problem.replace("found duplicate key", "the same key appears twice:")
        return _raise(path, line, col, f"YAML syntax error: {problem}")
    except YAMLError as exc:
        return _raise(path, 0, 0, f"YAML error: {exc}")
    except ValueError as exc:  # a value ruamel itself cannot build; the message is still ours to give
        return _raise(path, 0, 0, f"YAML error: {exc}")


def _raise(path: Path, line: int, col: int, message: str) -> Any:
    raise ConfigInvalid([ConfigError(str(path), line, col, "", message)])


def to_plain(node: Any) -> Any:
    """ruamel's commented containers to plain dicts/lists, for pydantic."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node


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
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list, e.g. [a, b]",
    "dict_type": "expected a group of keys (key: value lines)",
    "model_type": "expected a group of keys (key: value lines)",
    "model_attributes_type": "expected a group of keys (key: value lines)",
    "time_parsing": "expected a time like '08:00'",
    "time_type": "expected a time like '08:00'",
    "date_from_datetime_parsing": "expected a date like 2026-12-25",
    "date_parsing": "expected a date like 2026-12-25",
}


def explain(exc: ValidationError, model: type[BaseModel], root: Any, path: Path) -> list[ConfigError]:
    errors: list[ConfigError] = []
    raw = exc.errors(include_url=False)
    # A misspelt required key shows up twice (unknown 'severty', missing 'severity'): report the typo only.
    suggested: set[tuple[Any, ...]] = set()
    for err in raw:
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        etype = err["type"]
        if etype == "extra_forbidden":
            key = str(loc[-1])
            line, col = position(root, loc, key_itself=True)
            allowed = allowed_keys(model, loc[:-1])
            hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            msg = f"unknown key '{key}'"
            msg += f"; did you mean '{hint[0]}'?" if hint else f"; expected one of: {', '.join(allowed)}"
            errors.append(ConfigError(str(path), line, col, dotted(loc[:-1]), msg))
            if hint:
                suggested.add((*loc[:-1], hint[0]))
    for err in raw:
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        etype = err["type"]
        if etype == "extra_forbidden" or (etype == "missing" and tuple(loc) in suggested):
            continue
        if etype == "missing":
            line, col = position(root, loc[:-1])
            errors.append(ConfigError(str(path), line, col, dotted(loc), "this key is required but missing"))
            continue
        line, col = position(root, loc)
        errors.append(ConfigError(str(path), line, col, dotted(loc), describe(err)))
    return errors


def describe(err: ErrorDetails, *, hide_input: bool = False) -> str:
    """One pydantic error in the words of the person who typed the value."""
    etype = err["type"]
    msg = _FRIENDLY.get(etype) or str(err["msg"]).removeprefix("Value error, ")
    given = err.get("input")
    if etype not in ("value_error", "assertion_error", "missing") and not isinstance(given, dict | list):
        msg += " (value hidden)" if hide_input else f" (got {given!r})"
    return msg


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

    def located_problems(self) -> list[tuple[Location, str]]: ...


def parse(model: type[M], path: Path) -> M:
    """Load and validate one file, raising ``ConfigInvalid`` with every problem in it."""
    root = load_yaml(path)
    if root is None:
        raise ConfigInvalid([ConfigError(str(path), 1, 1, "", "the file is empty")])
    if not isinstance(root, dict):
        line, col = position(root, ())
        kind = "a list" if isinstance(root, list) else f"the single value {root!r}"
        raise ConfigInvalid([ConfigError(str(path), line, col, "", "expected a group of keys (key: value lines) "
                                                                   f"at the top of the file, got {kind}")])
    try:
        parsed = model.model_validate(to_plain(root), context={"root": root, "path": path})
    except ValidationError as exc:
        raise ConfigInvalid(sort_errors(explain(exc, model, root, path))) from None
    if isinstance(parsed, CrossChecked):
        problems = parsed.located_problems()
        if problems:
            raise ConfigInvalid(sort_errors([ConfigError(str(path), *position(root, loc), dotted(loc), message)
                                             for loc, message in problems]))
    return parsed
