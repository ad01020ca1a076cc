"""The parallel first load keeps its workers a few chunks ahead of the caller: its progress
(bytes stored, in file order) is then also what has been read, and parsed batches never
pile up in memory while the caller (an app's ingest thread) falls behind."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from features.events import Events
from features.loader import _results, load, plan
from features.reader import PoolReader
from tests.features.test_reader import line


class Counting(ThreadPoolExecutor):
    """Counts the chunks handed to the workers and the ones they finished."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted = 0
        self.finished = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        f = super().submit(fn, *args, **kwargs)
        f.add_done_callback(lambda _: self._done())
        return f

    def _done(self) -> None:
        self.finished += 1


def pool(tmp_path: Path, files: int = 3, lines: int = 3000) -> Path:
    for k in range(files):
        with (tmp_path / f"{k:08d}-0000-0000-0000-000000000000.jsonlog").open("wb") as f:
            f.write(b"".join(line(i * files + k) for i in range(lines)))
    return tmp_path


def test_workers_stay_a_window_ahead_of_a_slow_caller(tmp_path: Path) -> None:
    reader = PoolReader(str(pool(tmp_path)))
    reader.scan()
    chunks, _ = plan(list(reader.tails.values()), 32 * 1024)
    assert len(chunks) > 20
    ahead = 3
    with Counting(2) as ex:
        taken = 0
        for _batch, _consumed in _results([[c] for c in chunks], ex, local_first=False,
                                          ahead=ahead):
            taken += 1
            time.sleep(0.01)  # a caller that stores slower than the workers parse
            # Handed out, never more than the window past what the caller has taken.
            assert ex.submitted - taken <= ahead
            assert ex.finished - taken <= ahead
        assert taken == ex.submitted == len(chunks)


def test_a_windowed_parallel_load_equals_a_serial_one(tmp_path: Path) -> None:
    pool(tmp_path)
    serial = PoolReader(str(tmp_path))
    load(serial, workers=1)
    seen: list[tuple[int, int]] = []
    par = PoolReader(str(tmp_path))
    load(par, workers=2, chunk=16 * 1024, parallel_min=0,
         progress=lambda done, total: seen.append((done, total)))
    a, b = Events(serial.store), Events(par.store)
    assert len(a) == len(b) == 9000
    assert sorted(a.message) == sorted(b.message)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == seen[-1][1]
