"""A typed record's values that Python takes for one dict key (``0``, ``False`` and
``0.0``; ``1``, ``True`` and ``1.0``) are each shown as written where a block interns
them: in a combo key and in a tag, with the compiled loop and the Python one, in one
block and in blocks of several files merged (features.batch.merge). Academy writes texts
only; a pool from another writer, or a forged one, may hold such values."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

import features.parse as P
from features.batch import Batch, merge
from features.parse import parse_block

LOOPS = ["compiled", "python"]


def _values(b: Batch, key: str) -> tuple[list[Any], list[Any]]:
    """Each record's value of combo key ``key`` and of the first tag key, as the batch's
    tables give them."""
    j = P.COMBO_KEYS.index(key)
    return ([b.combo_table[c][j] for c in b.combo.tolist()],
            [None if t < 0 else b.tag_tables[0][t] for t in b.tags[0].tolist()])


@pytest.mark.parametrize("loop", LOOPS)
def test_typed_values_equal_as_keys_stay_apart(loop: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if loop == "python":
        monkeypatch.setattr(P, "_scan", None)
    elif P._scan is None:
        pytest.skip("features._parse_c was not built")
    written = [0, False, 0.0, True, 1, 1.0, "1", [1], "[1]", 0, None, "x"]
    lines = [orjson.dumps({"name": v, P.TAG_KEYS[0]: v, "message": str(i)})
             for i, v in enumerate(written)]
    want = ["0", "False", "0.0", "True", "1", "1.0", "1", "[1]", "[1]", "0", None, "x"]
    one = parse_block(b"\n".join(lines) + b"\n", 0)
    assert _values(one, "name") == (want, want)
    two = merge([parse_block(b"\n".join(lines[:4]) + b"\n", 0),
                 parse_block(b"\n".join(lines[4:]) + b"\n", 1)])
    assert _values(two, "name") == (want, want)
    assert np.array_equal(one.offset[4:] - one.offset[4], two.offset[4:])


@pytest.mark.parametrize("loop", LOOPS)
def test_combo_texts_normalised_once_give_what_the_normaliser_gives(
        loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A combo's texts are normalised once a process (features.parse._TEXT_NORMS), then
    looked up: each block still gets the normaliser's own values, a typed value is never
    taken for a text equal to it as a key, and the memo keeps to its bound."""
    if loop == "python":
        monkeypatch.setattr(P, "_scan", None)
    elif P._scan is None:
        pytest.skip("features._parse_c was not built")
    monkeypatch.setattr(P, "_TEXT_NORMS", tuple({} for _ in P.COMBO_KEYS))
    monkeypatch.setattr(P, "TEXT_NORMS_MAX", 5)
    rng = np.random.default_rng(7)
    texts = ["20", " 20", "020", "None", "none", "", "2.0", "2e3", "AgentId<1a2b>",
             "  AgentId<1A2B> ", "x" * 40, "-1", "99999999999999999999", "ä", "0", "1"]
    typed = [0, False, 0.0, True, 1, 20, None]
    keys = ["name", "levelno", "process", "academy.agent_id", "academy.action"]
    for block in range(30):
        recs = []
        for i in range(40):
            d: dict[str, Any] = {"message": f"{block}.{i}"}
            for k in keys:
                pick = int(rng.integers(len(texts) + len(typed) + 1))
                if pick < len(texts):
                    d[k] = texts[pick]
                elif pick < len(texts) + len(typed):
                    d[k] = typed[pick - len(texts)]
            recs.append(d)
        b = parse_block(b"".join(orjson.dumps(d) + b"\n" for d in recs), 0)
        for k in keys:
            j = P.COMBO_KEYS.index(k)
            got = [b.combo_table[c][j] for c in b.combo.tolist()]
            want = [P._NORMALISE[k](d.get(k)) for d in recs]
            assert got == want, (block, k)
        assert all(len(m) <= 5 for m in P._TEXT_NORMS)
