"""Table rows as records, all at once or a chunk at a time (what the exports write from):
the same records, NaN as None, across chunk edges."""

from __future__ import annotations

import numpy as np

from features.table import Table


def test_records_a_chunk_at_a_time_are_the_records() -> None:
    n = 1001
    t = Table({"i": np.arange(n), "x": np.where(np.arange(n) % 3 == 0, np.nan, 0.5),
               "s": np.array([f"r{i}" if i % 5 else None for i in range(n)], dtype=object)})
    want = [{"i": i, "x": None if i % 3 == 0 else 0.5, "s": f"r{i}" if i % 5 else None}
            for i in range(n)]
    assert t.records() == want
    for chunk in (1, 7, 1000, 1001, 5000):
        assert list(t.iter_records(chunk)) == want, chunk
    assert list(Table({"i": np.arange(0)}).iter_records()) == []


def test_sort_with_a_limit_is_the_head_of_the_whole_sort() -> None:
    """``sort(..., limit=n)`` copies n rows only, and they are the first n of the whole
    sort: ties kept in order, missing values last, numbers and texts alike."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 200).astype(float)
    x[rng.integers(0, 200, 30)] = np.nan
    names = np.array([None if i % 7 == 0 else f"n{i % 11}" for i in range(200)], dtype=object)
    t = Table({"x": x, "name": names, "i": np.arange(200)})
    for by in ("x", "name"):
        for desc in (False, True):
            for n in (0, 1, 20, 199, 500):
                got, want = t.sort(by, desc, limit=n), t.sort(by, desc).head(n)
                assert got["i"].tolist() == want["i"].tolist(), (by, desc, n)
