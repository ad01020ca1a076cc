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
