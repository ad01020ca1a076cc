"""A line too long to hold is one bad line, passed over to its end without holding it.

A file of a crashed node's NUL blocks, or a forged sparse file of terabytes that costs no
disk, is one endless "line". The tail reader holds up to MAX_LINE of it, records it as one
bad line and passes over the rest to its newline (jumping the file's holes), so memory
stays bounded and the records after it are read at their true lines and offsets. Here
MAX_LINE and the read block are made small so that a few MB show it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import features.reader as reader_mod
from features.events import Events
from features.reader import PoolReader
from features.run import Run
from tests.features.test_reader import rec


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "MAX_LINE", 1 << 20)
    monkeypatch.setattr(reader_mod, "READ_BLOCK", 1 << 16)


def _lines(first: int, n: int) -> bytes:
    return b"".join(json.dumps(rec(first + i, process=7)).encode() + b"\n" for i in range(n))


def _check_rows(store: object, path: Path) -> None:
    """Every record's offset, length and line match the file's own lines."""
    data = path.read_bytes()
    starts = [0, *(np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1).tolist()]
    ev = Events(store)  # type: ignore[arg-type]
    for r in range(ev.n):
        off, ln = int(ev.offset[r]), int(ev.line[r])
        assert starts[ln - 1] == off
        assert data[off:off + int(ev.length[r])] == ev.raw(r)
        assert json.loads(ev.raw(r) or b"")["created"]


def test_a_hole_is_one_bad_line_passed_over(tmp_path: Path, small_limits: None) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    f = pool / "a.jsonlog"
    head = _lines(0, 5)
    with open(f, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + 50 * (1 << 20))  # 50 MB of hole: NUL bytes, no newline
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n" + _lines(5, 5))
    reader = PoolReader(str(pool))
    reader.poll(full=True)
    store = reader.store
    assert len(store) == 10
    assert [(b.line, b.offset) for b in store.bad] == [(6, len(head))]
    assert "line too long" in store.bad[0].reason
    assert [int(x) for x in np.asarray(Events(store).line)] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
    _check_rows(store, f)
    assert reader.pending_bytes() == 0
    with open(f, "ab") as fh:  # more records: read as usual
        fh.write(_lines(10, 3))
    reader.poll(full=True)
    assert len(store) == 13 and len(store.bad) == 1
    _check_rows(store, f)


def test_a_file_that_ends_inside_the_long_line_goes_on_once_it_ends(
        tmp_path: Path, small_limits: None) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    f = pool / "a.jsonlog"
    head = _lines(0, 3)
    f.write_bytes(head + b"x" * (3 << 20))  # 3 MB without a newline, not a hole
    reader = PoolReader(str(pool))
    reader.poll(full=True)
    store = reader.store
    assert len(store) == 3 and len(store.bad) == 1
    assert reader.pending_bytes() == 0  # passed over, not held
    with open(f, "ab") as fh:
        fh.write(b"x" * (2 << 20))  # still the same line
    reader.poll(full=True)
    assert len(store) == 3 and len(store.bad) == 1 and reader.pending_bytes() == 0
    with open(f, "ab") as fh:
        fh.write(b"\n" + _lines(3, 4))
    reader.poll(full=True)
    assert len(store) == 7 and len(store.bad) == 1
    assert [int(x) for x in np.asarray(Events(store).line)] == [1, 2, 3, 5, 6, 7, 8]
    _check_rows(store, f)


def test_a_run_with_a_sparse_file_loads_what_it_can(tmp_path: Path, small_limits: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the first load (planned up to the long line, its tail reader from there)."""
    import features.loader as loader

    monkeypatch.setattr(loader, "BOUNDARY_MAX", 1 << 16)
    pool = tmp_path / "logs" / "11111111-2222-4333-8444-555555555555"
    pool.mkdir(parents=True)
    (pool / "a.jsonlog").write_bytes(_lines(100, 20))
    z = pool / "z.jsonlog"
    head = _lines(0, 20)
    with open(z, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + (1 << 30))  # 1 GB of hole
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n" + _lines(20, 20))
    run = Run(pool, cache=False)
    run.load()
    assert run.events().n == 60
    assert len(run.store.bad) == 1 and run.store.bad[0].line == 21


def test_a_tail_saved_before_it_could_skip_reads_on(tmp_path: Path) -> None:
    """A saved reading pickles its tails: one saved by the version before has no
    ``skipping`` and must read on as a tail that is not skipping."""
    pool = tmp_path / "pool"
    pool.mkdir()
    f = pool / "a.jsonlog"
    f.write_bytes(_lines(0, 3))
    reader = PoolReader(str(pool))
    reader.poll(full=True)
    for tail in reader.tails.values():
        del tail.__dict__["skipping"]  # as unpickled from an older saved reading
    with open(f, "ab") as fh:
        fh.write(_lines(3, 2))
    reader.poll(full=True)
    assert len(reader.store) == 5
