"""A thread that pins a run (features.run.Run.pinned) sees one snapshot of it for
everything it asks, while the run grows: its tables' rows are rows of its events. Another
thread, meanwhile, sees the run as it grows. Checked on a real run's pool written in two
halves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from features.run import Run


def test_a_pinned_thread_sees_one_snapshot_while_the_run_grows(
        sample: Callable[[str], Path], tmp_path: Path) -> None:
    src = sample("redis")
    pool = tmp_path / src.name
    pool.mkdir()
    whole = {f.name: f.read_bytes() for f in src.glob("*.jsonlog")}
    for name, data in whole.items():  # the first half of every file
        (pool / name).write_bytes(data[:data.index(b"\n", len(data) // 2) + 1])
    run = Run(pool, cache=False)
    run.load()
    n0 = run.events().n
    acts0 = run.actions()
    with run.pinned() as ev:
        assert ev.n == n0
        for name, data in whole.items():  # the rest arrives and is read
            with open(pool / name, "ab") as out:
                out.write(data[(pool / name).stat().st_size:])
        run.refresh()
        assert len(run.store) > n0  # the store grew...
        assert run.events() is ev  # ...this thread's snapshot did not
        acts = run.actions()
        assert len(acts) == len(acts0)
        assert int(np.max(acts["row_start"])) < n0 and len(run.select("")) == n0
        seen: list[int] = []
        other = threading.Thread(target=lambda: seen.append(run.events().n))
        other.start()
        other.join()
        assert seen[0] == len(run.store) > n0  # another thread sees the run as it is
        assert run.events() is ev and len(run.actions()) == len(acts0)
    assert run.events().n == len(run.store)
    fresh = Run(pool, cache=False)
    fresh.load()
    assert len(run.actions()) == len(fresh.actions()) > len(acts0)
    assert sorted(run.actions()["tag"].tolist()) == sorted(fresh.actions()["tag"].tolist())
