"""The store's time order, merged poll by poll as records arrive out of order, is the
order of a stable sort of every record's time (few records merged slice by slice, many
at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from features.run import Run


def test_time_order_merged_as_records_arrive(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    run = Run(tmp_path, cache=False)
    for step, size in enumerate((50, 7, 300, 6000, 1, 40, 5000, 12)):
        for f in range(3):
            times = 1_700_000_000 + rng.integers(0, 400, size) / 4  # many ties, any order
            lines = [orjson.dumps({"created": str(t), "msg": "m", "levelname": "INFO",
                                   "name": "x"}) + b"\n" for t in times.tolist()]
            with open(tmp_path / f"p{f}.jsonlog", "ab") as fh:
                fh.writelines(lines)
        if step == 0:
            run.load()
        else:
            run.refresh()
        ev = run.events()
        want = np.argsort(ev.created[: ev.n], kind="stable")
        assert np.array_equal(ev.order[: ev.n], want), step
        assert np.array_equal(ev.sorted_t[: ev.n], ev.created[want]), step
