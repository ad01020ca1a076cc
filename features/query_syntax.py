"""The query language's syntax tree: its nodes, limits and level names, the error type,
and the checks every way of building a query applies (:mod:`features.query` is the façade;
the text form is :mod:`features.query_text`, the JSON form :mod:`features.query_json`,
evaluation :mod:`features.query_eval`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

MAX_DEPTH = 50
"""Deepest nesting accepted (parentheses and ``not`` in text, node depth in JSON)."""
MAX_NODES = 200
"""Most nodes accepted in a JSON AST."""
MAX_KEY = 256
"""Longest key accepted in a JSON AST."""
MAX_STRING = 4096
"""Longest string value, pattern or text accepted in a JSON AST (the message cap)."""

CMP_OPS = ("=", "!=", "<", "<=", ">", ">=")
ORDER_OPS = frozenset({"<", "<=", ">", ">="})

LEVELS: dict[str, int] = {
    "notset": 0, "debug": 10, "info": 20, "warning": 30, "warn": 30,
    "error": 40, "critical": 50, "fatal": 50,
}
"""Level names accepted by ``level``, ``levelno`` and ``levelname`` (case-insensitive)."""
LEVEL_KEYS = frozenset({"level", "levelno", "levelname"})

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")


class QueryError(ValueError):
    """A query that cannot be parsed or evaluated.

    ``position`` is an index into ``text`` (``None`` for a JSON AST, whose errors name a
    JSON path in the message and in ``path`` instead)."""

    def __init__(self, message: str, position: int | None = None, text: str | None = None,
                 path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.text = text
        self.path = path

    def __str__(self) -> str:
        if self.position is None or self.text is None:
            return self.message
        # One line, then a caret under the offending character; control characters are
        # shown as spaces so the caret stays aligned.
        shown = re.sub(r"[\x00-\x1f\x7f]", " ", self.text)
        return f"{self.message}: {shown}\n{' ' * (len(self.message) + 2 + self.position)}^"


@dataclass(frozen=True, slots=True)
class Where:
    """Where a node came from, for errors found during evaluation."""

    text: str | None = None
    pos: int | None = None
    path: str | None = None

    def error(self, message: str) -> QueryError:
        if self.path is not None:
            return QueryError(f"at {self.path}: {message}", None, None, self.path)
        return QueryError(message, self.pos, self.text)


_NOWHERE = Where()


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Node, ...]
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Node, ...]
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    arg: Node
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Cmp:
    key: str
    cmp: str
    value: int | float | str | None
    where: Where = field(default=_NOWHERE, compare=False, repr=False)
    """Points at the value (where type errors are reported)."""


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    pattern: str
    negate: bool = False
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Has:
    key: str
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Text:
    value: str
    where: Where = field(default=_NOWHERE, compare=False, repr=False)


Node: TypeAlias = And | Or | Not | Cmp | Match | Has | Text


def level_value(name: str) -> int | None:
    """The number of a level name (``warning`` -> 30), ``None`` if it is not one."""
    return LEVELS.get(name.strip().lower())


def number_literal(s: str) -> int | float | None:
    """The number a bare word spells (finite only), or ``None``. Integers beyond 64 bits
    become floats (values compare as floats anyway, and JSON libraries stop at 64 bits)."""
    if not _NUMBER_RE.fullmatch(s):
        return None
    if _INT_RE.fullmatch(s):
        return _fit_int(int(s))
    f = float(s)
    return f if math.isfinite(f) else None


def _fit_int(v: int) -> int | float:
    return v if -(2**63) <= v < 2**63 else float(v)


def regex_error(pattern: str) -> tuple[str, int | None] | None:
    """``(message, position in pattern)`` when ``pattern`` is not a valid regex."""
    try:
        re.compile(pattern)
    except re.error as e:
        return f"invalid regex: {e.msg}", e.pos
    except (OverflowError, RecursionError, ValueError) as e:
        return f"invalid regex: {e}", None
    return None


def check_cmp(key: str, op: str, value: Any) -> str | None:
    """Why a comparison is invalid whatever the data (``None`` when it is fine)."""
    if value is None and op not in ("=", "!="):
        return f"None can only be compared with = or != (not '{op}')"
    if (key in ("level", "levelno") and isinstance(value, str)
            and level_value(value) is None and number_literal(value.strip()) is None):
        names = ", ".join(k for k in LEVELS if k not in ("warn", "fatal", "notset"))
        return f"unknown level '{value}' (expected a number or one of {names})"
    return None
