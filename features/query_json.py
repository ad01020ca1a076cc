"""The query language as a JSON AST: :func:`to_json`, the strict :func:`from_json`
(errors name the JSON path) and :data:`AST_SCHEMA` for LLM structured output."""

from __future__ import annotations

import math
from typing import Any, NoReturn

import orjson

from features.query_syntax import (
    CMP_OPS,
    MAX_DEPTH,
    MAX_KEY,
    MAX_NODES,
    MAX_STRING,
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
    _fit_int,
    check_cmp,
    regex_error,
)

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
        op = self.op(obj, path, depth)
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
            return self.match(obj, path, key)
        return self.cmp(obj, path, key)

    def op(self, obj: Any, path: str, depth: int) -> str:
        """The node's op, once the node is known to be within the limits and to have
        exactly the fields of its op."""
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
        return op

    def match(self, obj: dict[str, Any], path: str, key: str) -> Match:
        """A ``match`` node; its pattern is compiled here, so a bad one is told with its
        JSON path rather than at evaluation."""
        pattern = self.string(obj["pattern"], f"{path}.pattern", MAX_STRING)
        negate = obj["negate"]
        if not isinstance(negate, bool):
            self.fail(f"{path}.negate", f"expected a boolean, got {_json_type(negate)}")
        err = regex_error(pattern)
        if err is not None:
            at = f" at position {err[1]} of the pattern" if err[1] is not None else ""
            self.fail(f"{path}.pattern", err[0] + at)
        return Match(key, pattern, negate, Where(path=f"{path}.pattern"))

    def cmp(self, obj: dict[str, Any], path: str, key: str) -> Cmp:
        """A ``cmp`` node; its value is one the text syntax could write too (a string,
        a finite number or null), checked against its key as the text parser does."""
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
