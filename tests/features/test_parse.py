"""The block parser's column work: times, tags, messages and locations, checked record by
record against what the bytes say."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from features.normalize import to_float
from features.parse import parse_block
from features.parse_values import _floats
from features.record_keys import FLAG_EXC, FLAG_MSG_CUT, FLAG_REPAIRED, MESSAGE_CAP
from tests.features.test_reader import rec

TA, TM, TL = "academy.action_tag", "academy.message_tag", "academy.message_label"
U1 = "2F1C7E4A-0000-4000-8000-00000000ABCD"
U2 = "9b7c1d2e-1111-4111-8111-000000000001"
U3 = "9b7c1d2e-1111-4111-8111-000000000002"


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("values", [
    ["1700000000.5", " 12 ", "1e3", "-0", "7"],
    ["1.5", "None", "nan", "inf", "1,2", "", "true", "[1]", "1_000", "0x10", "1.", "+2"],
    [1700000000.25, 3, None, True, "4.5", "x"],
    [1.5, 2, 3.25],
    [],
])
def test_created_times_in_bulk_equal_one_at_a_time(values: list[Any]) -> None:
    got = _floats(values)
    assert got.dtype == np.float64 and len(got) == len(values)
    for v, g in zip(values, got.tolist(), strict=True):
        assert same(g, to_float(v)), v


def test_created_number_strings_keep_every_bit() -> None:
    rng = random.Random(7)
    xs = [repr(1_700_000_000 + rng.random() * 1e6) for _ in range(5000)]
    xs += [str(rng.randint(0, 10**15)) for _ in range(100)] + ["1e-300", "2.5e+10"]
    assert _floats(xs).tolist() == [float(x) for x in xs]


def block(records: Sequence[Mapping[str, Any] | str]) -> bytes:
    return b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n"
                    for r in records)


def tags_of(b: Any, i: int) -> tuple[Any, ...]:
    out = []
    for codes, table in zip(b.tags, b.tag_tables, strict=True):
        c = int(codes[i])
        out.append(None if c < 0 else table[c])
    return tuple(out)


def test_tags_of_every_key_mix_in_one_block() -> None:
    typed_null = {**rec(5, **{TM: U2}), TA: None}  # typed records may write null
    typed_nested = {**rec(6), TA: {"odd": [1, 2]}}
    rows: list[tuple[dict[str, Any], tuple[Any, ...]]] = [
        (rec(0), (None, None, None)),
        (rec(1, **{TA: U1}), (U1.lower(), None, None)),
        (rec(2, **{TA: U1}), (U1.lower(), None, None)),
        (rec(3, **{TM: U2, TL: U3}), (None, U2, U3)),
        (rec(4, **{TA: U1, TM: U2, TL: U3}), (U1.lower(), U2, U3)),
        (typed_null, (None, U2, None)),
        (typed_nested, ('{"odd":[1,2]}', None, None)),
        (rec(7, **{TA: U1.lower()}), (U1.lower(), None, None)),
        (rec(8, **{TL: U3}), (None, None, U3)),
        (rec(9, **{TA: U2}), (U2, None, None)),
        (rec(10, **{TA: U1}), (U1.lower(), None, None)),
    ]
    # Long enough for the whole path, the same records in two orders.
    for order in (rows * 10, rows[::-1] * 10):
        b = parse_block(block([r for r, _ in order]), 0)
        assert len(b) == len(order)
        for i, (_, want) in enumerate(order):
            assert tags_of(b, i) == want, i


def test_messages_and_flags() -> None:
    long = "x" * (MESSAGE_CAP + 10)
    recs = [
        rec(0),
        {**rec(1), "message": long},
        {**rec(2), "message": 42},
        {**rec(3), "message": None},
        {**rec(4), "exc_text": "Traceback (most recent call last): ..."},
        {**rec(5), "exc_text": None},
        {**rec(6), "exc_text": ""},
    ]
    for order in (recs, recs * 20):
        b = parse_block(block(order), 0)
        msgs = {i % len(recs): (b.message[i], int(b.flags[i])) for i in range(len(order))}
        assert msgs[0] == ("message 0", 0)
        assert msgs[1] == (long[:MESSAGE_CAP], FLAG_MSG_CUT)
        assert msgs[2] == ("42", 0)
        assert msgs[3] == ("", 0)
        assert msgs[4] == ("message 4", FLAG_EXC)
        assert msgs[5] == ("message 5", 0) and msgs[6] == ("message 6", 0)


@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("newline_at_end", [True, False])
def test_every_record_knows_its_line_offset_and_length(noise: bool,
                                                       newline_at_end: bool) -> None:
    """With and without blank and corrupt lines between records (the two ways the block
    works out locations), and with the last line ended or not."""
    lines: list[str] = []
    for i in range(150):
        lines.append(json.dumps(rec(i, **({TA: U1} if i % 3 else {}))))
        if noise and i % 40 == 7:
            lines.extend(["", "   ", '{"created": "1", "trunc', "not json"])
    data = "\n".join(lines).encode() + (b"\n" if newline_at_end else b"")
    base_offset, base_line = 1000, 50
    b = parse_block(data, 0, base_offset, base_line)
    want = []
    pos = 0
    for k, text in enumerate(lines):
        if text.startswith('{"formatted"'):
            want.append((base_line + k + 1, base_offset + pos, len(text.encode())))
        pos += len(text.encode()) + 1
    got = list(zip(b.line.tolist(), b.offset.tolist(), b.length.tolist(), strict=True))
    assert got == want
    assert b.lines == len(lines)
    assert not (b.flags & FLAG_REPAIRED).any()
    if noise:
        assert b.blank == 2 * 4 and len(b.bad) == 2 * 4
        corrupt = [k for k, t in enumerate(lines) if t in ('{"created": "1", "trunc', "not json")]
        assert sorted(x.line for x in b.bad) == [base_line + k + 1 for k in corrupt]


@pytest.mark.parametrize("sub", [1, 97, 1000, 1 << 20])
def test_splitting_a_block_a_piece_at_a_time_changes_nothing(sub: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Sub-blocks smaller than a line, cutting through lines, blank lines and bad lines
    at their edges: the batch equals the one from a single split."""
    lines = []
    for i in range(60):
        r = rec(i, **({TA: U1} if i % 2 else {}))
        if i % 13 == 5:
            r["message"] = "y" * 3000  # longer than most sub-blocks
        lines.append(json.dumps(r))
        if i % 11 == 3:
            lines.extend(["", "", "garbage {", "  "])
    data = ("\n".join(lines) + "\n\n").encode()
    monkeypatch.setattr("features.parse.SUB_BLOCK", 1 << 30)
    want = parse_block(data, 0, 7, 3)
    monkeypatch.setattr("features.parse.SUB_BLOCK", sub)
    got = parse_block(data, 0, 7, 3)
    for name in ("created", "line", "offset", "length", "flags", "shape", "combo"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    assert got.message == want.message
    assert [tags_of(got, i) for i in range(len(got))] == \
        [tags_of(want, i) for i in range(len(want))]
    assert [(x.line, x.offset, x.reason) for x in got.bad] == \
        [(x.line, x.offset, x.reason) for x in want.bad]
    assert (got.lines, got.blank) == (want.lines, want.blank) == (len(lines) + 1, 6 * 3 + 1)


def test_interning_a_table_keeps_codes_dense_and_stable() -> None:
    from features.columns import Categorical
    from features.normalize import canonical_str

    cat = Categorical(canonical_str)
    first = cat.intern_all(["a", None, "b", "a", "c", "b"])
    assert first.tolist() == [0, -1, 1, 0, 2, 1]
    again = cat.intern_all(iter(["c", "d", None, "d", "a", "e"]))
    assert again.tolist() == [2, 3, -1, 3, 0, 4]
    assert cat.values == ["a", "b", "c", "d", "e"]
    assert all(cat.index[v] == i for i, v in enumerate(cat.values))
    assert cat.intern_all([]).tolist() == [] and cat.intern_all([None]).tolist() == [-1]
    assert cat.array()[again].tolist() == ["c", "d", None, "d", "a", "e"]
