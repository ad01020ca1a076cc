"""A categorical restored from a saved reading builds its value index on first use, once,
whatever the threads asking: codes keep their values and new values get new codes."""

from __future__ import annotations

import pickle
import threading

from features.columns import Categorical
from features.normalize import canonical_str


def test_restored_index_is_built_on_first_use() -> None:
    cat = Categorical(canonical_str)
    codes = [cat.code(f"tag-{i % 50}") for i in range(200)]
    back = pickle.loads(pickle.dumps(cat))
    assert back._index is None  # not built by opening
    assert back.values == cat.values
    assert [back.code(f"tag-{i % 50}") for i in range(200)] == codes
    assert back.code("new") == 50 and back.lookup("new") == 50 and len(back) == 51


def _race(back: Categorical) -> list[str]:
    """Four threads look values up while one codes new ones, all starting at once on a
    categorical whose index is not built yet; returns what the lookers saw wrong."""
    start = threading.Barrier(5)
    wrong: list[str] = []

    def look() -> None:
        start.wait()
        wrong.extend(f"v{i}" for i in range(0, 5000, 7) if back.lookup(f"v{i}") != i)

    def add() -> None:
        start.wait()
        for i in range(5000, 5200):
            back.code(f"v{i}")

    threads = [threading.Thread(target=look) for _ in range(4)]
    threads.append(threading.Thread(target=add))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong


def test_first_use_from_many_threads_codes_each_value_once() -> None:
    for _ in range(20):
        cat = Categorical(canonical_str)
        for i in range(5000):
            cat.code(f"v{i}")
        back = pickle.loads(pickle.dumps(cat))
        assert _race(back) == []
        assert len(back.values) == 5200 == len(set(back.values))
        assert all(back.lookup(f"v{i}") == i for i in range(5200))


def test_code_columns_widen_as_their_values_grow_and_old_views_keep_theirs() -> None:
    """Codes are held in the narrowest type their values allow: a byte until the 128th
    value, two bytes until the 32,768th; a view handed out before a widening keeps the
    values it had."""
    import numpy as np

    from features.columns import Growable, code_dtype

    assert [code_dtype(t).itemsize for t in (0, 127, 128, 32767, 32768, 2**31)] == \
        [1, 1, 2, 2, 4, 8]
    assert [code_dtype(5, b).itemsize for b in (-128, -129, -32769, -2**31 - 1)] == \
        [1, 2, 4, 8]
    col = Growable(np.int8)
    want: list[int] = []
    views = []
    for top in (5, 127, 128, 40_000):
        vals = np.array([-1, top - 1, top // 2, 0], dtype=np.int32)
        col.hold(top)
        col.extend(vals)
        want.extend(vals.tolist())
        views.append((col.view(), list(want)))
    assert [v.dtype.itemsize for v, _ in views] == [1, 1, 2, 4]
    for v, w in views:
        assert v.tolist() == w
