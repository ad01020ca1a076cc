"""The query language as text: :func:`parse` (with positions in errors and hints for
near misses) and :func:`to_text` (canonical text that parses back to the same tree)."""

from __future__ import annotations

import re
from typing import NoReturn

from features.query_syntax import (
    MAX_DEPTH,
    And,
    Cmp,
    Has,
    Match,
    Node,
    Not,
    Or,
    QueryError,
    Text,
    Where,
    check_cmp,
    number_literal,
    regex_error,
)

_OPCHARS = "=!<>~"
_OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
              "~": "~", "=~": "~", "!~": "!~"}
_OP_HINTS = {"=>": ">=", "=<": "<=", "~=": "~", "<>": "!=", "~!": "!~", "!": "!="}
_KEYWORDS = frozenset({"and", "or", "not"})
_NULL_WORDS = frozenset({"none", "null"})
_BARE_RE = re.compile(r"[^\s()\"'=!<>~]+")
_STOP = frozenset(" \t\r\n\f\v()\"'" + _OPCHARS)



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
