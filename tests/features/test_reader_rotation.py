"""A poll of a pool of many files looks at the quiet ones in turns: a record appended to a
file quiet for a while arrives within ROTATE polls, one appended to a file written lately on
the next poll, and a full poll (or the end of a run) reads everything at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from features.reader import QUIET_S, ROTATE, ROTATE_OVER
from features.run import Run


def _record(i: int, t: float) -> bytes:
    return orjson.dumps({"created": str(t), "msg": "step %s", "args": f"({i},)",
                         "levelname": "INFO", "levelno": "20", "name": "w"}) + b"\n"


def test_quiet_files_are_read_in_turns(tmp_path: Path) -> None:
    n = ROTATE_OVER + 44
    t0 = time.time() - 3600
    for i in range(n):
        (tmp_path / f"p{i:04d}.jsonlog").write_bytes(_record(i, t0 + i))
    old = time.time() - 10 * QUIET_S
    for f in tmp_path.iterdir():
        os.utime(f, (old, old))
    run = Run(tmp_path, cache=False)
    run.load()
    assert len(run.store) == n
    # A quiet file written again: read within ROTATE polls.
    quiet = tmp_path / "p0100.jsonlog"
    with open(quiet, "ab") as fh:
        fh.write(_record(-1, t0 + n))
    polls = 0
    while len(run.store) == n:
        assert polls < ROTATE, "a quiet file was not read within ROTATE polls"
        run.refresh()
        polls += 1
    # Now written lately: read on the very next poll.
    with open(quiet, "ab") as fh:
        fh.write(_record(-2, t0 + n + 1))
    run.refresh()
    assert len(run.store) == n + 2
    # A full poll reads a quiet file at once.
    other = tmp_path / "p0200.jsonlog"
    with open(other, "ab") as fh:
        fh.write(_record(-3, t0 + n + 2))
    os.utime(other, (old, old))
    run.reader.poll(full=True)
    assert len(run.store) == n + 3


def test_small_pools_read_every_file_every_poll(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"p{i:02d}.jsonlog").write_bytes(_record(i, 1_700_000_000.0 + i))
    old = time.time() - 10 * QUIET_S
    for f in tmp_path.iterdir():
        os.utime(f, (old, old))
    run = Run(tmp_path, cache=False)
    run.load()
    p = tmp_path / "p05.jsonlog"
    with open(p, "ab") as fh:
        fh.write(_record(99, 1_700_000_100.0))
    os.utime(p, (old, old))
    run.refresh()
    assert len(run.store) == 21
