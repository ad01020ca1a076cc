"""Evaluation of filter ASTs (:mod:`features.query`) against an :class:`Events` snapshot.

Everything is vectorised over rows. A key is seen either as numbers (a float per row, NaN
where missing) or as a factorisation (a code per row, ``-1`` where missing or null, and the
distinct values); a comparison is decided once per distinct value and the answer indexed
by the codes. ``message`` is the exception (nearly every row distinct): it is scanned
with ``map`` over the in-memory strings, which is exact and measured fast enough (a
literal ~0.06 s, a regex ~0.11 s per million rows). Searching one joined string was
measured too: faster per search (~0.03 s) but the join costs ~0.25 s and anchors,
lookarounds and matches across the separator need re-checking, so it did not pay. The
result of each message test is kept per store (a few of them) and extended incrementally
as the store grows, so repeating a filter, or re-running it on a newer snapshot, is cheap;
the columns and those results come from :mod:`features.query_columns`.

Typing rules (see :mod:`features.query` for the language):

* A key is numeric when all its non-null values are numbers after normalisation
  (:func:`features.normalize.scalar`; the integer core keys, ``created`` and the numeric
  pseudo keys always are). A number literal (or a quoted numeric string) compares
  numerically with a numeric key. A non-numeric literal with ``<``/``>`` on a numeric key
  is an error; with ``=`` it matches nothing.
* Otherwise values compare as canonical strings (ids case-insensitively, ``true``/``false``
  case-insensitively with booleans; ``<``/``>`` lexicographically). A bare number with
  ``<``/``>`` on a key that is not numeric compares with the values that are numbers and
  never matches the others (a lexicographic ``"9" > "10"`` is never what a scientist
  means); with ``=`` it matches a value equal as text or as a number (``"007"`` = 7).
  A quoted literal on such a key is text.
* Regexes search the canonical string of each value; on id keys they ignore case.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from features.events import PSEUDO_KEYS, Events
from features.normalize import NULL_STRINGS, canonical_id
from features.query_columns import Columns
from features.query_json import from_json
from features.query_syntax import (
    LEVEL_KEYS,
    ORDER_OPS,
    And,
    Cmp,
    Has,
    Match,
    Node,
    Not,
    Or,
    Text,
    level_value,
    regex_error,
)
from features.query_text import parse
from features.query_values import _OPS, _Col, _number
from features.record_keys import ID_KEYS

# -- public API ------------------------------------------------------------------------


def evaluate(node: Node, events: Events, rows: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask over ``events`` rows (store order) of the rows ``node`` selects; with
    ``rows``, the mask over just those rows (costly tests then skip the others, which is
    how a live view filters only the newly arrived events).

    Raises :class:`QueryError` (with the node's position or JSON path) when a numeric key
    is ordered against a non-numeric literal."""
    ctx = _Ctx(events)
    if rows is None:
        return np.array(ctx.eval(node, None), dtype=bool, copy=True)
    within = np.zeros(events.n, dtype=bool)
    within[rows] = True
    return np.asarray(ctx.eval(node, within)[rows], dtype=bool)


def select(events: Events, query: str | Node | dict[str, Any]) -> np.ndarray:
    """Rows matching ``query`` (text, a node, or a JSON AST) in merged time order.

    Blank text selects every row (an empty TUI filter)."""
    if isinstance(query, str):
        if not query.strip():
            return np.asarray(events.order[: events.n], dtype=np.int64)
        query = parse(query)
    elif isinstance(query, dict):
        query = from_json(query)
    mask = evaluate(query, events)
    order = np.asarray(events.order[: events.n], dtype=np.int64)
    return order[mask[order]]


def explain(node: Node, events: Events) -> list[str]:
    """Human notes on how ``node`` meets the data: keys that no event has (with close
    matches), numbers compared with text, partial keys under ``!=``, null spellings
    quoted as strings, bare words that name a key, and evaluation errors."""
    ctx = _Ctx(events)
    counts = events.key_counts()
    known = set(counts) | set(PSEUDO_KEYS) | {"level"}
    n = events.n
    notes: list[str] = []
    for sub in _walk(node):
        if isinstance(sub, Text):
            if sub.value in known and sub.value != "message":
                notes.append(f"'{sub.value}' alone searches the message text; use "
                             f"has:{sub.value} or {sub.value}!=None to test the key")
            continue
        if not isinstance(sub, Cmp | Match | Has):
            continue
        key = _alias(sub.key)
        if key not in known:
            note = f"no event has key '{sub.key}'"
            close = difflib.get_close_matches(sub.key, sorted(known), n=3)
            if close:
                note += " (did you mean " + ", ".join(close) + "?)"
            notes.append(note)
            continue
        present = n if key in PSEUDO_KEYS else counts.get(key, 0)
        negated = (isinstance(sub, Cmp) and sub.cmp == "!=" and sub.value is not None) or (
            isinstance(sub, Match) and sub.negate)
        if negated and present < n:
            notes.append(f"'{sub.key}' is missing in {n - present:,} of {n:,} events; "
                         f"'{'!=' if isinstance(sub, Cmp) else '!~'}' counts them as matching")
        if isinstance(sub, Cmp):
            notes.extend(_cmp_notes(ctx, sub))
    return list(dict.fromkeys(notes))


# -- evaluation ------------------------------------------------------------------------

class _Ctx(Columns):
    """How each node is decided, on the columns and message tests of one snapshot."""

    def eval(self, node: Node, within: np.ndarray | None) -> np.ndarray:
        """Mask of ``node``. ``within`` is a hint: rows outside it may come out either way
        (the caller ANDs them away), so costly tests can skip them."""
        if isinstance(node, And):
            r: np.ndarray | None = None
            for kid in sorted(node.args, key=self.cost):
                hint = None
                if self.cost(kid) >= 5:
                    hint = r if within is None else within if r is None else r & within
                x = self.eval(kid, hint)
                r = x if r is None else r & x
            assert r is not None
            return r
        if isinstance(node, Or):
            r = None
            for kid in node.args:
                x = self.eval(kid, within)
                r = x if r is None else r | x
            assert r is not None
            return r
        if isinstance(node, Not):
            return ~self.eval(node.arg, within)
        if isinstance(node, Has):
            return self.ev.has_key(_alias(node.key))
        if isinstance(node, Text):
            return self.message(("text", node.value.lower()), within)
        if isinstance(node, Match):
            return self.match(node, within)
        if isinstance(node, Cmp):
            return self.cmp(node, within)
        raise TypeError(f"not a query node: {node!r}")

    def cost(self, node: Node) -> int:
        """Rough cost class: in-memory columns 1, a message scan 5, a file read 10."""
        if isinstance(node, And | Or):
            return max(self.cost(a) for a in node.args)
        if isinstance(node, Not):
            return self.cost(node.arg)
        if isinstance(node, Has):
            return 1
        if isinstance(node, Text):
            return 5
        key = _alias(node.key)
        if key == "message":
            return 5
        if self.ev.has_column(key) and key != "exc_text":
            return 1
        c = self.cache.lazy.get(key)
        return 1 if c is not None and c.n >= self.n else 10

    def match(self, node: Match, within: np.ndarray | None) -> np.ndarray:
        key = _alias(node.key)
        err = regex_error(node.pattern)
        if err is not None:
            raise node.where.error(err[0])
        if key == "message":
            r = self.message(("match", node.pattern), within)
        else:
            # Ids are stored in canonical (lower) case; a pattern copied in upper case
            # must still find them.
            rx = re.compile(node.pattern, re.IGNORECASE if key in ID_KEYS else 0)
            r = self.col(key).decide(lambda v: rx.search(_canon(v)) is not None)
        return ~r if node.negate else r

    def cmp(self, node: Cmp, within: np.ndarray | None) -> np.ndarray:
        key, lit = _resolve(node)
        op = node.cmp
        neg = op == "!="
        base = "=" if neg else op
        if key == "message":
            if lit is not None and not isinstance(lit, str):
                lit = _canon(lit)
            r = self.message(("cmp", base, lit), within)
            return ~r if neg else r
        col = self.col(key)
        if lit is None:
            r = col.missing()
            return ~r if neg else r
        num = _as_number(lit)
        if num is not None and col.numeric():
            with np.errstate(invalid="ignore"):
                r = _OPS[base](col.floats(), num)
            return ~r if neg else r
        if not isinstance(lit, str):  # a number, on a key that is not (only) numbers
            r = self.by_value(col, key, base, lit, num)
            return ~r if neg else r
        if base != "=" and col.numeric():
            raise node.where.error(
                f"'{node.key}' is numeric: cannot compare it with {lit!r} using '{op}'")
        # A number's canonical string never equals a non-numeric text.
        r = (np.zeros(self.n, dtype=bool) if col.native
             else self.by_value(col, key, base, lit, None))
        return ~r if neg else r

    def by_value(self, col: _Col, key: str, op: str, lit: Any, num: float | None) -> np.ndarray:
        """A comparison decided per distinct value: a text literal against canonical
        strings; a number (``num``) against the values that are numbers, and for ``=``
        also against canonical strings."""
        if op != "=":
            if num is not None:  # numeric values only; text values never match a number
                isnum, f = col.value_floats()
                with np.errstate(invalid="ignore"):
                    return col.decide_values(isnum & _OPS[op](f, num))
            s = _canon_literal(key, lit)
            cmp = _OPS[op]
            return col.decide(lambda v: bool(cmp(_canon(v), s)))
        if isinstance(lit, str):
            s = _canon_literal(key, lit)
            if col.lookup is not None and not _boolish(lit) and key != "@file":
                hits = {c for c in (col.lookup(lit), col.lookup(s)) if c is not None}
                codes = col.factorized()[0]
                if len(hits) == 1:
                    return codes == hits.pop()
                return np.isin(codes, list(hits))
            return col.decide(_text_equals(key, lit, s))
        s = _canon(lit)
        r = col.decide(lambda v: _canon(v) == s)
        if num is not None:
            isnum, f = col.value_floats()
            r |= col.decide_values(isnum & (f == num))
        return r


# -- helpers ---------------------------------------------------------------------------


def _alias(key: str) -> str:
    return "levelno" if key == "level" else key


def _resolve(node: Cmp) -> tuple[str, Any]:
    """The key and literal actually compared: ``level`` is ``levelno``, and level names
    (also for ``levelname``) are their numbers."""
    key, lit = _alias(node.key), node.value
    if key in LEVEL_KEYS:
        if isinstance(lit, str) and level_value(lit) is not None:
            return "levelno", level_value(lit)
        if key == "levelname" and isinstance(lit, int | float):
            return "levelno", lit
    return key, lit


def _as_number(lit: Any) -> float | None:
    return _number(lit.strip() if isinstance(lit, str) else lit)


def _boolish(lit: Any) -> bool:
    return isinstance(lit, str) and lit.lower() in ("true", "false")


def _canon(v: Any) -> str:
    """The canonical string of a normalised value."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "True" if v else "False"
    return repr(v) if isinstance(v, float) else str(v)


def _canon_literal(key: str, lit: Any) -> str:
    s = lit if isinstance(lit, str) else _canon(lit)
    return (canonical_id(s) or s) if s and s not in NULL_STRINGS else s


def _text_equals(key: str, lit: str, s: str) -> Callable[[Any], bool]:
    """Equality of a value with a text literal: canonical strings, ids in any case,
    booleans in any case, and ``@file`` by name or by name without extension."""
    low = lit.lower()
    boolish = low in ("true", "false")
    is_file = key == "@file"

    def eq(v: Any) -> bool:
        c = _canon(v)
        if c in (lit, s) or canonical_id(c) == s:
            return True
        if boolish and isinstance(v, bool | str) and c in ("True", "False"):
            return c.lower() == low
        if is_file:
            stem = c.rsplit(".", 1)[0]
            return stem == lit or stem.lower() == low
        return False

    return eq


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, And | Or):
        for a in node.args:
            yield from _walk(a)
    elif isinstance(node, Not):
        yield from _walk(node.arg)


def _cmp_notes(ctx: _Ctx, node: Cmp) -> list[str]:
    notes: list[str] = []
    v = node.value
    if isinstance(v, str) and v in NULL_STRINGS and node.key != "message":
        notes.append(f"{v!r} is how a missing value is written, and such values are "
                     f"stored as null: write {node.key}{node.cmp}None (unquoted) to test "
                     "for a missing value")
    key, lit = _resolve(node)
    if key == "message" or lit is None:
        return notes
    col = ctx.col(key)
    num = _as_number(lit)
    if col.numeric():
        if num is None and node.cmp in ORDER_OPS:
            notes.append(f"error: '{node.key}' is numeric: cannot compare it with {lit!r} "
                         f"using '{node.cmp}'")
        elif num is None and not _boolish(lit):
            notes.append(f"'{node.key}' holds numbers and {lit!r} is not one, so "
                         f"'{node.cmp}' is {'never' if node.cmp == '=' else 'always'} true")
    elif col.factorized()[1]:
        example = col.non_numeric_example()
        if isinstance(lit, str) and num is not None and node.cmp in ORDER_OPS:
            notes.append(f"'{node.key}' is not numeric (it has values such as {example!r}): "
                         f"the quoted {lit!r} compares as text; write it unquoted to "
                         "compare numbers")
        elif not isinstance(lit, str):
            how = ("only its numeric values are compared" if node.cmp in ORDER_OPS
                   else "values are compared as text and as numbers")
            notes.append(f"'{node.key}' is not numeric (it has values such as {example!r}); "
                         + how)
    return notes


__all__ = ["evaluate", "explain", "select"]
