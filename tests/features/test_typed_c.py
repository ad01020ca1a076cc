"""The compiled typing rule (features/_typed_c.c) against the Python one it stands in for
(features.typed._typed_py, _typed_record_py): the same value and the same type, value by
value, on every record of the sample runs, on hostile values and on random texts built
from the characters the rule looks at. The compiled rule is what ``events --format jsonl``
and the payload sizes use when it was built; these tests are skipped when it was not (no
C compiler at install), and then nothing uses it."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tracemalloc
from enum import IntEnum
from pathlib import Path
from typing import Any

import orjson
import pytest

from features import typed as T

C = T.COMPILED
pytestmark = pytest.mark.skipif(C is None, reason="features._typed_c was not built "
                                "(no C compiler at install) or ACADEMY_TUI_PURE_PYTHON is set")


def _same(a: Any, b: Any) -> bool:
    """Equal with equal types (NaN equal to NaN), dicts value by value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


class _Text(str):
    pass


class _Level(IntEnum):
    INFO = 20


HOSTILE: list[Any] = [
    None, True, False, 0, -1, 7, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, 0.5, -0.0,
    float("nan"), float("inf"), 1e308,
    "", "None", "null", "NULL", "none", "Null", "nan", "NaN", "inf", "-inf", "Infinity",
    "0", "00", "007", "20", "-7", "+3", "-0", "1e5", "1E-5", ".5", "5.", ".", "..", "1.2.3",
    "1_000", " 12", "12 ", "12\n", "\t1", "0x1F", "1" * 18, "9" * 18, "1" * 19, "9" * 19,
    "99999999999999999999", "-99999999999999999999", "9" * 40, "9" * 41, "1." + "0" * 16,
    "0" * 17 + ".5", "1.5e300", "1e999", "١٢٣", "１２", "²", "٣.٣", "True", "False",
    "0306D7CC-A49B-4A50-BE80-79C70B9B322C", "0306d7cc-a49b-4a50-be80-79c70b9b322c",
    "AgentId<0306D7CC>", "AgentId<planner>", "UserId<ABCDEF12>", "abc", "abc>", "a" * 36,
    "B" * 35 + ">", "x" * 40, "x" * 41, "\x00", "1\x00", "\x00" * 4, "\ud800", "é", "€1",
    "INFO", "next_item", "academy.manager", "<", ">", "U", "i", "n", "N", "I",
    [], [1, "2"], {}, {"a": "1"}, {"deep": [[["x"]]]}, (1, 2),
    _Text("20"), _Text("None"), _Level.INFO, b"12", bytearray(b"1"),
]


def test_hostile_values_typed_as_the_python_rule_types_them() -> None:
    assert C is not None
    for v in HOSTILE:
        assert _same(C.typed(v), T._typed_py(v)), repr(v)
    rec = {f"k{i}": v for i, v in enumerate(HOSTILE)}
    want = T._typed_record_py(rec)
    assert _same(C.typed_record(rec), want)
    assert _same(T.typed_record(rec), {k: T._typed_py(v) for k, v in rec.items()})
    mine = dict(rec)
    got = C.type_in_place(mine)
    assert got is mine and _same(got, want)  # typed where it lies, no copy


def test_nested_as_deep_as_json_allows() -> None:
    assert C is not None
    deep: Any = "x"
    for _ in range(1000):
        deep = [deep]
    rec = {"a": deep, "b": "1"}
    got = C.typed_record(rec)
    assert got["b"] == 1 and got["a"] == T._typed_py(deep)


def test_random_texts_typed_as_the_python_rule_types_them() -> None:
    """Texts of the characters the rule decides on (digits, dots, signs, exponents, the
    first letters of nan/inf/ids, '>' and non-ASCII digits), 0 to 45 long: 60k of them."""
    assert C is not None
    rng = random.Random(20261207)
    alphabet = "0123456789......+-eEinfaINFAU<>dx ١²"
    for _ in range(60_000):
        n = rng.choice((rng.randrange(0, 6), rng.randrange(0, 21), rng.randrange(30, 46)))
        s = "".join(rng.choice(alphabet) for _ in range(n))
        assert _same(C.typed(s), T._typed_py(s)), repr(s)


def test_every_sample_record_typed_as_the_python_loop_types_it(samples_home: Path) -> None:
    assert C is not None
    n = 0
    for f in sorted((samples_home / "logs").rglob("*.jsonlog")):
        for line in f.read_bytes().splitlines():
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(rec) is dict:
                want = T._typed_record_py(rec)
                assert _same(C.typed_record(rec), want), rec
                assert _same(C.type_in_place(rec), want), rec
                n += 1
    assert n > 10_000


def test_many_distinct_texts_past_the_memo_bound() -> None:
    """Texts handed to the Python rule are remembered up to 65,536; past that the memo
    starts again, and answers stay right."""
    assert C is not None
    for i in range(150_000):
        s = f"-{i}"
        assert C.typed(s) == -i
    assert C.typed("AgentId<ABCDEF12>") == "AgentId<abcdef12>"


def test_no_memory_kept_per_record() -> None:
    """Typing the same records many times keeps nothing but the bounded memo."""
    assert C is not None
    recs = [{"created": f"{1795839467 + i / 1000:.3f}", "levelno": "20", "thread": str(i),
             "name": "academy.agent", "id": f"AgentId<{i % 97:08x}>", "n": i, "none": "None",
             "deep": [i, {"x": str(i)}]} for i in range(2000)]
    for rec in recs:
        C.typed_record(rec)  # the memo filled
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            for rec in recs:
                C.typed_record(rec)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, after - before
    value = "a plain value"
    rec2 = {"v": value, "n": "12"}
    refs = sys.getrefcount(value)
    for _ in range(1000):
        C.typed_record(rec2)
        C.typed(value)
    assert sys.getrefcount(value) == refs


def test_not_configured_and_bad_arguments_raise_not_crash() -> None:
    """A fresh interpreter: the module used before configure() says so; a non-dict record
    and a bad configuration are errors, not a crash."""
    code = (
        "import features._typed_c as c\n"
        "for call in (lambda: c.typed('1'), lambda: c.typed_record({}),\n"
        "             lambda: c.type_in_place({})):\n"
        "    try: call()\n"
        "    except RuntimeError as e: print('not configured:', e)\n"
        "c.configure(frozenset({'None'}), str, '0', 'a', 40)\n"
        "for call in (lambda: c.typed_record([1]),\n"
        "             lambda: c.configure(frozenset(), 1, '', '', 1),\n"
        "             lambda: c.configure(frozenset(), str, 'é', '', 1),\n"
        "             lambda: c.configure(frozenset(), str, '', '', -1)):\n"
        "    try: call()\n"
        "    except (TypeError, ValueError) as e: print(type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["not configured: features._typed_c is not configured"] * 3 + \
        ["TypeError", "TypeError", "ValueError", "ValueError"]


def test_pure_python_switch_turns_it_off() -> None:
    out = subprocess.run([sys.executable, "-c", "import features.typed as t; "
                          "print(t.COMPILED is None, t.typed is t._typed_py)"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "ACADEMY_TUI_PURE_PYTHON": "1"})
    assert out.stdout.split() == ["True", "True"]


def test_events_jsonl_the_same_bytes_compiled_or_pure(samples_home: Path) -> None:
    """The whole command, with the compiled rule and with the Python one: the same bytes,
    on every sample run."""
    for pool in sorted(p for p in (samples_home / "logs").iterdir() if p.is_dir()):
        outs = []
        for pure in ("", "1"):
            env = {**os.environ, "ACADEMY_HOME": str(samples_home),
                   "ACADEMY_TUI_PURE_PYTHON": pure}
            outs.append(subprocess.run(
                [sys.executable, "-m", "tui.cli", "events", str(pool), "--format", "jsonl",
                 "--no-cache"], capture_output=True, check=True, env=env).stdout)
        assert outs[0] == outs[1] and outs[0].count(b"\n") > 0, pool.name
