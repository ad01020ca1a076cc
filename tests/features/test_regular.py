"""A pool file that is not a regular file never hangs or feeds a reader.

A FIFO opened for reading blocks until something opens it for writing, so a pool file
replaced by one (or a FIFO named ``*.jsonlog``) would stop a live reader, ``events -f``,
the watcher or ``latest`` for good; a device (``/dev/zero``) never ends. Each case runs in
a thread given a deadline: a reader that blocks fails the test instead of hanging it (the
FIFO is then opened for writing, which frees it)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.jsonl import jsonl
from features.pools import resolve
from features.regular import NotRegular, open_regular, open_regular_file
from features.run import Run

DEADLINE_S = 60.0
"""Generous: a loaded machine is slow, a blocked open never returns."""


def _within(fn: Callable[[], Any], fifos: list[Path]) -> Any:
    """``fn()`` in a thread; fails when it has not returned by the deadline."""
    got: list[Any] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            got.append(fn())
        except BaseException as e:  # handed to the test
            err.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(DEADLINE_S)
    if t.is_alive():
        for f in fifos:  # a writer frees a reader blocked in open
            with contextlib.suppress(OSError):
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"blocked for {DEADLINE_S:.0f} s on a FIFO")
    if err:
        raise err[0]
    return got[0]


def _record(i: int, name: str) -> str:
    return json.dumps({"created": f"{1795839467 + i}.5", "name": "x", "levelno": "20",
                       "msg": "m", "funcName": f"f{i}", "message": f"{name} {i}"}) + "\n"


def _pool(root: Path, files: str = "ab") -> Path:
    pool = root / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    for f in files:
        (pool / f"{f}.jsonlog").write_text("".join(_record(i, f) for i in range(5)))
    return pool


def test_open_regular_refuses_all_but_regular_files(tmp_path: Path) -> None:
    reg = tmp_path / "r.jsonlog"
    reg.write_bytes(b"{}\n")
    fifo = tmp_path / "f.jsonlog"
    os.mkfifo(fifo)
    link_reg = tmp_path / "lr.jsonlog"
    link_reg.symlink_to(reg)
    link_fifo = tmp_path / "lf.jsonlog"
    link_fifo.symlink_to(fifo)
    link_dev = tmp_path / "ld.jsonlog"
    link_dev.symlink_to(os.devnull)
    for ok in (reg, link_reg):
        fd = open_regular(ok)
        try:
            assert os.read(fd, 10) == b"{}\n"
        finally:
            os.close(fd)
        with open_regular_file(ok) as f:
            assert f.read() == b"{}\n"
    for bad in (fifo, link_fifo, link_dev, tmp_path):
        with pytest.raises(NotRegular) as e:
            _within(lambda b=bad: open_regular(b), [fifo])
        assert e.value.strerror == "not a regular file" and e.value.filename == str(bad)
        assert isinstance(e.value, OSError)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing")


def test_a_pool_file_replaced_by_a_fifo_is_said_unreadable(tmp_path: Path) -> None:
    """Read, then the file replaced by a FIFO: the next poll says so and returns, the
    records read stay, JSON Lines marks them unreadable, their values read as missing."""
    pool = _pool(tmp_path)
    run = Run(pool, cache=False)
    run.load()
    assert run.events().n == 10
    b = pool / "b.jsonlog"
    b.unlink()
    os.mkfifo(b)
    res = _within(run.refresh, [b])
    assert any("b.jsonlog: cannot read (not a regular file)" in n for n in res.notes)
    ev = run.events()
    assert ev.n == 10  # what was read is kept
    rows = run.select("")
    out = [json.loads(x) for x in _within(lambda: b"".join(jsonl(ev, rows)), [b]).splitlines()]
    gone = [o for o in out if o["@file"] == "b.jsonlog"]
    assert len(gone) == 5 and all(o["@unreadable"] for o in gone)
    assert {o["message"] for o in gone} == {f"b {i}" for i in range(5)}
    b_rows = np.flatnonzero(np.array([ev.file_names[f] for f in ev.file]) == "b.jsonlog")
    assert _within(lambda: ev.raw(int(b_rows[0])), [b]) is None
    assert ev.is_lazy("funcName")  # a key read from the files
    lazy = _within(lambda: ev.values_at("funcName", b_rows), [b])
    assert all(v is None for v in lazy)
    # a file that comes back as a file is read again
    b.unlink()
    b.write_text("".join(_record(i, "b") for i in range(7)))
    _within(run.refresh, [])
    assert run.events().n >= 12


def test_a_fifo_among_a_pools_files_blocks_nothing(tmp_path: Path) -> None:
    """A FIFO named like a pool file from the start: skipped by the load, and by
    ``latest`` when it looks at when tied runs started."""
    home = tmp_path / "home"
    one = _pool(home)
    two = _pool(home)
    for p in (one, two):
        os.mkfifo(p / "z.jsonlog")
    now = time.time()
    for p in (one, two):  # written at the same moment: tied for latest
        for f in p.glob("[ab].jsonlog"):
            os.utime(f, (now, now))
    fifos = [one / "z.jsonlog", two / "z.jsonlog"]
    run = Run(one, cache=False)
    _within(run.load, fifos)
    assert run.events().n == 10
    said = "z.jsonlog: not a regular file (a FIFO, a device, a socket or a directory): not read"
    assert run.notes.count(said) == 1
    (one / "c.jsonlog").write_text(_record(9, "c"))  # the directory changes: scanned again
    _within(run.refresh, fifos)
    assert run.events().n == 11 and run.notes.count(said) == 1  # said once
    assert _within(lambda: resolve("latest", home), fifos) in (one, two)


def test_a_pool_of_fifos_is_not_said_to_be_waiting_for_files(tmp_path: Path) -> None:
    """Its only file a FIFO: the command says what is there, not "no files yet"."""
    pool = tmp_path / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    os.mkfifo(pool / "a.jsonlog")
    res = subprocess.run([sys.executable, "-m", "tui.cli", "report", str(pool),
                          "--no-anomalies"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ACADEMY_TUI_NO_CACHE": "1"})
    assert "holds no .jsonlog file that can be read (1 not a regular file)" in res.stderr
    assert "yet" not in res.stderr
    assert "a.jsonlog: not a regular file" in res.stdout


def test_a_file_swapped_for_a_fifo_before_the_load_reads_it_is_skipped(
        tmp_path: Path) -> None:
    """Found as a file, a FIFO by the time the load looks at the files' first records
    and plans their chunks (more files than the load's head files: every file's first
    line is read): the others are read, the FIFO said unreadable."""
    from features.loader import HEAD_FILES, load
    from features.reader import PoolReader

    names = "abcdefghijkl"
    assert len(names) > HEAD_FILES
    pool = _pool(tmp_path, names)
    reader = PoolReader(str(pool))
    reader.scan()
    c = pool / "c.jsonlog"
    c.unlink()
    os.mkfifo(c)
    res = _within(lambda: load(reader, workers=1), [c])
    assert res.records == 5 * (len(names) - 1)
    assert res.notes == ["c.jsonlog: cannot read (not a regular file)"]
