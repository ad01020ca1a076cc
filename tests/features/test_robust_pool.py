"""Nothing in one record makes a pool unreadable or moves the run's bounds: times far
from their file's neighbours, integers no column holds, a last line without its newline."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from features.fmt import fmt_s
from features.record_keys import FLAG_REPAIRED
from features.run import Run
from tui.cli import main

HTTP = "ebe7713b-28de-443e-86fd-1a7e6f450409"
BIG = "99999999999999999999"
"""Beyond 64 bits: ``int(BIG)`` overflows int64."""
OLD = time.time() - 3600
"""A modification time outside the live window: the run is over."""


def rec(t: float | str, msg: str, **extra: object) -> dict[str, object]:
    """A record as Academy's JSON pool writes it: every value a string."""
    d: dict[str, object] = {
        "formatted": msg, "name": "test.odd", "msg": msg, "args": "()",
        "levelname": "INFO", "levelno": "20", "pathname": "/x.py", "filename": "x.py",
        "module": "x", "exc_info": "None", "exc_text": "None", "stack_info": "None",
        "lineno": "7", "funcName": "f", "created": str(t), "msecs": "0.0",
        "relativeCreated": "0.0", "thread": "140474191555456", "threadName": "MainThread",
        "processName": "MainProcess", "process": "4242",
    }
    d.update(extra)
    d["message"] = msg
    return d


def line(t: float | str, msg: str, **extra: object) -> bytes:
    return json.dumps(rec(t, msg, **extra)).encode()


def age(pool: Path, mtime: float = OLD) -> None:
    for f in pool.iterdir():
        os.utime(f, (mtime, mtime))


def copy_pool(sample: Callable[[str], Path], tmp_path: Path) -> tuple[Path, list[Path]]:
    """The http sample (two processes, a finished run) under a fresh home."""
    pool = tmp_path / "home" / "logs" / HTTP
    shutil.copytree(sample("http"), pool)
    return pool, sorted(pool.glob("*.jsonlog"))


def insert(path: Path, at: int, *new: bytes) -> None:
    lines = path.read_bytes().splitlines()
    lines[at:at] = new
    path.write_bytes(b"\n".join(lines) + b"\n")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "internal error" not in err and "Traceback" not in err, err
    return out, err


def bounds(pool: Path) -> tuple[float, float]:
    run = Run(pool)
    run.load()
    ev = run.events()
    return ev.t0, ev.t1


# -- 1. times far off ----------------------------------------------------------------------


def test_far_off_times_leave_the_run_bounds_alone(
        sample: Callable[[str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clean_t0, clean_t1 = bounds(sample("http"))
    pool, (a, b) = copy_pool(sample, tmp_path)
    t = clean_t0 + 1.0
    insert(a, 0, line("1.0", "odd epoch"))  # the file's very first line
    insert(a, 60, line("1e999", "odd infinite"))
    # A duplicate key: JSON readers keep the last, here the implausible one.
    dup = json.dumps(rec(t, "odd duplicate"))[:-1] + ', "created": "5.0"}'
    insert(b, 70, dup.encode())
    age(pool)

    run = Run(pool)
    run.load()
    ev = run.events()
    # Before: t0 was 1.0 (1970) and t1 inf (1e999), so the duration was inf or NaN.
    assert (ev.t0, ev.t1) == (clean_t0, clean_t1)
    assert run.store.stats.time_outliers == 3
    note = [n for n in run.notes if "left out of the run's start and end" in n]
    assert len(note) == 1 and note[0].startswith("3 records with a time far")
    assert f"{a.name}:1" in note[0]
    # The records stay: shown, with their own (far-off) times.
    by_msg = {ev.message[r]: r for r in ev.order}
    assert {"odd epoch", "odd infinite", "odd duplicate"} <= set(by_msg)
    assert ev.created[by_msg["odd epoch"]] == 1.0
    assert ev.column("@t")[by_msg["odd epoch"]] < -1e9
    assert np.isnan(ev.created[by_msg["odd infinite"]])  # no usable time: a missing one

    home = str(tmp_path / "home")
    out, _ = cli(capsys, "--home", home, "runs", "--format", "json")
    (row,) = json.loads(out)
    assert row["start"] == pytest.approx(clean_t0)
    assert row["duration_s"] == pytest.approx(clean_t1 - clean_t0)
    out, _ = cli(capsys, "--home", home, "runs")
    assert f"  {fmt_s(clean_t1 - clean_t0)}  " in out  # not "29941950 min"
    out, err = cli(capsys, "--home", home, "report", HTTP[:8])
    assert f"The run took {fmt_s(clean_t1 - clean_t0)}" in out
    assert "academy-tui: 3 records with a time far from the records around them in their " \
        "file, or with no usable time, are left out of the run's start and end: " in err


def test_judging_keeps_runs_in_order_however_sparse(tmp_path: Path) -> None:
    """A file logging every 3 hours after a first record two days earlier is in order
    and keeps its bounds; a spike (a year-2000 clock) in another file, and a time written
    in milliseconds at its end, are left out. Found again as a live run grows."""
    t = 1.79e9
    sparse = [t - 2 * 86400] + [t + k * 3 * 3600 for k in range(9)]
    steady = [t + 0.5 * k for k in range(40)]
    steady[17] = 946684800.0  # 2000-01-01
    (tmp_path / "a.jsonlog").write_bytes(
        b"".join(line(x, f"sparse {i}") + b"\n" for i, x in enumerate(sparse)))
    (tmp_path / "b.jsonlog").write_bytes(
        b"".join(line(x, f"steady {i}") + b"\n" for i, x in enumerate(steady)))
    run = Run(tmp_path)
    run.load()
    ev = run.events()
    assert (ev.t0, ev.t1) == (sparse[0], sparse[-1])
    assert run.store.stats.time_outliers == 1
    # Live: a time in milliseconds arrives as the last line, then more records.
    with (tmp_path / "b.jsonlog").open("ab") as f:
        f.write(line(steady[-1] * 1000, "milliseconds") + b"\n")
    res = run.refresh()
    ev = run.events()
    assert (ev.t0, ev.t1) == (sparse[0], sparse[-1])
    assert [n for n in res.notes if n.startswith("2 records with a time far")]
    with (tmp_path / "b.jsonlog").open("ab") as f:
        f.write(b"".join(line(t + 30 + k, f"late {k}") + b"\n" for k in range(3)))
    run.refresh()
    assert run.events().t1 == sparse[-1] and run.store.stats.time_outliers == 2
    assert sum("left out of the run's start" in n for n in run.notes) == 1  # replaced


# -- 2. integers no column holds ---------------------------------------------------------


def test_integers_beyond_64_bits_stay_text_and_every_command_reads_the_pool(
        sample: Callable[[str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clean_t0, _ = bounds(sample("http"))
    pool, (a, b) = copy_pool(sample, tmp_path)
    records = sum(len(p.read_bytes().splitlines()) for p in (a, b))
    insert(a, 40, line(clean_t0 + 0.5, "big ints", process=BIG, levelno=BIG, thread=BIG,
                       lineno=BIG, **{"fib.big": BIG}))
    # Typed dialect: JSON numbers past int64 (orjson reads 2**64-1 as a Python int).
    typed = json.dumps(rec(clean_t0 + 0.6, "typed big"))[:-1] + \
        f', "thread": {2**64 - 1}, "process": {2**64 - 1}, "fib.big": {2**64 - 1}}}'
    insert(b, 40, typed.encode())
    age(pool)

    run = Run(pool)
    run.load()
    ev = run.events()
    assert ev.n == records + 2
    row = {ev.message[r]: r for r in range(ev.n)}["big ints"]
    assert ev.ints["process"][row] == -1 and ev.ints["levelno"][row] == -1
    assert ev.column("thread")[row] == BIG and ev.column("lineno")[row] == BIG
    assert ev.column("fib.big")[row] == BIG  # a workflow key, kept at ingest
    assert ev.numeric("thread") is not None  # the other records' threads are numbers
    assert int((ev.ints["process"] > 0).sum()) == ev.n - 2

    home = str(tmp_path / "home")
    out, _ = cli(capsys, "--home", home, "runs", "--format", "json")
    assert json.loads(out)[0]["records"] == records + 2
    cli(capsys, "--home", home, "report", HTTP[:8])
    out, _ = cli(capsys, "--home", home, "events", HTTP[:8])
    assert len(out.splitlines()) == records + 3 and "big ints" in out  # header + rows
    out, _ = cli(capsys, "--home", home, "events", HTTP[:8], "--format", "jsonl")
    big = [json.loads(ln) for ln in out.splitlines() if "big ints" in ln]
    assert len(out.splitlines()) == records + 2 and big
    assert big[0]["process"] == "99999999999999999999"  # kept as written: text
    db = tmp_path / "out.db"
    cli(capsys, "--home", home, "export", HTTP[:8], "--format", "sqlite", "-o", str(db))
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from events").fetchone()[0] == records + 2
    got = con.execute("select process, levelno, thread, lineno, typeof(thread) from events "
                      "where message = 'big ints'").fetchone()
    assert got == (BIG, BIG, BIG, BIG, "text")
    got = con.execute("select thread, process, \"fib.big\" from events "
                      "where message = 'typed big'").fetchone()
    assert got == (str(2**64 - 1),) * 3
    assert con.execute("select count(*) from events where typeof(process) = 'integer'"
                       ).fetchone()[0] == records


# -- 3. the last line without its newline ---------------------------------------------------


def test_finished_files_unterminated_last_line_is_a_bad_line_and_its_record_recovered(
        sample: Callable[[str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clean_t0, _ = bounds(sample("http"))
    pool, (a, b) = copy_pool(sample, tmp_path)
    n_a = len(a.read_bytes().splitlines())
    n_b = len(b.read_bytes().splitlines())
    with a.open("ab") as f:
        f.write(line(clean_t0 + 1, "last words"))  # whole, but no newline: a crash
    with b.open("ab") as f:
        f.write(line(clean_t0 + 1, "cut short")[:150])  # torn mid-record
    age(pool)

    run = Run(pool)
    run.load()
    st = run.store.stats
    assert (st.bad_lines, st.recovered) == (2, 1)
    names = [f.name for f in run.store.files]
    bad = {(names[x.file], x.line): x for x in run.store.bad}
    assert set(bad) == {(a.name, n_a + 1), (b.name, n_b + 1)}
    assert "unterminated last line" in bad[a.name, n_a + 1].reason
    assert bad[a.name, n_a + 1].recovered == 1 and bad[b.name, n_b + 1].recovered == 0
    ev = run.events()
    (row,) = [r for r in range(ev.n) if ev.message[r] == "last words"]
    assert ev.flags[row] & FLAG_REPAIRED and ev.line[row] == n_a + 1
    assert ev.record(row)["message"] == "last words"
    assert run.refresh().records == 0 and run.store.stats.bad_lines == 2  # taken once

    _, err = cli(capsys, "--home", str(tmp_path / "home"), "report", HTTP[:8])
    assert "academy-tui: 2 bad lines skipped (1 record recovered from them)" in err


def test_live_partial_line_is_held_until_complete_then_taken_once_when_quiet(
        tmp_path: Path) -> None:
    t = 1.79e9
    f = tmp_path / "a.jsonlog"
    f.write_bytes(b"".join(line(t + k, f"m {k}") + b"\n" for k in range(10)))
    nxt = line(t + 10, "m 10") + b"\n"
    with f.open("ab") as fh:
        fh.write(nxt[:120])  # a live writer, mid-record
    run = Run(tmp_path)
    run.load()
    assert run.live and len(run.store) == 10 and run.store.stats.bad_lines == 0
    with f.open("ab") as fh:
        fh.write(nxt[120:])
    assert run.refresh().records == 1
    assert len(run.store) == 11 and run.store.stats.bad_lines == 0
    ev = run.events()
    assert [ev.message[r] for r in ev.order][-1] == "m 10"
    assert not (ev.flags & FLAG_REPAIRED).any()
    # The writer dies mid-record; once nothing was written for the live window, the
    # run is over and the remainder is taken, exactly once.
    with f.open("ab") as fh:
        fh.write(line(t + 11, "m 11")[:90])
    run.refresh()
    assert run.store.stats.bad_lines == 0 and run.reader.pending_bytes() == 90
    age(tmp_path)
    run.refresh()
    run.refresh()
    assert len(run.store) == 11 and run.store.stats.bad_lines == 1
    assert run.store.bad[0].line == 12 and run.reader.pending_bytes() == 0
