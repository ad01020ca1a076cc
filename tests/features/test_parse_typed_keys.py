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
