"""The filter language: one small language for the CLI (``--where``), the TUI's ``/``
filter and the LLM tool layer (which sends the AST as JSON).

Text syntax
-----------
``levelno>=30``, ``academy.action=next_item``, ``fib.iteration>10``, ``name!=asyncio``,
``@t>2.5``, ``message~"fib step \\d+"``, ``has:exc_text``, ``level>=warning``,
``exc_text!=None``, ``timeout`` (a bare word: case-insensitive substring of ``message``),
combined with ``and``, ``or``, ``not`` and parentheses; juxtaposition means ``and``.
Precedence: ``not`` > ``and`` > ``or``. Keywords are case-insensitive.

* Operators ``= != < <= > >= ~ !~`` (``~`` is a Python regex search, ``!~`` its negation;
  ``==`` and ``=~`` are accepted as ``=`` and ``~``). Spaces around operators are fine.
* Values are bare (``next_item``, ``30``, ``1.5e3``, ``AgentId<5b2acff4>``; a bare value
  runs to the next space or unbalanced ``)``) or quoted (``"time out"``, ``'x'``). A bare
  numeric literal is a number, a quoted one a string. A bare ``None``/``null`` is the null
  literal: ``key=None`` is true when the key is missing or null, ``key!=None`` when it has
  a value. In quoted strings ``\\\\``, ``\\"`` and ``\\'`` are escapes; any other
  backslash is kept as written, so regexes read naturally: ``"fib \\d+"``.
* ``level`` is an alias of ``levelno``; ``level``, ``levelno`` and ``levelname`` accept
  level names (``level>=warning``, ``levelname=error``).
* A comparison on a record lacking the key (or whose value is null) is false; ``!=`` and
  ``!~`` are ``not (=)`` and ``not (~)``, so they are true for it.
* Pseudo keys: ``@file @line @offset @row @t @repaired`` (``@t``: seconds since run start).
* Ids compare case-insensitively (``academy.action_tag=2F1C...``), and regexes on id keys
  ignore case. Numbers compare numerically when every value of the key is a number (the
  JSON pool's ``"12"`` counts), else as canonical strings; ordering a numeric key against
  text is an error. See :mod:`features.query_eval` for the exact rules.

JSON AST (:func:`to_json` / :func:`from_json`, schema :data:`AST_SCHEMA`)
--------------------------------------------------------------------------
::

    {"op": "and", "args": [NODE, ...]}            # one or more; one arg means the arg
    {"op": "or",  "args": [NODE, ...]}
    {"op": "not", "arg": NODE}
    {"op": "cmp", "key": K, "cmp": "=|!=|<|<=|>|>=", "value": NUMBER|STRING|null}
    {"op": "match", "key": K, "pattern": REGEX, "negate": BOOL}
    {"op": "has", "key": K}
    {"op": "text", "value": STRING}              # case-insensitive substring of message

``value: null`` is the null literal (only with ``=`` and ``!=``). :func:`from_json` is
strict: unknown ops, missing or extra fields, wrong types, invalid regexes, nesting deeper
than 50 or more than 200 nodes raise :class:`QueryError` naming the JSON path.

Evaluation lives in :mod:`features.query_eval`; :func:`evaluate`, :func:`select` and
:func:`explain` here are the same functions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import orjson

if TYPE_CHECKING:
    import numpy as np

    from features.events import Events

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

_OPCHARS = "=!<>~"
_OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
              "~": "~", "=~": "~", "!~": "!~"}
_OP_HINTS = {"=>": ">=", "=<": "<=", "~=": "~", "<>": "!=", "~!": "!~", "!": "!="}
_KEYWORDS = frozenset({"and", "or", "not"})
_NULL_WORDS = frozenset({"none", "null"})
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")
_BARE_RE = re.compile(r"[^\s()\"'=!<>~]+")
_STOP = frozenset(" \t\r\n\f\v()\"'" + _OPCHARS)


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


# -- parsing ---------------------------------------------------------------------------


def parse(text: str) -> Node:
    """Parse filter text into an AST; raises :class:`QueryError` with a position."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def fail(self, message: str, pos: int) -> NoReturn:
        raise QueryError(message, pos, self.s)

    def ws(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i].isspace():
            i += 1
        self.i = i

    def word_at(self, i: int) -> tuple[str, int]:
        """The bare word starting at ``i`` and the index after it."""
        s, j = self.s, i
        while j < len(s) and s[j] not in _STOP and not s[j].isspace():
            j += 1
        return s[i:j], j

    def op_follows(self, j: int) -> bool:
        s = self.s
        while j < len(s) and s[j].isspace():
            j += 1
        return j < len(s) and s[j] in _OPCHARS

    def keyword(self) -> str | None:
        """The keyword at the cursor (not consumed), unless it is a key before an op."""
        self.ws()
        w, j = self.word_at(self.i)
        lw = w.lower()
        if lw in _KEYWORDS and not self.op_follows(j):
            return lw
        return None

    def parse(self) -> Node:
        self.ws()
        if self.i >= len(self.s):
            self.fail("empty query", 0)
        node = self.or_()
        self.ws()
        if self.i < len(self.s):  # only a stray ')' stops the loops early
            self.fail("unmatched ')'", self.i)
        return node

    def or_(self) -> Node:
        start = self.i
        args = [self.and_(None)]
        while self.keyword() == "or":
            self.i += 2
            args.append(self.and_("or"))
        return args[0] if len(args) == 1 else Or(tuple(args), Where(self.s, start))

    def and_(self, after: str | None) -> Node:
        start = self.i
        args = [self.unary(after)]
        while True:
            kw = self.keyword()
            if kw == "and":
                self.i += 3
                args.append(self.unary("and"))
            elif kw == "or" or self.i >= len(self.s) or self.s[self.i] == ")":
                break
            else:  # juxtaposition
                args.append(self.unary(None))
        return args[0] if len(args) == 1 else And(tuple(args), Where(self.s, start))

    def unary(self, after: str | None) -> Node:
        if self.keyword() == "not":
            start = self.i
            self.i += 3
            self.enter(start)
            node = Not(self.unary("not"), Where(self.s, start))
            self.depth -= 1
            return node
        return self.primary(after)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested too deeply (limit {MAX_DEPTH})", pos)

    def primary(self, after: str | None) -> Node:
        self.ws()
        s, i = self.s, self.i
        needs = f"expected an expression after '{after}'" if after else "expected an expression"
        if i >= len(s):
            self.fail(needs, i)
        c = s[i]
        if c == "(":
            self.enter(i)
            self.i += 1
            self.ws()
            if self.i < len(s) and s[self.i] == ")":
                self.fail("empty parentheses", i)
            node = self.or_()
            self.ws()
            if self.i >= len(s) or s[self.i] != ")":
                self.fail("unclosed parenthesis", i)
            self.i += 1
            self.depth -= 1
            return node
        if c == ")":
            self.fail(f"{needs}, found ')'" if after else "unmatched ')'", i)
        if c in _OPCHARS:
            op, _ = self.op_run(i)
            if op == "!":
                self.fail("unexpected '!' (use 'not' to negate)", i)
            self.fail(f"missing key before '{op}'", i)
        kw = self.keyword()
        if kw in ("and", "or"):
            if after:
                self.fail(f"{needs}, found '{s[i:i + len(kw)]}'", i)
            self.fail(f"'{s[i:i + len(kw)]}' needs an expression on its left", i)
        if c in "\"'":
            key, _, end = self.string(i)
        else:
            key, end = self.word_at(i)
            if key[:4].lower() == "has:" and not self.op_follows(end):
                return self.has(i, key[4:], end)
        self.i = end
        if self.op_follows(end):
            self.ws()
            return self.comparison(key, i)
        return Text(key, Where(s, i))

    def has(self, start: int, rest: str, end: int) -> Node:
        s = self.s
        if rest:
            self.i = end
            return Has(rest, Where(s, start))
        self.i = end
        self.ws()
        j = self.i
        if j < len(s) and s[j] in "\"'":
            key, _, self.i = self.string(j)
            if key:
                return Has(key, Where(s, start))
        else:
            key, k = self.word_at(j)
            if key and key.lower() not in _KEYWORDS:
                self.i = k
                return Has(key, Where(s, start))
        self.fail("missing key after 'has:'", j)

    def op_run(self, i: int) -> tuple[str, int]:
        j = i
        while j < len(self.s) and self.s[j] in _OPCHARS:
            j += 1
        return self.s[i:j], j

    def comparison(self, key: str, key_pos: int) -> Node:
        s = self.s
        op_pos = self.i
        raw, j = self.op_run(op_pos)
        op = _OPERATORS.get(raw)
        if op is None:
            hint = _OP_HINTS.get(raw)
            extra = f" (did you mean '{hint}'?)" if hint else " (operators: = != < <= > >= ~ !~)"
            self.fail(f"unknown operator '{raw}'{extra}", op_pos)
        if not key:
            self.fail(f"missing key before '{raw}'", op_pos)
        self.i = j
        self.ws()
        vpos = self.i
        if vpos >= len(s) or s[vpos] == ")" or s[vpos] in _OPCHARS:
            self.fail(f"missing value after '{raw}'", vpos)
        quoted = s[vpos] in "\"'"
        if quoted:
            value, vmap, self.i = self.string(vpos)
        else:
            value, self.i = self.bare_value(vpos)
            vmap = list(range(vpos, self.i))
        where = Where(s, vpos)
        if op in ("~", "!~"):
            err = regex_error(value)
            if err is not None:
                msg, at = err
                self.fail(msg, vmap[at] if at is not None and at < len(vmap) else vpos)
            return Match(key, value, op == "!~", where)
        lit: int | float | str | None = value
        if not quoted:
            if value.lower() in _NULL_WORDS:
                lit = None
            else:
                num = number_literal(value)
                lit = value if num is None else num
        problem = check_cmp(key, op, lit)
        if problem is not None:
            self.fail(problem, vpos)
        return Cmp(key, op, lit, where)

    def bare_value(self, i: int) -> tuple[str, int]:
        """A bare value: up to whitespace or an unbalanced ``)`` (so ``x~(a|b)`` works)."""
        s, j, depth = self.s, i, 0
        while j < len(s) and not s[j].isspace():
            if s[j] == "(":
                depth += 1
            elif s[j] == ")":
                if depth == 0:
                    break
                depth -= 1
            j += 1
        return s[i:j], j

    def string(self, i: int) -> tuple[str, list[int], int]:
        """A quoted string at ``i``: its value, the source index of each value character
        (to place regex errors), and the index after the closing quote."""
        s = self.s
        q = s[i]
        out: list[str] = []
        where: list[int] = []
        j = i + 1
        while j < len(s):
            c = s[j]
            if c == q:
                return "".join(out), where, j + 1
            if c == "\\" and j + 1 < len(s) and s[j + 1] in "\\\"'":
                out.append(s[j + 1])
                where.append(j)
                j += 2
                continue
            out.append(c)
            where.append(j)
            j += 1
        self.fail("unterminated string", i)


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


# -- text out --------------------------------------------------------------------------


def to_text(node: Node) -> str:
    """Canonical text for ``node``; :func:`parse` gives the same AST back."""
    if isinstance(node, And | Or):
        sep = " and " if isinstance(node, And) else " or "
        return sep.join(_child_text(a, node) for a in node.args)
    if isinstance(node, Not):
        inner = to_text(node.arg)
        return f"not ({inner})" if isinstance(node.arg, And | Or) else f"not {inner}"
    if isinstance(node, Cmp):
        v = node.value
        if v is None:
            vt = "None"
        elif isinstance(v, str):
            bare = (_BARE_RE.fullmatch(v) and number_literal(v) is None
                    and v.lower() not in _NULL_WORDS)
            vt = v if bare else _quote(v)
        else:
            vt = repr(v)
        return f"{_key_text(node.key)}{node.cmp}{vt}"
    if isinstance(node, Match):
        pt = node.pattern if _BARE_RE.fullmatch(node.pattern) else _quote(node.pattern)
        return f"{_key_text(node.key)}{'!~' if node.negate else '~'}{pt}"
    if isinstance(node, Has):
        return f"has:{_key_text(node.key)}"
    if isinstance(node, Text):
        v = node.value
        return v if _plain_word(v) else _quote(v)
    raise TypeError(f"not a query node: {node!r}")


def _child_text(child: Node, parent: Node) -> str:
    # Parentheses where precedence needs them, and around a same-kind child so that a
    # nested and/or survives the round trip (the parser only flattens chains).
    t = to_text(child)
    if isinstance(child, Or) or (isinstance(child, And) and isinstance(parent, And)):
        return f"({t})"
    return t


def _plain_word(v: str) -> bool:
    return bool(_BARE_RE.fullmatch(v)) and v.lower() not in _KEYWORDS and \
        v[:4].lower() != "has:"


def _key_text(key: str) -> str:
    return key if _plain_word(key) else _quote(key)


def _quote(v: str) -> str:
    out = ['"']
    for k, c in enumerate(v):
        if c == '"':
            out.append('\\"')
        elif c == "\\" and (k + 1 == len(v) or v[k + 1] in "\\\"'"):
            out.append("\\\\")  # only where a lone backslash would read as an escape
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# -- JSON ------------------------------------------------------------------------------


def to_json(node: Node) -> dict[str, Any]:
    """The JSON AST of ``node`` (plain dicts, lists, strings, numbers)."""
    if isinstance(node, And | Or):
        return {"op": "and" if isinstance(node, And) else "or",
                "args": [to_json(a) for a in node.args]}
    if isinstance(node, Not):
        return {"op": "not", "arg": to_json(node.arg)}
    if isinstance(node, Cmp):
        return {"op": "cmp", "key": node.key, "cmp": node.cmp, "value": node.value}
    if isinstance(node, Match):
        return {"op": "match", "key": node.key, "pattern": node.pattern,
                "negate": node.negate}
    if isinstance(node, Has):
        return {"op": "has", "key": node.key}
    if isinstance(node, Text):
        return {"op": "text", "value": node.value}
    raise TypeError(f"not a query node: {node!r}")


_FIELDS: dict[str, tuple[str, ...]] = {
    "and": ("op", "args"), "or": ("op", "args"), "not": ("op", "arg"),
    "cmp": ("op", "key", "cmp", "value"), "match": ("op", "key", "pattern", "negate"),
    "has": ("op", "key"), "text": ("op", "value"),
}


def from_json(obj: Any) -> Node:
    """Validate a JSON AST (a dict, or its JSON text) strictly and build the node.

    Errors are :class:`QueryError` whose message names the JSON path (``$.args[1].cmp``).
    An ``and``/``or`` with a single argument stands for that argument."""
    if isinstance(obj, str | bytes | bytearray):
        try:
            obj = orjson.loads(obj)
        except orjson.JSONDecodeError as e:
            raise QueryError(f"invalid JSON: {e}") from None
    return _JsonReader().node(obj, "$", 1)


class _JsonReader:
    def __init__(self) -> None:
        self.count = 0

    def fail(self, path: str, message: str) -> NoReturn:
        raise QueryError(f"at {path}: {message}", None, None, path)

    def node(self, obj: Any, path: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail(path, f"nested too deeply (limit {MAX_DEPTH})")
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(path, f"too many nodes (limit {MAX_NODES})")
        if not isinstance(obj, dict):
            self.fail(path, f"expected an object, got {_json_type(obj)}")
        op = obj.get("op")
        if not isinstance(op, str) or op not in _FIELDS:
            self.fail(f"{path}.op", f"unknown op {_short(op)} (expected one of "
                      + ", ".join(_FIELDS) + ")")
        allowed = _FIELDS[op]
        for k in obj:
            if k not in allowed:
                self.fail(f"{path}.{k}", f"unexpected field for op '{op}' (allowed: "
                          + ", ".join(allowed) + ")")
        for k in allowed:
            if k not in obj:
                self.fail(f"{path}.{k}", f"missing field for op '{op}'")
        where = Where(path=path)
        if op in ("and", "or"):
            args = obj["args"]
            if not isinstance(args, list) or not args:
                self.fail(f"{path}.args", "expected a non-empty array of nodes")
            nodes = tuple(self.node(a, f"{path}.args[{k}]", depth + 1)
                          for k, a in enumerate(args))
            if len(nodes) == 1:
                return nodes[0]
            return And(nodes, where) if op == "and" else Or(nodes, where)
        if op == "not":
            return Not(self.node(obj["arg"], f"{path}.arg", depth + 1), where)
        if op == "text":
            return Text(self.string(obj["value"], f"{path}.value", MAX_STRING), where)
        key = self.string(obj["key"], f"{path}.key", MAX_KEY, empty=False)
        if op == "has":
            return Has(key, where)
        if op == "match":
            pattern = self.string(obj["pattern"], f"{path}.pattern", MAX_STRING)
            negate = obj["negate"]
            if not isinstance(negate, bool):
                self.fail(f"{path}.negate", f"expected a boolean, got {_json_type(negate)}")
            err = regex_error(pattern)
            if err is not None:
                at = f" at position {err[1]} of the pattern" if err[1] is not None else ""
                self.fail(f"{path}.pattern", err[0] + at)
            return Match(key, pattern, negate, Where(path=f"{path}.pattern"))
        cmp = obj["cmp"]
        if not isinstance(cmp, str) or cmp not in CMP_OPS:
            self.fail(f"{path}.cmp", f"unknown comparison {_short(cmp)} (expected one of "
                      + " ".join(CMP_OPS) + ")")
        value = obj["value"]
        if isinstance(value, str):
            self.string(value, f"{path}.value", MAX_STRING)
        elif isinstance(value, bool) or not isinstance(value, int | float | type(None)):
            self.fail(f"{path}.value",
                      f"expected a number, string or null, got {_json_type(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{path}.value", "expected a finite number")
        elif isinstance(value, int):
            value = _fit_int(value)
        msg = check_cmp(key, cmp, value)
        if msg is not None:
            self.fail(f"{path}.value", msg)
        return Cmp(key, cmp, value, Where(path=f"{path}.value"))

    def string(self, v: Any, path: str, limit: int, empty: bool = True) -> str:
        if not isinstance(v, str):
            self.fail(path, f"expected a string, got {_json_type(v)}")
        if not empty and not v:
            self.fail(path, "must not be empty")
        if len(v) > limit:
            self.fail(path, f"longer than {limit} characters")
        return v


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _node_schema(op: str, props: dict[str, Any], desc: str) -> dict[str, Any]:
    return {"type": "object", "description": desc,
            "properties": {"op": {"type": "string", "enum": [op]}, **props},
            "required": ["op", *props], "additionalProperties": False}


_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY,
               "description": "A record key (e.g. levelno, academy.action, fib.iteration), "
                              "the alias level, or a pseudo key (@file @line @offset @row "
                              "@t @repaired)."}
_NODE_REF = {"$ref": "#/$defs/node"}

AST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "academy-tui filter",
    "description": "A filter over events; see features.query.",
    "$ref": "#/$defs/node",
    "$defs": {
        "node": {"anyOf": [{"$ref": f"#/$defs/{op}"} for op in _FIELDS]},
        "and": _node_schema("and", {"args": {"type": "array", "items": _NODE_REF,
                                             "minItems": 1, "maxItems": MAX_NODES}},
                            "True when every argument is true."),
        "or": _node_schema("or", {"args": {"type": "array", "items": _NODE_REF,
                                           "minItems": 1, "maxItems": MAX_NODES}},
                           "True when any argument is true."),
        "not": _node_schema("not", {"arg": _NODE_REF}, "Negation."),
        "cmp": _node_schema("cmp", {
            "key": _KEY_SCHEMA,
            "cmp": {"type": "string", "enum": list(CMP_OPS)},
            "value": {"type": ["number", "string", "null"], "maxLength": MAX_STRING,
                      "description": "Numbers compare numerically with numeric keys; "
                                     "null tests for a missing value (= and != only); "
                                     "level keys accept names such as warning."},
        }, "Compare a key with a value; false when the record lacks the key "
           "(!= is true then)."),
        "match": _node_schema("match", {
            "key": _KEY_SCHEMA,
            "pattern": {"type": "string", "maxLength": MAX_STRING,
                        "description": "A Python regular expression (re.search)."},
            "negate": {"type": "boolean"},
        }, "Regex search in the key's value (negate: true for no match or missing)."),
        "has": _node_schema("has", {"key": _KEY_SCHEMA},
                            "The record has the key (any value, even null)."),
        "text": _node_schema("text", {"value": {"type": "string", "maxLength": MAX_STRING}},
                             "Case-insensitive substring of the message."),
    },
}
"""JSON Schema (draft 2020-12) of the AST, for LLM structured output."""


# -- evaluation (see features.query_eval) ----------------------------------------------


def evaluate(node: Node, events: Events) -> np.ndarray:
    """Boolean mask over ``events`` rows (store order) of the rows ``node`` selects."""
    from features.query_eval import evaluate as _evaluate

    return _evaluate(node, events)


def select(events: Events, query: str | Node) -> np.ndarray:
    """Matching rows in merged time order; ``query`` is text or a node."""
    from features.query_eval import select as _select

    return _select(events, query)


def explain(node: Node, events: Events) -> list[str]:
    """Human notes on ``node`` against ``events`` (unknown keys, type mismatches...)."""
    from features.query_eval import explain as _explain

    return _explain(node, events)


__all__ = [
    "AST_SCHEMA", "And", "Cmp", "Has", "Match", "Node", "Not", "Or", "QueryError", "Text",
    "Where", "evaluate", "explain", "from_json", "parse", "select", "to_json", "to_text",
]
