"""Many small files are parsed and stored in groups (features.loader.groups_of and
features.batch.merge): the store a grouped first load builds holds exactly what reading
the files one by one holds, record by record and file by file, hostile lines included
(bad and blank lines, a record recovered from bad bytes, a time that is no time, a user
key kept in one file and too long in another, tags differing in case)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.events import Events
from features.loader import groups_of, load, plan
from features.reader import PoolReader
from features.record_keys import COMBO_KEYS, TAG_KEYS
from tests.features.test_reader import rec

ROOT = Path(__file__).resolve().parents[2]


def _pool(root: Path, files: int = 40) -> Path:
    for k in range(files):
        out = []
        for i in range(400 if k < 3 else 30):  # three files past a head and a chunk
            n = k * 1000 + i
            extra: dict[str, Any] = {"academy.action_tag": f"{n:08X}-aaaa-4bbb-8ccc-{n:012x}"
                                     if i % 3 == 0 else f"{n:08x}-aaaa-4bbb-8ccc-{n:012x}",
                                     "academy.agent_id": f"AgentId<{k:08x}>",
                                     "fib.iteration": str(i),
                                     "fib.note": "x" * (200 if k == 7 else 5)}
            r = rec(n, process=1000 + k, **extra)
            if i == 4:
                r["created"] = "1e999"  # no usable time
            if i == 9:
                r["levelname"], r["levelno"] = "WARNING", "30"
            if i % 5 == 2:  # sent packed by a worker: texts of any width come back
                r["message"] = f"café ✓ 日本語 🚀 {n}" if k % 2 else f"{n}\n\0 ünd"
            out.append(json.dumps(r).encode())
        out.insert(5, b"not json at all")
        out.insert(11, b"   ")
        bad = json.dumps(rec(k * 1000 + 99, note="bad bytes: XX")).encode()
        out.insert(20, bad.replace(b"XX", b"\xff"))
        (root / f"{k:08x}-0000-4000-8000-000000000000.jsonlog").write_bytes(
            b"\n".join(out) + b"\n")
    return root


def _by_location(ev: Events) -> dict[tuple[str, int], tuple[Any, ...]]:
    """Every record's content by (file, line), codes decoded."""
    cols = [ev.strings(k) for k in COMBO_KEYS if k not in ("levelno", "process")] + \
        [ev.strings(k) for k in TAG_KEYS] + [ev.column("fib.iteration"),
                                              ev.column("fib.note")]
    keys = ev.store.shape_keys
    out = {}
    for r in range(ev.n):
        where = (ev.file_names[ev.file[r]], int(ev.line[r]))
        out[where] = (repr(float(ev.created[r])), int(ev.offset[r]), int(ev.length[r]),
                      int(ev.flags[r]), int(ev.ints["levelno"][r]),
                      int(ev.ints["process"][r]), ev.message[r], keys[int(ev.shape[r])],
                      *(repr(c[r]) for c in cols), ev.store.repaired.get(r))
    return out


def _files(reader: PoolReader) -> dict[str, tuple[int, int, int]]:
    return {f.name: (f.records, f.bad, f.blank) for f in reader.store.files}


def test_a_grouped_first_load_holds_what_reading_file_by_file_holds(tmp_path: Path) -> None:
    pool = _pool(tmp_path)
    one_by_one = PoolReader(str(pool))
    one_by_one.poll()  # the live reader: a batch per file
    planner = PoolReader(str(pool))
    planner.scan()
    chunks, _ = plan(list(planner.tails.values()), 128 * 1024)
    assert len(groups_of(chunks, 128 * 1024)) < len(chunks) / 3  # several files a group
    grouped = PoolReader(str(pool))
    load(grouped, workers=2, chunk=128 * 1024, parallel_min=0)
    a, b = Events(one_by_one.store), Events(grouped.store)
    assert a.n == b.n == 37 * 31 + 3 * 401  # the records and the one recovered, per file
    assert _by_location(a) == _by_location(b)
    assert _files(one_by_one) == _files(grouped)
    assert sorted(set(_files(grouped).values())) == [(31, 2, 1), (401, 2, 1)]  # bad: 2 lines
    bad = lambda r: sorted((r.store.files[x.file].name, x.line, x.reason)  # noqa: E731
                           for x in r.store.bad)
    assert bad(one_by_one) == bad(grouped)
    rows_of = lambda ev, rows: sorted((ev.file_names[ev.file[r]], int(ev.line[r]))  # noqa: E731
                                      for r in rows)
    assert rows_of(a, a.store.no_time) == rows_of(b, b.store.no_time) and len(a.store.no_time)
    # In time order, merged across the files, the same records.
    assert [(a.file_names[a.file[r]], int(a.line[r])) for r in a.order] == \
        [(b.file_names[b.file[r]], int(b.line[r])) for r in b.order]
    # A key too long in one file is read from the files everywhere.
    assert "fib.note" in grouped.store._user_partial
    assert grouped.poll().records == 0  # the tails continue exactly where the load ended
    assert np.array_equal(np.sort(a.numeric("fib.iteration")),
                          np.sort(b.numeric("fib.iteration")), equal_nan=True)


def test_a_line_too_long_to_plan_around_is_left_to_the_tail_reader(
        tmp_path: Path, monkeypatch: Any) -> None:
    """A file with a line longer than the planner looks through (a forged file of NUL
    bytes held whole in one chunk: 2 GB took 4.2 GB) is planned up to it; its tail reader
    reads on from there: the long line is one bad line and every record after it is read
    at its true line and offset."""
    import features.loader as loader

    monkeypatch.setattr(loader, "BOUNDARY_MAX", 16 * 1024)
    pool = tmp_path / "pool"
    pool.mkdir()
    good = [json.dumps(rec(i, process=7)).encode() for i in range(200)]
    lines = [*good[:100], b"\0" * 300_000, *good[100:]]
    (pool / "a.jsonlog").write_bytes(b"\n".join(lines) + b"\n")
    (pool / "b.jsonlog").write_bytes(b"\n".join(good[:3]) + b"\n")
    reader = PoolReader(str(pool))
    reader.scan()
    chunks, _ = plan(list(reader.tails.values()), 4096)
    assert max(c.end - c.start for c in chunks) <= 4096 + loader.BOUNDARY_MAX
    a_end = max(c.end for c in chunks if c.file == 0)
    assert a_end < sum(len(x) + 1 for x in good[:100]) + 300_000  # stops at the long line
    reader = PoolReader(str(pool))
    res = load(reader, workers=1, chunk=4096)
    store = reader.store
    assert res.records == 203 and len(store) == 203
    assert [(b.line, b.length) for b in store.bad] == [(101, 300_000)]
    ev = Events(store)
    rows = np.flatnonzero(ev.file == 0)
    want = {n + (1 if n < 100 else 2): x for n, x in enumerate(good)}  # line -> bytes
    for r in rows.tolist():
        assert ev.raw(r) == want[int(ev.line[r])]


def test_a_load_stopped_by_its_progress_keeps_what_it_stored_and_reads_on(
        tmp_path: Path, monkeypatch: Any) -> None:
    """An app closing stops its first load from the progress callback (``LoadStopped``):
    the load stops there with its parse workers, what it stored stays with each file's
    tail just past it, and a later read continues to exactly what reading the files one
    by one holds."""
    import pytest

    import features.loader as loader
    from features.loader import LoadStopped

    made: list[Any] = []
    real = loader._executor

    def kept(*args: Any) -> Any:
        ex = real(*args)
        made.append(ex)
        return ex

    monkeypatch.setattr(loader, "_executor", kept)
    pool = _pool(tmp_path)
    one_by_one = PoolReader(str(pool))
    one_by_one.poll()
    stopped = PoolReader(str(pool))
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 3:
            raise LoadStopped

    with pytest.raises(LoadStopped):
        load(stopped, progress=progress, workers=2, chunk=16 * 1024, parallel_min=0)
    assert calls[-1][0] < calls[-1][1]  # stopped before the end
    assert 0 < len(stopped.store) < len(one_by_one.store)
    (ex,) = made  # its parse workers: stopped and joined
    assert ex._shutdown_thread and not ex._processes
    before = len(stopped.store)
    res = stopped.poll()
    assert before + res.records == len(one_by_one.store)
    a, b = Events(one_by_one.store), Events(stopped.store)
    assert a.n == b.n
    assert _by_location(a) == _by_location(b)
    assert _files(one_by_one) == _files(stopped)


def a_t0(run: Any) -> float:
    return float(Events(run.store).t0)


def _flagged(ev: Events) -> list[tuple[str, int]]:
    return sorted((ev.file_names[ev.file[r]], int(ev.line[r]))
                  for r in ev.store.time_flags().tolist())


def test_a_run_begun_from_its_newest_records_ends_up_as_a_run_loaded_at_once(
        tmp_path: Path) -> None:
    """``Run.begin`` (what the app reads before its first frame) stores the start of the
    files that start first and the end of those written last, ahead of the rest of them:
    a first screen of what the run did last, its times from the run's start. The load
    afterwards reads every file up to that part and on after it: the same records at the
    same lines, the same bad lines and times left out, the same result as one load;
    while it has not, those rows' line numbers say they are not known."""
    from features.loader import HEAD, HEAD_FILES
    from features.run import Run

    pool = _pool(tmp_path)
    files = sorted(pool.glob("*.jsonlog"))
    big = files[0]  # 400 records: its end is stored ahead of the rest
    tail = [json.dumps(rec(500 + i, process=1000)).encode() for i in range(12)]
    tail[3] = json.dumps({**rec(503, process=1000), "created": "1.0"}).encode()  # far off
    with open(big, "ab") as out:
        out.write(b"not json, near the end\n\n" + b"\n".join(tail) + b"\n")
    os.utime(big, ns=(2 * 10**18, 2 * 10**18))  # written last of all
    (pool / "x.jsonlog").mkdir()  # a note the first look makes (and a load must keep)
    at_once = Run(pool, cache=False)
    whole = at_once.load()
    run = Run(pool, cache=False)
    first = run.begin()
    begun = Events(run.store)
    ahead = run.reader.tails[big.name].ahead
    assert ahead is not None and ahead.start > 0 and big.stat().st_size - ahead.start < HEAD
    assert 0 < first == begun.n < len(at_once.store) // 2
    # The start of the files that start first (0-7: the run's start), the end of those
    # written last (0, then 33-39).
    names = [f.name for f in files]
    assert {begun.file_names[f] for f in set(begun.file.tolist())} == \
        {*names[:HEAD_FILES], *names[-(HEAD_FILES - 1):]}
    assert begun.t0 == a_t0(at_once)
    mine = np.flatnonzero(begun.file == begun.file_names.index(big.name))
    unknown = mine[begun.line[mine] < 0]  # its end: line numbers not known yet
    assert len(unknown) == ahead.rows and begun.cite(int(unknown[0])).endswith(":?")
    assert [b.line for b in run.store.bad if b.file == int(begun.file[mine[0]]) and
            b.line < 0] == [-99]  # its bad line's too (the part's 99th line)
    # The last records of the run, as a first screen following it shows them.
    a = Events(at_once.store)
    assert [(a.file_names[a.file[r]], a.message[r]) for r in a.order[-100:]] == \
        [(begun.file_names[begun.file[r]], begun.message[r]) for r in begun.order[-100:]]
    assert run.begin() == 0  # once
    res = run.load()
    b = Events(run.store)
    assert run.reader.tails[big.name].ahead is None
    assert _by_location(a) == _by_location(b)
    assert _files(at_once.reader) == _files(run.reader)
    assert [(a.file_names[a.file[r]], int(a.line[r])) for r in a.order] == \
        [(b.file_names[b.file[r]], int(b.line[r])) for r in b.order]
    bad = lambda r: sorted((r.store.files[x.file].name, x.line, x.reason)  # noqa: E731
                           for x in r.store.bad)
    assert bad(at_once) == bad(run)
    assert _flagged(a) == _flagged(b) and (big.name, 400 + 3 + 2 + 4) in _flagged(b)
    assert at_once.store.time_note() == run.store.time_note()
    assert (res.records, res.bad, sorted(res.new_files), res.notes) == \
        (whole.records, whole.bad, sorted(whole.new_files), whole.notes)
    assert any("x.jsonlog" in n for n in res.notes)
    assert run.refresh().records == 0  # the tails continue exactly where the load ended
    with open(big, "ab") as out:  # and a live run goes on after the part read ahead
        out.write(json.dumps(rec(600, process=1000)).encode() + b"\n")
    assert run.refresh().records == 1
    assert int(run.events().line[-1]) == 400 + 3 + 2 + 12 + 1


def test_a_run_begun_from_its_newest_records_is_read_on_by_polls_alone(
        tmp_path: Path) -> None:
    """A load stopped before it reached a part read ahead (the app closing), or a reader
    that only polls: each file is read up to the part, then on after it, exactly."""
    from features.run import Run

    pool = _pool(tmp_path)
    for k, f in enumerate(sorted(pool.glob("*.jsonlog"))[:3]):  # the big ones, written last
        os.utime(f, ns=(2 * 10**18 + k, 2 * 10**18 + k))
    at_once = Run(pool, cache=False)
    at_once.load()
    run = Run(pool, cache=False)
    assert run.begin() > 0
    assert sum(t.ahead is not None for t in run.reader.tails.values()) == 3
    run.reader.poll(full=True)
    assert all(t.ahead is None for t in run.reader.tails.values())
    assert _by_location(Events(at_once.store)) == _by_location(Events(run.store))
    assert _files(at_once.reader) == _files(run.reader)


def test_a_run_of_too_many_files_is_begun_by_finding_them_only(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Choosing the heads reads the start of every file: past ``BEGIN_FILES_MAX`` files
    (16k files took longer than the screen they would fill) ``Run.begin`` finds the files
    and reads no record; the load reads them all, once."""
    import features.run
    from features.run import Run

    pool = _pool(tmp_path)
    monkeypatch.setattr(features.run, "BEGIN_FILES_MAX", 39)
    run = Run(pool, cache=False)
    assert run.begin() == 0 and len(run.store) == 0 and len(run.reader.tails) == 40
    res = run.load()
    at_once = Run(pool, cache=False)
    whole = at_once.load()
    assert _by_location(Events(at_once.store)) == _by_location(Events(run.store))
    assert (res.records, sorted(res.new_files)) == (whole.records, sorted(whole.new_files))
    monkeypatch.setattr(features.run, "BEGIN_FILES_MAX", 40)
    assert Run(pool, cache=False).begin() > 0


def test_a_begun_load_stopped_mid_way_reads_on_to_exactly_the_run(tmp_path: Path) -> None:
    """The app closing during the load of a begun run (the ends of some files stored
    ahead, the rest part read): a later read goes on from where each file stopped, up to
    its end stored ahead, then after it; one more record written meanwhile is read once,
    at its line."""
    import pytest

    from features.loader import LoadStopped, load
    from features.run import Run

    pool = _pool(tmp_path)
    files = sorted(pool.glob("*.jsonlog"))
    for k, f in enumerate(files[:3]):  # the big ones, written last
        os.utime(f, ns=(2 * 10**18 + k, 2 * 10**18 + k))
    run = Run(pool, cache=False)
    assert run.begin() > 0
    assert sum(t.ahead is not None for t in run.reader.tails.values()) == 3
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise LoadStopped

    with pytest.raises(LoadStopped):
        load(run.reader, progress=progress, workers=1, chunk=16 * 1024, parallel_min=0,
             heads_first=False)
    assert any(t.ahead is not None and 0 < t.offset < t.ahead.start
               for t in run.reader.tails.values())  # stopped inside a file, before its end
    with open(files[1], "ab") as out:
        out.write(json.dumps(rec(1999, process=1001)).encode() + b"\n")
    run.reader.poll(full=True)
    assert all(t.ahead is None for t in run.reader.tails.values())
    one_by_one = PoolReader(str(pool))
    one_by_one.poll()
    assert _by_location(Events(one_by_one.store)) == _by_location(Events(run.store))
    assert _files(one_by_one) == _files(run.reader)


def test_a_file_read_from_its_end_first_then_replaced_is_not_read_twice(
        tmp_path: Path) -> None:
    """A file whose end was stored first (its rows before its start's) and that is later
    replaced by a new file with the same records and one more: the records it shares are
    skipped in the file's order, and the one more is read, at its line."""
    from features.run import Run

    pool = _pool(tmp_path)
    big = sorted(pool.glob("*.jsonlog"))[0]
    os.utime(big, ns=(2 * 10**18, 2 * 10**18))  # written last: its end is read first
    run = Run(pool, cache=False)
    run.begin()
    assert run.reader.tails[big.name].ahead is not None
    run.load()
    n = len(run.store)
    lines = big.read_bytes().count(b"\n")
    moved = big.with_suffix(".new")
    moved.write_bytes(big.read_bytes() + json.dumps(rec(7777, process=1000)).encode() + b"\n")
    moved.replace(big)  # a new inode in its place
    res = run.refresh()
    assert res.records == 1 and len(run.store) == n + 1
    assert any("replaced" in note for note in res.notes)
    ev = run.events()
    assert ev.message[len(run.store) - 1] == "message 7777"
    assert int(ev.line[len(run.store) - 1]) == lines + 1


def test_a_file_deleted_after_its_end_was_read_first_says_so_and_cites_no_false_line(
        tmp_path: Path) -> None:
    """A file whose end was stored first, deleted before the load reached it: its records
    read are kept, the note says it was not read whole, and its end's records (line
    numbers never known) are shown, exported and cited without a line, not with the
    negative line numbers they were stored with."""
    from features.jsonl import jsonl
    from features.run import Run
    from steering.ask.lookups import ev_at

    pool = _pool(tmp_path)
    big = sorted(pool.glob("*.jsonlog"))[0]
    os.utime(big, ns=(2 * 10**18, 2 * 10**18))  # written last: its end is read first
    run = Run(pool, cache=False)
    run.begin()
    ahead = run.reader.tails[big.name].ahead
    assert ahead is not None and ahead.rows > 0
    ev = run.events()  # read, not yet placed: its lines not known yet either
    placed = np.flatnonzero(ev.line[:ev.n] <= 0)[:3]
    assert len(placed) == 3
    for raw in (True, False):
        got = [json.loads(x) for x in b"".join(jsonl(ev, placed, raw=raw)).splitlines()]
        assert [r["@line"] for r in got] == [None, None, None]
        assert all(r.get("@unreadable") is None and "message" in r for r in got)
    big.unlink()
    res = run.load()
    note = next(n for n in res.notes if n.startswith(big.name))
    assert "deleted before it was read whole" in note
    assert f"its last {ahead.rows} without line numbers" in note
    ev = run.events()
    rows = np.flatnonzero(ev.file[:ev.n] == run.reader.tails[big.name].info.index)
    unknown = rows[ev.line[rows] <= 0]
    assert len(unknown) == ahead.rows
    assert {ev.line_text(int(r)) for r in unknown} == {"?"}
    assert ev.cite(int(unknown[0])).endswith(":?")
    assert ev_at(run, int(unknown[0])) is None and ev_at(run, int(rows[0])) is not None
    out = [json.loads(x) for x in b"".join(jsonl(ev, unknown[:3])).splitlines()]
    assert [r["@line"] for r in out] == [None, None, None]
    table = run.events_table(rows=np.concatenate([rows[:2], unknown[:2]]))
    assert table["@line"].tolist() == [int(ev.line[rows[0]]), int(ev.line[rows[1]]),
                                       None, None]


FAULTS = """
import resource, sys
from features.loader import _executor

def faults():  # ten groups of ~1 MB blocks, made then freed, after a first one
    x = bytes(1 << 20)
    del x  # the first big block freed: glibc's thresholds follow it
    group()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        group()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def group():
    blocks = [bytearray(1 << 20) for _ in range(12)]
    del blocks

if __name__ == "__main__":
    if sys.argv[1] == "worker":  # in a parse worker, as a load starts them
        print(_executor(2, True).submit(faults).result())
    else:
        print(faults())
"""


_SET_FROM_ENV = ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or any(
    k in os.environ for k in _SET_FROM_ENV),
    reason="glibc's own thresholds (not set from the environment)")
def test_a_parse_worker_keeps_the_memory_it_frees() -> None:
    """A parse worker's memory freed after a group of ~1 MB blocks is not given back to
    the system each time (to fault its pages in again for the next group): in a worker
    started as a load starts them, ten groups after the first fault next to no pages; in
    a process without the worker's set-up, thousands."""
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                             text=True, check=True, cwd=ROOT, env={**os.environ})
        return int(out.stdout.strip())

    assert faults("worker") < 300
    assert faults("here") > 3000
