"""The filter language: parsing, errors, JSON AST, canonical text, evaluation.

Expected results of evaluation are derived independently: the test reads the .jsonlog
lines with the standard ``json`` module and applies each condition in plain Python.
"""

from __future__ import annotations

import glob
import json
import math
import os
import random
import re
from typing import Any

import numpy as np
import pytest

from features.events import Events
from features.loader import load
from features.query import (
    AST_SCHEMA,
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
    evaluate,
    explain,
    from_json,
    parse,
    select,
    to_json,
    to_text,
)
from features.reader import PoolReader
from steering.ask.schema import errors as schema_errors


@pytest.fixture
def BIG(sample: Any) -> str:
    """10,943 records (the sample pools ship with the tests: no path of this machine)."""
    return str(sample("pairs"))


@pytest.fixture
def FAIL(sample: Any) -> str:
    """Two tracebacks."""
    return str(sample("exception"))


# -- parsing ---------------------------------------------------------------------------


def C(key: str, cmp: str, value: Any) -> Cmp:
    return Cmp(key, cmp, value)


@pytest.mark.parametrize("text, node", [
    ("levelno>=30", C("levelno", ">=", 30)),
    ("levelno >= 30", C("levelno", ">=", 30)),
    ("academy.action=next_item", C("academy.action", "=", "next_item")),
    ("name!=asyncio", C("name", "!=", "asyncio")),
    ("fib.iteration<10", C("fib.iteration", "<", 10)),
    ("fib.iteration<=10", C("fib.iteration", "<=", 10)),
    ("fib.iteration>1.5e3", C("fib.iteration", ">", 1500.0)),
    ("@t>2.5", C("@t", ">", 2.5)),
    ("@t>-1", C("@t", ">", -1)),
    ("x=007", C("x", "=", 7)),
    ('x="30"', C("x", "=", "30")),
    ("x='time out'", C("x", "=", "time out")),
    (r'x="say \"hi\""', C("x", "=", 'say "hi"')),
    ("x=None", C("x", "=", None)),
    ("x!=NULL", C("x", "!=", None)),
    ('x="None"', C("x", "=", "None")),
    ("x==1", C("x", "=", 1)),
    ("x=1234e567", C("x", "=", "1234e567")),  # overflows a float: a string, not inf
    ("x=inf", C("x", "=", "inf")),
    ("academy.agent_id=AgentId<5B2ACFF4>", C("academy.agent_id", "=", "AgentId<5B2ACFF4>")),
    ("academy.action_tag=2F1C0000-AAAA-4BBB-8CCC-DDDDEEEEFFFF",
     C("academy.action_tag", "=", "2F1C0000-AAAA-4BBB-8CCC-DDDDEEEEFFFF")),
    ('"my key"=3', C("my key", "=", 3)),
    ("message~fib", Match("message", "fib")),
    ('message~"fib step \\d+"', Match("message", r"fib step \d+")),
    ("message !~ fib", Match("message", "fib", True)),
    ("x=~a.b", Match("x", "a.b")),
    ("x~(a|b)", Match("x", "(a|b)")),
    ("x~30", Match("x", "30")),
    ("has:exc_text", Has("exc_text")),
    ("HAS:exc_text", Has("exc_text")),
    ("has: exc_text", Has("exc_text")),
    ('has:"my key"', Has("my key")),
    ("timeout", Text("timeout")),
    ('"time out"', Text("time out")),
    ("42", Text("42")),
    ("level>=warning", C("level", ">=", "warning")),
    ("levelname=error", C("levelname", "=", "error")),
])
def test_parse_constructs(text: str, node: Node) -> None:
    assert parse(text) == node


@pytest.mark.parametrize("text, node", [
    ("a b", And((Text("a"), Text("b")))),
    ("a and b AND c", And((Text("a"), Text("b"), Text("c")))),
    ("a or b c", Or((Text("a"), And((Text("b"), Text("c")))))),
    ("a b or c", Or((And((Text("a"), Text("b"))), Text("c")))),
    ("not a b", And((Not(Text("a")), Text("b")))),
    ("NOT a or b", Or((Not(Text("a")), Text("b")))),
    ("not (a or b)", Not(Or((Text("a"), Text("b"))))),
    ("not not a", Not(Not(Text("a")))),
    ("(a or b) c", And((Or((Text("a"), Text("b"))), Text("c")))),
    ("a and (b and c)", And((Text("a"), And((Text("b"), Text("c")))))),
    ("levelno>=30 name=fibagents",
     And((C("levelno", ">=", 30), C("name", "=", "fibagents")))),
    ("(levelno>=30)or(name=x)", Or((C("levelno", ">=", 30), C("name", "=", "x")))),
    ("android or order", Or((Text("android"), Text("order")))),  # not keywords
    ("and=1", C("and", "=", 1)),  # a keyword before an operator is a key
])
def test_parse_precedence(text: str, node: Node) -> None:
    assert parse(text) == node


ERRORS = [
    ("(levelno>=30", 0, "unclosed parenthesis"),
    ("levelno>=30)", 11, "unmatched ')'"),
    ("levelno>=", 9, "missing value after '>='"),
    ("levelno>= )", 10, "missing value after '>='"),
    ("levelno=>30", 7, "unknown operator '=>' (did you mean '>='?)"),
    ('message~"(unclosed"', 9, "invalid regex"),
    ('x~"ab[c"', 5, "unterminated character set"),
    ('x~"a\\"b(c"', 7, "invalid regex"),  # the escape shifts the regex position by one
    ("x~a(b", 3, "invalid regex"),
    ('"unterminated', 0, "unterminated string"),
    ("and x", 0, "'and' needs an expression on its left"),
    ("x and", 5, "expected an expression after 'and'"),
    ("not", 3, "expected an expression after 'not'"),
    ("()", 0, "empty parentheses"),
    ("has:", 4, "missing key after 'has:'"),
    ("level>=warnign", 7, "unknown level 'warnign'"),
    ("=30", 0, "missing key before '='"),
    ("a or or b", 5, "expected an expression after 'or', found 'or'"),
    ("!timeout", 0, "use 'not' to negate"),
    ("x<None", 2, "None can only be compared with = or !="),
    ("a = =b", 4, "missing value after '='"),
    ("a=1 (b", 4, "unclosed parenthesis"),
    ("   ", 0, "empty query"),
    ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nested too deeply"),
]


@pytest.mark.parametrize("text, pos, fragment", ERRORS)
def test_parse_errors(text: str, pos: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    e = info.value
    assert e.position == pos, str(e)
    assert fragment in e.message
    assert e.text == text
    lines = str(e).split("\n")
    assert len(lines) == 2
    assert lines[0] == f"{e.message}: {text}"
    assert lines[1].index("^") == len(e.message) + 2 + pos  # caret under the character


# -- JSON and canonical text -----------------------------------------------------------


ROUND_TRIP = [
    "levelno>=30", "level>=warning", "academy.action=next_item fib.iteration>10",
    "a or b c", "not (a or b) and c", "not not x", "(a and b) and c", "a and (b and c)",
    "(a or b) or c", 'message~"fib step \\d+"', r'x~"a\\\\b"', r'x~"\\\\"', 'x="30"',
    "x=1.5e3", "x=-0.0", "x=100000000000000000000000", "x=9223372036854775807", "x=None",
    "x!=None", 'x="None"',
    '"and" or "has:x"=1', 'has:"my key"', '"x y"~"a b"', "timeout", '""',
    "x='it\\'s'", 'x~"(a|b)"', "@t>2.5 @file~jsonlog", "x=\"line\nbreak\"",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_text_and_json_round_trip(text: str) -> None:
    node = parse(text)
    canonical = to_text(node)
    assert parse(canonical) == node
    assert to_text(parse(canonical)) == canonical
    obj = to_json(node)
    assert json.loads(json.dumps(obj)) == obj  # plain JSON types
    assert from_json(obj) == node
    assert from_json(json.dumps(obj)) == node


def _random_node(rng: random.Random, depth: int = 0) -> Node:
    keys = ["levelno", "fib.iteration", "@t", "my key", "and", "has:x", "a=b", "x(y)",
            "ключ", "a'b", 'q"k']
    strings = ["", "x", "time out", "None", "null", "30", "1e5", "and", "not", "OR",
               "has:y", 'say "hi"', "it's", "back\\slash", "end\\", "\\\\", "(paren",
               "x)", "a=b", "~", "tab\there", "new\nline", "ünï", "2F1C0000-AAAA-4BBB-8CCC"]
    patterns = ["fib", r"fib \d+", "^a|b$", r"\\", r"\"", "(a)(b)", "[)]", r"\(", "x{2,3}"]
    k = rng.randrange(9 if depth < 4 else 5)
    if k == 0:
        return Cmp(rng.choice(keys[1:]), rng.choice(["=", "!=", "<", "<=", ">", ">="]),
                   rng.choice([0, -3, 2.5, 1e16, 10**20, *strings]))
    if k == 1:
        return Cmp(rng.choice(keys[1:]), rng.choice(["=", "!="]), None)
    if k == 2:
        return Match(rng.choice(keys), rng.choice(patterns), rng.random() < 0.5)
    if k == 3:
        return Has(rng.choice(keys))
    if k == 4:
        return Text(rng.choice(strings))
    if k == 5:
        return Not(_random_node(rng, depth + 1))
    args = tuple(_random_node(rng, depth + 1) for _ in range(rng.randrange(2, 4)))
    return And(args) if k in (6, 7) else Or(args)


def test_random_round_trips() -> None:
    rng = random.Random(7)
    for _ in range(500):
        node = _random_node(rng)
        text = to_text(node)
        assert parse(text) == node, text
        assert from_json(to_json(node)) == node


def test_single_argument_and_is_its_argument() -> None:
    assert from_json({"op": "and", "args": [{"op": "has", "key": "x"}]}) == Has("x")


def _nest(depth: int) -> dict[str, Any]:
    obj: dict[str, Any] = {"op": "has", "key": "x"}
    for _ in range(depth - 1):
        obj = {"op": "not", "arg": obj}
    return obj


BAD_JSON = [
    ([], "$", "expected an object"),
    ({"op": "xor", "args": []}, "$.op", "unknown op 'xor'"),
    ({"key": "x"}, "$.op", "unknown op None"),
    ({"op": "has", "key": "x", "extra": 1}, "$.extra", "unexpected field"),
    ({"op": "cmp", "key": "x", "cmp": "="}, "$.value", "missing field"),
    ({"op": "cmp", "key": 3, "cmp": "=", "value": 1}, "$.key", "expected a string"),
    ({"op": "cmp", "key": "", "cmp": "=", "value": 1}, "$.key", "must not be empty"),
    ({"op": "cmp", "key": "x", "cmp": "==", "value": 1}, "$.cmp", "unknown comparison"),
    ({"op": "cmp", "key": "x", "cmp": "=", "value": True}, "$.value", "got a boolean"),
    ({"op": "cmp", "key": "x", "cmp": "=", "value": [1]}, "$.value", "got an array"),
    ({"op": "cmp", "key": "x", "cmp": "<", "value": None}, "$.value", "None can only"),
    ({"op": "cmp", "key": "level", "cmp": ">=", "value": "loud"}, "$.value", "unknown level"),
    ({"op": "cmp", "key": "x", "cmp": "=", "value": "y" * 5000}, "$.value", "longer than"),
    ({"op": "match", "key": "x", "pattern": "a(b", "negate": False}, "$.pattern",
     "invalid regex: missing ), unterminated subpattern at position 1"),
    ({"op": "match", "key": "x", "pattern": "a", "negate": "no"}, "$.negate",
     "expected a boolean"),
    ({"op": "and", "args": []}, "$.args", "non-empty array"),
    ({"op": "or", "args": [{"op": "has", "key": "x"}, {"op": "text"}]}, "$.args[1].value",
     "missing field"),
    ({"op": "not", "arg": {"op": "and", "args": [{"op": "has", "key": "x"},
                                                  {"op": "cmp", "key": "y", "cmp": "=~",
                                                   "value": 1}]}},
     "$.arg.args[1].cmp", "unknown comparison"),
    (_nest(MAX_DEPTH + 1), "$" + ".arg" * MAX_DEPTH, "nested too deeply"),
    ({"op": "or", "args": [{"op": "has", "key": str(i)} for i in range(200)]},
     "$.args[199]", "too many nodes"),
    ("{not json", None, "invalid JSON"),
]


@pytest.mark.parametrize("obj, path, fragment", BAD_JSON)
def test_from_json_strict(obj: Any, path: str | None, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        from_json(obj)
    e = info.value
    assert fragment in e.message
    assert e.position is None
    if path is not None:
        assert e.path == path
        assert e.message.startswith(f"at {path}: ")
    assert "\n" not in str(e)


def test_from_json_limits_are_inclusive() -> None:
    from_json(_nest(MAX_DEPTH))
    from_json({"op": "or", "args": [{"op": "has", "key": str(i)} for i in range(199)]})


def test_schema_describes_every_op() -> None:
    defs = AST_SCHEMA["$defs"]
    for op in ("and", "or", "not", "cmp", "match", "has", "text"):
        d = defs[op]
        assert d["additionalProperties"] is False
        assert d["properties"]["op"]["enum"] == [op]
        assert set(d["required"]) == set(d["properties"])
        for name, prop in d["properties"].items():
            if (prop.get("type") == "string" and "enum" not in prop) or name == "value":
                assert "maxLength" in prop, (op, name)
    json.dumps(AST_SCHEMA)  # plain JSON
    # Every example the language produces conforms to the schema, checked by the same
    # validator the ask tools check a model's arguments with.
    for text in ROUND_TRIP:
        assert schema_errors(to_json(parse(text)), AST_SCHEMA) == [], text


@pytest.mark.parametrize("bad, at", [
    ({"op": "and", "args": [{"op": "has", "key": "a", "extra": 1}]}, "$.args[0]"),
    ({"op": "not", "arg": {"op": "cmp", "key": "a", "cmp": "=="}}, "$.arg"),
    ({"op": "or", "args": [{"op": "cmp", "key": "a", "cmp": "~~", "value": 1}]}, "$.args[0]"),
    ({"op": "and", "args": []}, "$"),
    ({"op": "has", "key": ""}, "$"),
    ({"op": "match", "key": "a", "pattern": "x", "negate": "yes"}, "$"),
], ids=["extra-key", "missing-key", "bad-cmp", "no-args", "empty-key", "negate-not-bool"])
def test_the_schema_check_rejects_what_from_json_rejects(bad: dict[str, Any], at: str
                                                         ) -> None:
    # The check above could pass by accepting anything: a wrong AST, nested or not, is
    # reported at the node that is wrong, and from_json refuses it too.
    errs = schema_errors(bad, AST_SCHEMA)
    assert errs and f"{at}: " in errs[0], errs
    with pytest.raises(QueryError):
        from_json(bad)


# -- evaluation against real pools -----------------------------------------------------


NULLS = ("None", "null", "")


def raw_records(pool: str) -> list[dict[str, Any]]:
    """Every record of a pool, files in name order, with plain json."""
    out = []
    for path in sorted(glob.glob(os.path.join(pool, "*.jsonlog"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    return out


def val(rec: dict[str, Any], key: str) -> Any:
    v = rec.get(key)
    return None if v is None or (isinstance(v, str) and v in NULLS) else v


def fnum(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def count(recs: list[dict[str, Any]], pred: Any) -> int:
    return sum(1 for r in recs if pred(r))


_POOLS: dict[str, tuple[Events, list[dict[str, Any]]]] = {}


def pool(path: str) -> tuple[Events, list[dict[str, Any]]]:
    if path not in _POOLS:
        r = PoolReader(path)
        load(r)
        ev = Events(r.store)
        recs = raw_records(path)
        assert ev.n == len(recs)
        _POOLS[path] = (ev, recs)
    return _POOLS[path]


def n_rows(ev: Events, text: str) -> int:
    return int(evaluate(parse(text), ev).sum())


def test_eval_big_pool(BIG: str) -> None:
    ev, recs = pool(BIG)
    n = len(recs)
    assert n_rows(ev, "academy.action=next_item") == count(
        recs, lambda r: r.get("academy.action") == "next_item")
    # numeric from strings ("12" > "10" lexicographically would be wrong for "9")
    it = count(recs, lambda r: (fnum(val(r, "fib.iteration")) or -1) > 10)
    assert 0 < it < count(recs, lambda r: val(r, "fib.iteration") is not None)
    assert n_rows(ev, "fib.iteration>10") == it
    assert n_rows(ev, "fib.iteration>=9") == count(
        recs, lambda r: (fnum(val(r, "fib.iteration")) or -1) >= 9)
    # missing keys: false for comparisons, true for != (it is not (=))
    eq10 = count(recs, lambda r: fnum(val(r, "fib.iteration")) == 10)
    assert n_rows(ev, "fib.iteration=10") == eq10
    assert n_rows(ev, "fib.iteration!=10") == n - eq10
    assert n_rows(ev, "not fib.iteration=10") == n - eq10
    assert n_rows(ev, "fib.iteration<0") == 0
    assert n_rows(ev, "fib.iteration=None") == count(
        recs, lambda r: val(r, "fib.iteration") is None)
    assert n_rows(ev, "name!=asyncio") == count(recs, lambda r: r.get("name") != "asyncio")
    assert n_rows(ev, "level=info") == count(recs, lambda r: r.get("levelno") == "20")
    assert n_rows(ev, "levelname=debug") == count(recs, lambda r: r.get("levelno") == "10")
    assert n_rows(ev, "levelno>=20") == count(recs, lambda r: int(r["levelno"]) >= 20)
    # a uuid in upper case finds the (lower-case) stored tag
    tag = next(r["academy.action_tag"] for r in recs if val(r, "academy.action_tag"))
    want = count(recs, lambda r: str(r.get("academy.action_tag", "")).lower() == tag.lower())
    assert want > 1
    assert n_rows(ev, f"academy.action_tag={tag.upper()}") == want
    assert n_rows(ev, f"academy.action_tag~{tag.upper()[:8]}") == want
    # regex, bare word (case-insensitive), quoted text
    rx = re.compile(r"fib step \d+ -> 1")
    assert n_rows(ev, r'message~"fib step \d+ -> 1"') == count(
        recs, lambda r: rx.search(r["message"]) is not None)
    assert n_rows(ev, r'message!~"fib step \d+ -> 1"') == count(
        recs, lambda r: rx.search(r["message"]) is None)
    assert n_rows(ev, "FIB") == count(recs, lambda r: "fib" in r["message"].lower())
    assert n_rows(ev, '"Fib Step 9"') == count(
        recs, lambda r: "fib step 9" in r["message"].lower())
    # pseudo keys
    t0 = min(float(r["created"]) for r in recs)
    assert n_rows(ev, "@t>2.5") == count(recs, lambda r: float(r["created"]) - t0 > 2.5)
    assert n_rows(ev, "@row<100") == 100
    # lexicographic strings, also for a quoted number; a bare number orders the values
    # that are numbers (none here)
    assert n_rows(ev, "name>fib") == count(recs, lambda r: r["name"] > "fib")
    assert n_rows(ev, 'academy.action>"5"') == count(
        recs, lambda r: val(r, "academy.action") is not None and r["academy.action"] > "5")
    assert n_rows(ev, "academy.action>5") == 0
    # combinations
    assert n_rows(ev, "academy.action=next_item or fib.iteration>10 fib.value>100") == count(
        recs, lambda r: r.get("academy.action") == "next_item" or (
            (fnum(val(r, "fib.iteration")) or -1) > 10 and (fnum(val(r, "fib.value")) or -1)
            > 100))


def test_eval_traceback_pool(FAIL: str) -> None:
    ev, recs = pool(FAIL)
    n = len(recs)
    has_tb = count(recs, lambda r: val(r, "exc_text") is not None)
    assert 0 < has_tb < n
    # Every academy record has the key exc_text (often spelled "None"): has: is about
    # the key, != None about a value.
    assert n_rows(ev, "has:exc_text") == count(recs, lambda r: "exc_text" in r) == n
    assert n_rows(ev, "exc_text!=None") == has_tb
    assert n_rows(ev, "exc_text=None") == n - has_tb
    assert n_rows(ev, "exc_text~RuntimeError") == count(
        recs, lambda r: "RuntimeError" in (val(r, "exc_text") or ""))
    assert n_rows(ev, "level>=warning") == count(recs, lambda r: int(r["levelno"]) >= 30)
    assert n_rows(ev, "level>=warning") > 0
    assert n_rows(ev, "level=error") == count(recs, lambda r: r["levelno"] == "40")
    assert n_rows(ev, "injected") == count(recs, lambda r: "injected" in r["message"].lower())


def test_select_is_in_time_order(BIG: str) -> None:
    ev, _ = pool(BIG)
    rows = select(ev, "academy.action=next_item")
    assert len(rows) == n_rows(ev, "academy.action=next_item")
    t = ev.created[rows]
    assert np.all(np.diff(t) >= 0)
    assert len(select(ev, "")) == ev.n
    assert list(select(ev, {"op": "cmp", "key": "level", "cmp": ">=", "value": "info"})) == \
        list(select(ev, "levelno>=20"))


def test_eval_errors_have_positions(BIG: str) -> None:
    ev, _ = pool(BIG)
    with pytest.raises(QueryError) as info:
        evaluate(parse("name=x or fib.iteration>abc"), ev)
    assert info.value.position == len("name=x or fib.iteration>")
    assert "numeric" in info.value.message
    with pytest.raises(QueryError) as info:
        evaluate(from_json({"op": "not", "arg": {"op": "cmp", "key": "levelno", "cmp": "<",
                                                 "value": "abc"}}), ev)
    assert info.value.path == "$.arg.value"
    # '=' with a non-number on a numeric key is not an error: it matches nothing
    assert n_rows(ev, "fib.iteration=abc") == 0


def test_explain(BIG: str) -> None:
    ev, _ = pool(BIG)
    notes = explain(parse("fib.iteraton>3 nokey=1"), ev)
    assert any("no event has key 'fib.iteraton'" in s and "fib.iteration" in s for s in notes)
    assert any("no event has key 'nokey'" in s for s in notes)
    notes = explain(parse("fib.iteration!=3"), ev)
    assert any("missing in" in s and "!=" in s for s in notes)
    assert any("not numeric" in s for s in explain(parse("academy.action>3"), ev))
    assert any("unquoted" in s for s in explain(parse('academy.action>"3"'), ev))
    assert any("error:" in s for s in explain(parse("fib.iteration>abc"), ev))
    assert any("unquoted" in s for s in explain(parse('exc_text!="None"'), ev))
    assert any("has:exc_text" in s for s in explain(parse("exc_text"), ev))
    assert explain(parse("levelno>=30 academy.action=next_item"), ev) == []


# -- two dialects ----------------------------------------------------------------------

TAG = "2F1C0000-AAAA-4BBB-8CCC-DDDDEEEEFFFF"


def _typed_records() -> list[dict[str, Any]]:
    recs = []
    for i in range(60):
        r: dict[str, Any] = {
            "created": 1700000000.0 + i * 0.5,
            "name": "asyncio" if i % 2 else "fibagents",
            "levelno": 30 if i % 5 == 0 else 10,
            "levelname": "WARNING" if i % 5 == 0 else "DEBUG",
            "exc_text": "Traceback: RuntimeError" if i % 11 == 0 else None,
            "process": 100 + i % 3,
            "message": f"fib step {i} -> {i * i}" if i % 4 else f"Timeout after {i} s",
        }
        if i % 3 == 0:
            r["fib.iteration"] = i
        if i % 4 == 0:
            r["academy.action"] = "next_item"
            r["academy.action_tag"] = TAG if i % 8 == 0 else TAG.lower()
        if i % 10 == 0:  # beyond 64 bits, and beyond the 40 characters scalar() parses
            r["fib.big"] = 10**50 + i
        if i % 7 == 0:
            r["fib.ok"] = i % 2 == 0
            r["fib.delay_s"] = i / 10
        recs.append(r)
    return recs


def _academy(v: Any) -> str:
    return str(v)  # the JSON pool writes every value as str(v): None -> "None"


def _write_pool(path: Any, recs: list[dict[str, Any]]) -> Events:
    path.mkdir()
    with open(path / "a1b2c3d4-0000-4000-8000-000000000001.jsonlog", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    reader = PoolReader(str(path))
    load(reader)
    return Events(reader.store)


DIALECT_QUERIES: list[tuple[str, Any]] = [
    ("fib.iteration>10", lambda i: i % 3 == 0 and i > 10),
    ("fib.iteration=12", lambda i: i == 12),
    ("fib.iteration!=12", lambda i: i != 12),
    ("fib.iteration~^1", lambda i: i % 3 == 0 and str(i).startswith("1")),
    ("has:fib.iteration", lambda i: i % 3 == 0),
    ("not has:fib.iteration", lambda i: i % 3 != 0),
    ("fib.delay_s>=1.4", lambda i: i % 7 == 0 and i / 10 >= 1.4),
    ("fib.ok=true", lambda i: i % 7 == 0 and i % 2 == 0),
    ("fib.ok=False", lambda i: i % 7 == 0 and i % 2 == 1),
    ("level>=warning", lambda i: i % 5 == 0),
    ("levelname=WARNING", lambda i: i % 5 == 0),
    (f"academy.action_tag={TAG}", lambda i: i % 4 == 0),
    (f"academy.action_tag={TAG.lower()}", lambda i: i % 4 == 0),
    ("exc_text!=None", lambda i: i % 11 == 0),
    ("exc_text=None", lambda i: i % 11 != 0),
    ("has:exc_text", lambda i: True),
    (r'message~"step \d+ -> 1"', lambda i: i % 4 != 0 and str(i * i).startswith("1")),
    ("TIMEOUT", lambda i: i % 4 == 0),
    ("name=asyncio or fib.iteration<5", lambda i: i % 2 == 1 or (i % 3 == 0 and i < 5)),
    ("process=101", lambda i: i % 3 == 1),
    ("fib.big>1e49", lambda i: i % 10 == 0),
    ("fib.big<1e49", lambda i: False),
    ("@t<=2", lambda i: i * 0.5 <= 2),
]


def test_same_query_on_both_dialects(tmp_path: Any) -> None:
    typed = _typed_records()
    academy = [{k: _academy(v) for k, v in r.items()} for r in typed]
    ev_t = _write_pool(tmp_path / "typed", typed)
    ev_a = _write_pool(tmp_path / "academy", academy)
    assert ev_t.n == ev_a.n == len(typed)
    for text, pred in DIALECT_QUERIES:
        want = np.array([bool(pred(i)) for i in range(len(typed))])
        got_t = evaluate(parse(text), ev_t)
        got_a = evaluate(parse(text), ev_a)
        assert np.array_equal(got_t, want), text
        assert np.array_equal(got_a, want), text


def test_message_cache_follows_a_growing_store(tmp_path: Any) -> None:
    path = tmp_path / "live"
    path.mkdir()
    f = path / "a1b2c3d4-0000-4000-8000-000000000002.jsonlog"
    lines = [json.dumps({"created": str(1700000000 + i), "message": f"m {i}",
                         "levelno": "20"}) for i in range(10)]
    f.write_text("\n".join(lines[:6]) + "\n")
    reader = PoolReader(str(path))
    load(reader)
    q = parse("message~[135]")
    first = Events(reader.store)
    assert list(np.flatnonzero(evaluate(q, first))) == [1, 3, 5]
    with open(f, "a") as out:
        out.write("\n".join(lines[6:]) + "\n")
    reader.poll()
    second = Events(reader.store)
    assert second.n == 10
    assert list(np.flatnonzero(evaluate(q, second))) == [1, 3, 5]
    assert list(np.flatnonzero(evaluate(parse("message~[79]"), second))) == [7, 9]
    assert list(np.flatnonzero(evaluate(q, first))) == [1, 3, 5]  # an older snapshot
    # the result handed out is a copy: changing it does not change the cache
    got = evaluate(q, second)
    got[:] = True
    assert int(evaluate(q, second).sum()) == 3


def test_long_messages_are_tested_in_full(tmp_path: Any) -> None:
    long = "x" * 5000 + " needle"  # beyond the in-memory cap
    recs = [{"created": 1.0, "message": long}, {"created": 2.0, "message": "short"}]
    ev = _write_pool(tmp_path / "long", recs)
    assert list(np.flatnonzero(evaluate(parse("NEEDLE"), ev))) == [0]
    assert list(np.flatnonzero(evaluate(parse("message~needle$"), ev))) == [0]
    assert list(np.flatnonzero(evaluate(parse(f'message="{long}"'), ev))) == [0]


def test_sparse_and_matches_full_evaluation(tmp_path: Any) -> None:
    # An 'and' tests the message only on rows the cheap side kept; same answer.
    ev = _write_pool(tmp_path / "p", _typed_records())
    a = evaluate(parse("levelno>=30 fib"), ev)
    b = evaluate(parse("levelno>=30"), ev) & evaluate(parse("fib"), ev)
    assert np.array_equal(a, b)
    assert not math.isnan(float(a.sum()))


def test_message_tests_across_slices() -> None:
    """Messages are tested a slice at a time (so other threads get the GIL): the mask is
    the same as one test per message, from a start inside a slice to an end inside
    another, for every kind of message test."""
    from features.query_values import _SLICE, _message_test, _tested

    msgs = [f"fib step {i}" if i % 7 else f"Time out at {i}" for i in range(2 * _SLICE + 99)]
    start, n = _SLICE // 3, len(msgs) - 5
    for test, want in ((("text", "time out"), lambda m: "time out" in m.lower()),
                       (("match", "step 1"), lambda m: "step 1" in m),
                       (("match", r"step \d*7$"), lambda m: m.startswith("fib") and
                        m.endswith("7")),
                       (("cmp", "=", "fib step 8"), lambda m: m == "fib step 8")):
        got = _tested(_message_test(test), msgs, start, n)
        assert got.tolist() == [want(m) for m in msgs[start:n]], test


def test_substring_tests_on_packed_texts() -> None:
    """A substring test on messages kept packed (a parse worker's, a saved reading's) finds
    them in the bytes: the same mask as a test per text, for a needle across two texts, in
    one just after such a place, in empty texts, non-ASCII and lone-surrogate texts, case
    folded or not, over parts of a few texts and rows appended as text."""
    from features.columns import Messages, pack_texts
    from features.query_values import _SLICE, _message_test, _substring, _tested

    rnd = random.Random(7)
    tokens = ["a", "A", "aa", "b", "", "é", "İ", "\ud800", "x", "time out", "TIME", "ab"]
    texts = ["".join(rnd.choice(tokens) for _ in range(rnd.randrange(0, 5)))
             for _ in range(2 * _SLICE + 321)]
    texts[:4] = ["xa", "ab", "a", "aab"]  # "aa" across the first two; "ab" just after it
    msgs = Messages()
    at = 0
    while at < len(texts) - 500:  # parts of 1 to 90 texts, then a tail of text
        k = rnd.randrange(1, 90)
        msgs.extend(pack_texts(texts[at:at + k]))
        at += k
    msgs.extend(texts[at:])
    assert msgs[:] == texts
    needles = ["a", "aa", "ab", "b", "x", "time", "é", "İ", "i̇", "\ud800", "time out", "zz"]
    for needle in needles:
        for test in (("text", needle.lower()), ("match", needle)):
            fn = _message_test(test)
            for start, n in ((0, len(texts)), (3, _SLICE + 17), (1, 5), (_SLICE - 2, at + 9)):
                got = _tested(fn, msgs, start, n, _substring(test))
                assert got.tolist() == list(fn(texts[start:n])), (test, start, n)
    # The bytes answered, where they can: not a fallback to testing each text.
    ascii_part = pack_texts(["xa", "ab", "a", "aab", "", "AAB"])
    m = Messages()
    m.extend(ascii_part)
    assert m.contains("aa", 0, 6).tolist() == [False, False, False, True, False, False]
    assert m.contains("aa", 0, 6, fold=True).tolist() == [False, False, False, True, False, True]
    assert m.contains("ab", 1, 4).tolist() == [True, False, True]
    m.extend(["tail aa"])
    assert m.contains("aa", 0, 7) is None  # rows kept as text
    m2 = Messages()
    m2.extend(pack_texts(["é aa", "aa"]))
    assert m2.contains("aa", 0, 2).tolist() == [True, True]
    assert m2.contains("aa", 0, 2, fold=True) is None  # lower case is not a byte's there
    assert m2.contains("é", 0, 2).tolist() == [True, False]
