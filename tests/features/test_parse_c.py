"""The compiled block loop (features/_parse_c.c) against the Python one it stands in for:
every column, table and bad line of the batches the two make, on every file of the sample
runs and on forged blocks (bad, torn and blank lines, lines that are not objects, nested
values where combos, tags and the workflow's keys are kept, empty and one-key records)
and random ones, cut into pieces of several sizes. Skipped when it was not built (no C
compiler at install); nothing uses it then."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import features.parse as P
from features.batch import BadLine
from features.parse import parse_block
from tests.features.test_reader import rec

pytestmark = pytest.mark.skipif(P._scan is None, reason="features._parse_c was not built "
                                "(no C compiler at install) or ACADEMY_TUI_PURE_PYTHON is set")

TA, TM = "academy.action_tag", "academy.message_tag"
U1 = "2F1C7E4A-0000-4000-8000-00000000ABCD"


def _same(a: Any, b: Any, where: str = "batch") -> None:
    """Equal, structurally: arrays by dtype and values (NaN equal), dataclasses field by
    field, containers item by item."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


def _both(data: bytes, monkeypatch: pytest.MonkeyPatch, sub: int | None = None) -> None:
    if sub is not None:
        monkeypatch.setattr(P, "SUB_BLOCK", sub)
    compiled = parse_block(data, 3, 100, 10)
    with monkeypatch.context() as m:
        m.setattr(P, "_scan", None)
        pure = parse_block(data, 3, 100, 10)
    _same(compiled, pure)


def test_every_sample_file_parsed_the_same(samples_home: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((samples_home / "logs").rglob("*.jsonlog"))
    assert len(files) >= 20
    for f in files:
        _both(f.read_bytes(), monkeypatch)


def _forged() -> bytes:
    lines: list[bytes] = []
    for i in range(400):
        r: dict[str, Any] = rec(i, **({TA: U1.lower()} if i % 3 else {}))
        if i % 7 == 1:
            r["fib.iteration"] = str(i)  # a workflow key kept
        if i % 17 == 2:
            r["name"] = ["nested", {"in": "a combo"}]
        if i % 19 == 3:
            r[TM] = {"nested": "tag"}
        if i % 23 == 4:
            r["fib.deep"] = [[["x"]]]
        if i % 29 == 5:
            r["created"] = {"no": "time"}
        if i % 31 == 6:
            r = {"message": f"one key {i}"}
        lines.append(json.dumps(r).encode())
        k = i % 37
        if k == 7:
            lines.extend([b"", b"   ", b'{"created": "1", "trunc', b"not json", b"[1, 2]",
                          b'"a string"', b"42", b"null", b"{}", b"\x00\x00\x00", b"\r",
                          b'{"message": "a NUL\x00inside"}', b'{"message": "ok"}\r'])
        elif k == 8:  # a torn record: its head, a whole record, then its tail
            whole = json.dumps(rec(10_000 + i)).encode()
            torn = json.dumps(rec(20_000 + i)).encode()
            lines.extend([torn[:50] + whole, torn[50:]])
        elif k == 9:
            lines.append(json.dumps(rec(30_000 + i)).encode().replace(b"message", b"mess\xffage"))
        elif k == 10:
            lines.append(b'{"a": "1", "a": "2", "message": "a duplicate key"}')
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("sub", [1, 97, 4096, 1 << 20])
def test_forged_blocks_parsed_the_same(sub: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _forged()
    _both(data, monkeypatch, sub)
    _both(data.rstrip(b"\n"), monkeypatch, sub)  # the last line not ended
    _both(b"\n\n" + data, monkeypatch, sub)


def test_key_sets_sharing_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled loop finds a record's key set by its size and last four keys, then
    compares every key: key sets alike in those (another first key, the same keys in
    another order, a key equal but not the same object), interleaved record by record,
    are each their own."""
    lines = []
    for i in range(600):
        head = [f"k{i % 5}", "created"] if i % 3 else ["created", f"k{i % 5}"]
        r = {k: str(i) for k in [*head, "name", "academy.action", "fib.x", "message"]}
        lines.append(json.dumps(r).encode())
    data = b"\n".join(lines) + b"\n"
    _both(data, monkeypatch)
    b = parse_block(data, 0)
    assert len(b.shape_table) == 10 and len(b) == 600
    for k, keys in enumerate(b.shape_table):  # each record has the key set it names
        for row in np.flatnonzero(b.shape == k)[:20].tolist():
            assert tuple(json.loads(lines[row])) == keys


def test_what_the_forged_block_holds() -> None:
    """The forged block reaches every way out of the compiled loop: bad lines, lines that
    are not objects, records recovered from torn and invalid lines, nested combos."""
    b = parse_block(_forged(), 0)
    reasons = {x.reason for x in b.bad}
    assert "not a JSON object" in reasons and any("interleaved" in r for r in reasons)
    assert any("UTF-8" in r for r in reasons) and b.blank > 0 and b.repaired
    assert any("nested" in str(t[0]) for t in b.combo_table)  # the logger name's place
    assert isinstance(b.bad[0], BadLine)


def test_no_memory_kept_per_block(samples_home: Path) -> None:
    """Parsing the same block again and again keeps nothing (references released)."""
    f = max((samples_home / "logs").rglob("*.jsonlog"), key=lambda p: p.stat().st_size)
    data = f.read_bytes()[: 1 << 20]
    parse_block(data, 0)
    forged = _forged()
    parse_block(forged, 0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            parse_block(data, 0)
            parse_block(forged, 0)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024, after - before


def test_bad_arguments_raise_not_crash() -> None:
    """A block that is not bytes, a position outside it, an entry that is not one, a
    shapes table that is not a dict: errors that say so, not a crash."""
    code = (
        "import orjson, features._parse_c as c\n"
        "args = [b'{}\\n', 0, 0, orjson.loads, orjson.JSONDecodeError, {}, lambda k: (1,), {},"
        " [], [], [], [], [], []]\n"
        "print(c.scan(b'', *args[1:]))\n"
        "for i, bad in ((0, [b'{}']), (1, 4), (1, -1), (0, b'{}'), (5, [])):\n"
        "    a = list(args); a[i] = bad\n"
        "    try: c.scan(*a)\n"
        "    except (TypeError, ValueError) as e:"
        " print(type(e).__name__, str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout.split("\n")
    assert out[0] == "(0, 0, 0)", out
    assert out[1] == "TypeError argument 1 must be bytes, not list", out
    assert out[2] == out[3] == "ValueError the position is outside the block", out
    assert "a tuple of nine" in out[4] and out[4].startswith("TypeError"), out
    assert out[5] == "TypeError argument 6 must be dict, not list", out


def test_a_parser_keeping_a_line_is_stopped() -> None:
    """The compiled loop hands the parser a view into the block, not a copy: a parser that
    kept it (orjson does not) would read freed memory later. The scan stops with an error
    instead, and the view kept is released: reading it raises, it does not crash."""
    kept: list[memoryview] = []

    def keeping(view: memoryview) -> dict[str, str]:
        kept.append(view)
        return {"message": "x"}

    assert P._scan is not None
    with pytest.raises(RuntimeError, match="kept a view"):
        P._scan(b'{"message": "x"}\n' * 3, 0, 0, keeping, ValueError, {}, lambda k: (1,), {},
                [], [], [], [], [], [])
    assert len(kept) == 1
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])


def _random_block(rng: random.Random, n: int) -> bytes:
    """Lines of random records: key sets drawn from Academy's keys, the workflow's own and
    odd ones (non-ASCII, empty, duplicated), values of every JSON type (nested ones too, at
    any key), and now and then a line that is not a record."""
    keys = ["created", "message", "exc_text", "name", "msg", "levelno", "process",
            "academy.action", "academy.action_state", "academy.agent_id", TA, TM,
            "academy.message_label", "academy.args", "academy.result", "fib.iteration",
            "fib.x", "", "ключ", "a\u0000b", "@file"]
    atoms: list[Any] = [None, True, False, 0, -1, 2**63, 1.5, "", "None", "20", "x" * 50,
                        "AgentId<ABCDEF12>", U1, "é", "1e5", [1, "2"], {"k": ["v"]}, [[[]]]]
    lines: list[bytes] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.03:
            lines.append(rng.choice([b"", b"  ", b"[1]", b"null", b"42", b'"s"', b"{",
                                     b'{"created": "1", "tru', b"\xff\xfe{}"]))
            continue
        rec: dict[str, Any] = {}
        for k in rng.sample(keys, rng.randrange(0, len(keys))):
            rec[k] = rng.choice(atoms) if rng.random() < 0.3 else f"{k}-{rng.randrange(5)}"
        if rng.random() < 0.7:
            rec["created"] = str(1700000000 + i / 1000)
        text = json.dumps(rec)
        if rng.random() < 0.02:  # a duplicate key: the last one counts
            text = text[:-1] + (', "name": "dup"}' if rec else '"name": "dup"}')
        lines.append(text.encode())
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("seed", range(6))
def test_random_blocks_parsed_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    _both(_random_block(rng, 1500), monkeypatch, rng.choice([97, 4096, 1 << 20]))


def _intern_inputs(rng: random.Random) -> tuple[dict[Any, int], list[Any], list[Any] | None]:
    """An index (maybe holding None, maybe longer than its values list), values to code:
    texts, None, numbers equal as keys (0, False, 0.0), a NaN object twice, tuples."""
    nan = float("nan")
    atoms: list[Any] = ["a", "b", "A", "", "é", None, 0, False, 0.0, 1, True, 1.0, nan,
                        float("nan"), ("t", 1), U1, U1.lower(), 2**70]
    pool = atoms + [f"v{k}" for k in range(40)]
    index: dict[Any, int] = {}
    values: list[Any] | None = [] if rng.random() < 0.5 else None
    for v in rng.sample(pool, rng.randrange(0, 10)):
        if v not in index:
            index[v] = len(index) if values is None else len(values)
            if values is not None:
                values.append(v)
    if values is not None and rng.random() < 0.3:
        values.append("unindexed")  # codes count from the values list's length
    return index, [rng.choice(pool) for _ in range(rng.randrange(0, 60))], values


def test_intern_codes_compiled_as_python() -> None:
    """features.columns.intern_codes in C gives the codes, index and values list the Python
    function gives (index order included), on random inputs; an unhashable value raises
    TypeError and changes nothing, both ways."""
    from features import columns

    assert columns.intern_codes is not columns._intern_codes
    rng = random.Random(7)
    for _ in range(2000):
        index, vals, values = _intern_inputs(rng)
        i2, v2 = dict(index), None if values is None else list(values)
        got = columns.intern_codes(index, vals, values)
        want = columns._intern_codes(i2, list(vals), v2)
        assert got == want and list(index.items()) == list(i2.items()) and values == v2
    for bad in (["a", ["unhashable"], "b"], [{"k": 1}]):
        index, values = {"x": 0}, ["x"]
        for f in (columns.intern_codes, columns._intern_codes):
            with pytest.raises(TypeError):
                f(index, bad, values)
            assert index == {"x": 0} and values == ["x"]
    with pytest.raises(TypeError, match="list or None"):
        columns.intern_codes({}, [], ("not", "a list"))


def test_intern_codes_values_that_change_the_list() -> None:
    """A value whose comparison shortens the list being coded (a notebook's own class)
    stops the compiled function with an error, not a read past the list's end."""
    from features import columns

    vals: list[Any] = []

    class Shrinks:
        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            vals.clear()
            return False

    vals.extend([Shrinks(), Shrinks(), "a", "b"])
    with pytest.raises(RuntimeError, match="changed size"):
        columns.intern_codes({}, vals)
