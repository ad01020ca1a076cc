"""The store's time order, merged poll by poll as records arrive out of order, is the
order of a stable sort of every record's time (few records merged slice by slice, many
at once), whether the merge writes into its buffers (nobody holds a view of them) or
builds new ones (a snapshot does, and must keep seeing the order it was taken with)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import orjson
import pytest

from features.columns import merge_into
from features.run import Run
from features.time_order import TimeOrder

SIZES = (50, 7, 300, 6000, 1, 40, 5000, 12)


def _write(tmp_path: Path, rng: np.random.Generator, size: int) -> None:
    for f in range(3):
        times = 1_700_000_000 + rng.integers(0, 400, size) / 4  # many ties, any order
        lines = [orjson.dumps({"created": str(t), "msg": "m", "levelname": "INFO",
                               "name": "x"}) + b"\n" for t in times.tolist()]
        with open(tmp_path / f"p{f}.jsonlog", "ab") as fh:
            fh.writelines(lines)


@pytest.mark.parametrize("hold", [True, False], ids=["snapshots-held", "none-held"])
def test_time_order_merged_as_records_arrive(tmp_path: Path, hold: bool) -> None:
    rng = np.random.default_rng(5)
    run = Run(tmp_path, cache=False)
    pinned: list[tuple[object, np.ndarray, np.ndarray]] = []
    ev = None
    for step, size in enumerate(SIZES):
        _write(tmp_path, rng, size)
        if not hold:
            ev = None  # no view of the order alive: the merge may write in place
        if step == 0:
            run.load()
        else:
            run.refresh()
        ev = run.events()
        want = np.argsort(ev.created[: ev.n], kind="stable")
        assert np.array_equal(ev.order[: ev.n], want), step
        assert np.array_equal(ev.sorted_t[: ev.n], ev.created[want]), step
        if hold:
            pinned.append((ev, ev.order.copy(), ev.sorted_t.copy()))
    if hold:
        assert run.store.time_order.copies >= len(SIZES) - 1  # each merge saw a view
        for snap, rows, times in pinned:  # and none of them saw a later merge
            assert np.array_equal(snap.order, rows)  # type: ignore[attr-defined]
            assert np.array_equal(snap.sorted_t, times)  # type: ignore[attr-defined]


def test_merges_in_place_and_copies_only_for_views() -> None:
    """Batches as a live run brings them (each overlapping the end of the last, ties
    included) merge in place; a batch landing far back, a view alive or full buffers
    make new buffers. Either way the order is a stable sort of every time."""
    rng = np.random.default_rng(11)
    order, rows_all, times_all = TimeOrder(), [], []
    held: list[tuple[np.ndarray, np.ndarray]] = []
    for step in range(60):
        k = int(rng.integers(1, 200))
        lo = 0 if step % 13 == 12 else 20 * step  # now and then, records from the start
        ts = np.sort(lo + rng.integers(0, 60, k) / 2.0, kind="stable")
        rows = np.arange(sum(map(len, rows_all)), sum(map(len, rows_all)) + k)
        rows_all.append(rows)
        times_all.append(ts)
        before = order.copies
        viewed = step % 7 == 3
        if viewed:
            v = order.rows()
            held.append((v, v.copy()))
        order.merge(rows, ts)
        # A view alive (or far back, or the first buffers, or full ones) -> new
        # buffers; near the end with room and nobody looking -> in place.
        if (viewed or lo == 0) and step:
            assert order.copies == before + 1
        elif len(order) < 4096:
            assert order.copies == before + (step == 0)
        all_t = np.concatenate(times_all)
        want = np.concatenate(rows_all)[np.argsort(all_t, kind="stable")]
        assert np.array_equal(order.rows(), want), step
        assert np.array_equal(order.times(), np.sort(all_t, kind="stable")), step
    assert order.copies < 20
    for v, copy in held:
        assert np.array_equal(v, copy)
    with pytest.raises(ValueError):
        order.rows()[0] = 1  # views are read-only


def test_saved_order_keeps_room_and_merges_after_reopening() -> None:
    order = TimeOrder()
    order.merge(np.arange(1000), np.arange(1000.0))
    back = pickle.loads(pickle.dumps(order))
    assert np.array_equal(back.rows(), order.rows())
    back.merge(np.array([1000, 1001]), np.array([998.5, 2000.0]))
    assert back.copies == 0  # the saved room took them
    assert back.rows()[-4:].tolist() == [998, 1000, 999, 1001]
    assert len(back) == 1002


def test_merge_into_is_numpys_insert_for_every_kind_of_positions() -> None:
    """``merge_into`` writes ``old`` with ``new[j]`` before ``old[pos[j]]``: the same as
    ``np.insert`` for positions all before, all after (into nothing: a whole load's
    order at once), few and many (its slices and its mask), ties among them."""
    rng = np.random.default_rng(7)
    for n_old, n_new, kind in [(0, 10, "after"), (0, 6000, "after"), (50, 10, "after"),
                               (50, 10, "before"), (50, 0, "any"), (50, 10, "any"),
                               (7000, 5000, "any"), (1, 1, "any"), (300, 300, "ties")]:
        old = rng.integers(0, 1000, n_old)
        new = rng.integers(0, 1000, n_new)
        pos = {"after": np.full(n_new, n_old), "before": np.zeros(n_new, dtype=np.int64),
               "any": np.sort(rng.integers(0, n_old + 1, n_new)),
               "ties": np.sort(rng.integers(0, 3, n_new))}[kind]
        for at in (0, 5):
            dst = np.full(at + n_old + n_new + 3, -1)
            merge_into(dst, at, old, pos, new)
            want = np.insert(old, pos, new)
            assert dst[at:at + len(want)].tolist() == want.tolist(), (n_old, n_new, kind)
            assert (dst[:at] == -1).all() and (dst[at + len(want):] == -1).all()
