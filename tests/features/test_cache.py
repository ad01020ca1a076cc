"""The saved reading of a pool (features.cache): a run opened from it is the run read from
scratch, whatever happened to the pool since; a cache that cannot be trusted is read
around and replaced. On copies of real sample pools (several processes each)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features import cache
from features.render import render_text
from features.report import build
from features.run import Run
from tests.features.test_regular import _within

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pool(sample: Callable[[str], Path], tmp_path: Path) -> Path:
    """A writable copy of the ``pairs`` sample (a driver and two worker processes)."""
    dst = tmp_path / "pool" / sample("pairs").name
    shutil.copytree(sample("pairs"), dst)
    return dst


def opened(pool: Path, **kw: Any) -> Run:
    run = Run(pool, **kw)
    run.load()
    return run


def reading(run: Run) -> dict[str, Any]:
    """What a user gets from a run, independent of row numbering: every record (file,
    line, time, message, every key's value) in time order, the things, the analyses and
    the report."""
    s = run.store
    names = [f.name for f in s.files]
    table = run.events_table()
    recs = [tuple(sorted((k, repr(v)) for k, v in r.items() if k != "row"))
            for r in table.records()]
    by_line = sorted(zip((names[int(f)] for f in s.file.view()[s.order]),
                         s.line.view()[s.order].tolist(), strict=True))
    acts = run.actions().sort("tag").records()
    return {
        "rows": len(s), "records": recs, "lines": by_line,
        "files": sorted((f.name, f.records, f.bad, f.blank) for f in s.files),
        "bad": sorted((names[b.file], b.line, b.reason) for b in s.bad),
        # Row numbers are the store's own (a file that appeared later is numbered after
        # the ones a live reader knew); what they point at is compared above.
        "actions": [{k: repr(v) for k, v in a.items() if not k.startswith("row")}
                    for a in acts],
        "agents": [{k: repr(v) for k, v in a.items() if not k.startswith("row")}
                   for a in run.agents().sort("agent_id").records()],
        "where": repr(run.where_time_went().seconds),
        # (a run whose saved reading could not be used says so: read from scratch, it has
        # nothing to say)
        "report": re.sub(r"\d+ s ago", "N s ago", re.sub(
            r"\n[^\n]*its saved reading was not used[^\n]*", "", render_text(build(run)))),
        "bounds": run.store.time_note(),
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in a:
        assert a[key] == b[key], key


def test_a_reopened_pool_is_the_pool_read_from_scratch(pool: Path) -> None:
    first = opened(pool, cache=True)
    assert first.cache_status.startswith("saved"), first.cache_status
    again = opened(pool, cache=True)
    assert again.cache_status == f"restored {len(first.store):,} records"
    fresh = opened(pool, cache=False)
    assert fresh.cache_status == "not used"
    want = reading(fresh)
    same(reading(first), want)
    same(reading(again), want)
    # The columns come from the map, copy-on-write: writing into one leaves the file as
    # it was, and the next open is still whole.
    where, meta = _files(pool)
    before = (where / meta["arrays"]).read_bytes()
    again.store.created._buf[:] = -1.0
    assert (where / meta["arrays"]).read_bytes() == before
    assert opened(pool, cache=True).cache_status.startswith("restored")


def test_a_run_begun_from_its_saved_reading_is_the_run_read_from_scratch(
        pool: Path) -> None:
    """``Run.begin`` (what the app reads before its first frame) takes the saved reading
    whole; the load afterwards reads what was written since, says the reading was
    restored, and does not save it again for nothing."""
    first = opened(pool, cache=True)
    files = sorted(pool.glob("*.jsonlog"))
    with open(files[0], "ab") as out:  # one more record, written after the save
        out.write(files[0].read_bytes().splitlines(keepends=True)[-1])
    run = Run(pool, cache=True)
    assert run.begin() == len(first.store)
    saved_at = (cache.path_for(pool) / "meta.json").stat().st_mtime_ns  # used just now
    assert run.cache_status == f"restored {len(first.store):,} records"
    res = run.load()
    assert res.records == 1 and len(run.store) == len(first.store) + 1
    assert run.cache_status == f"restored {len(first.store):,} records"
    assert (cache.path_for(pool) / "meta.json").stat().st_mtime_ns == saved_at  # not saved
    same(reading(run), reading(opened(pool, cache=False)))


def test_a_run_begun_from_the_end_of_its_files_reads_as_the_run_read_in_order(
        pool: Path) -> None:
    """Begun without a saved reading (the end of the files written last stored before the
    rest of them), a run has the same records, things, analyses and report as a run read
    in file order: nothing relates records by the order they were read in."""
    run = Run(pool, cache=False)
    assert run.begin() > 0
    assert any(t.ahead is not None for t in run.reader.tails.values())
    run.load()
    assert all(t.ahead is None for t in run.reader.tails.values())
    fresh = opened(pool, cache=False)
    same(reading(run), reading(fresh))
    procs = lambda r: sorted(  # noqa: E731
        tuple(sorted((k, repr(v)) for k, v in p.items() if not k.startswith("row")))
        for p in r.processes().records())
    assert procs(run) == procs(fresh)


def test_a_big_saved_reading_is_not_waited_for_before_the_first_screen(
        pool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved reading too big to check quickly (30M records: 3.4-4.5 s) is left to the
    load, which the app runs with its screen up; the heads are not read either (that
    would make the run unable to take its saved reading)."""
    import features.run

    first = opened(pool, cache=True)
    size = cache.saved_bytes(pool)
    assert size is not None and size > 0
    monkeypatch.setattr(features.run, "BEGIN_SAVED_MAX", size - 1)
    run = Run(pool, cache=True)
    assert run.begin() == 0 and len(run.store) == 0 and not run.reader.tails
    run.load()
    assert run.cache_status == f"restored {len(first.store):,} records"
    monkeypatch.setattr(features.run, "BEGIN_SAVED_MAX", size)
    run = Run(pool, cache=True)
    assert run.begin() == len(first.store)


def test_grown_and_new_files_are_read_from_where_the_cache_stopped(pool: Path) -> None:
    """The run caught mid-way (every file shorter, one ending inside a line, one process
    not started yet), saved; then the files grow to the whole run."""
    files = sorted(pool.glob("*.jsonlog"))
    whole = {f: f.read_bytes() for f in files}
    late = files[-1]
    late.unlink()
    for k, f in enumerate(files[:-1]):
        data = whole[f]
        cut = data.index(b"\n", len(data) // 3) + 1
        f.write_bytes(data[:cut + 17] if k == 0 else data[:cut])  # file 0: a partial line
    first = opened(pool, cache=True)
    assert first.cache_status.startswith("saved") and first.reader.pending_bytes() == 17
    for f in files[:-1]:
        with open(f, "ab") as out:  # the same inode, grown
            out.write(whole[f][f.stat().st_size:])
    late.write_bytes(whole[late])
    again = opened(pool, cache=True)
    assert again.cache_status.startswith("restored"), again.cache_status
    fresh = opened(pool, cache=False)
    assert len(again.store) == len(fresh.store) > len(first.store)
    same(reading(again), reading(fresh))


def _mapped(a: np.ndarray) -> bool:
    """``a`` lies in a saved reading's map (not in memory of the process's own)."""
    b: Any = a
    while isinstance(b, np.ndarray):
        b = b.base
    return isinstance(b, memoryview)


def test_a_live_run_grows_into_its_saved_columns_without_copying_them(pool: Path) -> None:
    """A saved column keeps room to grow: the records a live run writes after its reading
    was saved go into the map (their pages alone become the process's), where the first
    of them copied every column before (10M records: 0.6 -> 2.7 GB resident)."""
    opened(pool, cache=True)
    f = sorted(pool.glob("*.jsonlog"))[1]
    with open(f, "ab") as out:  # the process logs 40 more records
        out.write(b"".join(f.read_bytes().splitlines(keepends=True)[-40:]))
    again = opened(pool, cache=True)
    assert again.cache_status.startswith("restored"), again.cache_status
    s = again.store
    cols = [s.created, s.file, s.line, s.offset, s.length, s.flags, s.shape,
            *s.ints.values(), *s.codes.values()]
    assert all(_mapped(c._buf) for c in cols)
    fresh = opened(pool, cache=False)
    assert len(s) == len(fresh.store)
    same(reading(again), reading(fresh))


@pytest.mark.parametrize("change", ["replaced", "truncated", "rewritten", "rewritten early",
                                    "time put back", "deleted"])
def test_a_changed_file_is_never_read_from_the_cache(pool: Path, change: str) -> None:
    """A pool file replaced, truncated, deleted, or written over in place (same size: at
    its end, where the saved reading keeps a checksum, or near its start, which only its
    modification time tells, or its status time when the modification time was put back
    as ``touch -r`` does) is read again, never taken from the saved reading."""
    opened(pool, cache=True)
    f = sorted(pool.glob("*.jsonlog"))[1]
    data = f.read_bytes()
    if change == "replaced":  # another inode (made before the old one goes), other bytes
        tmp = f.with_suffix(".new")
        tmp.write_bytes(data[data.index(b"\n") + 1:])
        os.replace(tmp, f)
    elif change == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif change == "rewritten":  # same inode and size, other bytes before the end
        k = data.rindex(b'"message": "') + len('"message": "')
        f.write_bytes(data[:k] + b"X" + data[k + 1:])
    elif change == "rewritten early":  # same inode and size, far from the end
        k = data.index(b'"message": "') + len('"message": "')
        assert len(data) - k > cache.FINGERPRINT
        f.write_bytes(data[:k] + b"X" + data[k + 1:])
    elif change == "time put back":  # written over far from the end, then touch -r
        st = f.stat()
        k = data.index(b'"message": "') + len('"message": "')
        f.write_bytes(data[:k] + b"Y" + data[k + 1:])
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    else:
        f.unlink()
    if change == "rewritten early":  # as a person sees it: why this open read every file
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ACADEMY_TUI_NO_CACHE": "0"}
        got = subprocess.run([sys.executable, "-m", "tui.cli", "report", str(pool),
                              "--no-anomalies"], capture_output=True, text=True, env=env,
                             check=False)
        assert got.returncode == 0, got.stderr
        assert f"academy-tui: its saved reading was not used ({f.name} was rewritten " \
            "(its size the same, its time not)): read from the files" in got.stderr, \
            got.stderr
        # A pool this small is not saved again by a command: the reading it could not use
        # is removed, and the next open says nothing.
        assert not cache.path_for(pool).exists()
        again = subprocess.run([sys.executable, "-m", "tui.cli", "report", str(pool),
                                "--no-anomalies"], capture_output=True, text=True, env=env,
                               check=False)
        assert again.returncode == 0 and "saved reading" not in again.stderr, again.stderr
        opened(pool, cache=True)  # saved again, then written over once more (below)
        f.write_bytes(data[:k] + b"Z" + data[k + 1:])
    again = opened(pool, cache=True)
    name = {"replaced": "was replaced", "truncated": "was truncated",
            "rewritten": "was rewritten", "rewritten early": "was rewritten",
            "time put back": "was changed (its size and modification time the same, its "
                             "status time not)", "deleted": "is gone"}[change]
    assert again.cache_status.startswith(f"not used: {f.name} {name}"), again.cache_status
    assert again.notes[0].startswith(f"its saved reading was not used ({f.name} {name}"), \
        again.notes
    same(reading(again), reading(opened(pool, cache=False)))
    # ... and the cache was made again from this reading.
    assert opened(pool, cache=True).cache_status.startswith("restored")


def _files(pool: Path) -> tuple[Path, dict[str, Any]]:
    where = cache.path_for(pool)
    return where, json.loads((where / "meta.json").read_bytes())


def _reseal(where: Path, meta: dict[str, Any]) -> None:
    (where / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [None, "first block", "last block", "a sum dropped",
                                    "block size", "no block size"])
def test_the_columns_are_summed_a_block_at_a_time(pool: Path, damage: str | None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The columns' file has a CRC-32 per block, checked on every core when it opens: a
    byte changed in any block, a sum missing, or a block size that is not the one the sums
    were made with, and the pool is read from scratch (then saved again)."""
    monkeypatch.setattr(cache, "CRC_BLOCK", 4099)  # many blocks, the last one short
    want = reading(opened(pool, cache=True))
    where, meta = _files(pool)
    arrays = where / meta["arrays"]
    assert meta["crc_block"] == 4099 and len(meta["arrays_crcs"]) > 8
    assert meta["arrays_bytes"] % 4099  # a short last block
    if damage in ("first block", "last block"):
        b = bytearray(arrays.read_bytes())
        b[100 if damage == "first block" else len(b) - 1] ^= 0x01
        arrays.write_bytes(bytes(b))
    elif damage == "a sum dropped":
        meta["arrays_crcs"] = meta["arrays_crcs"][:-1]
        _reseal(where, meta)
    elif damage == "block size":
        meta["crc_block"] = 4096
        _reseal(where, meta)
    elif damage == "no block size":
        meta["crc_block"] = "4099"
        _reseal(where, meta)
    run = opened(pool, cache=True)
    if damage is None:
        assert run.cache_status.startswith("restored"), run.cache_status
    else:
        assert run.cache_status.startswith("not used: "), run.cache_status
        assert opened(pool, cache=True).cache_status.startswith("restored")
    same(reading(run), want)


@pytest.mark.parametrize("damage", ["columns", "state", "short", "missing", "meta",
                                    "version", "other pool", "writable", "not json"])
def test_a_damaged_cache_is_read_around_and_replaced(pool: Path, damage: str) -> None:
    want = reading(opened(pool, cache=True))
    where, meta = _files(pool)
    arrays, state = where / meta["arrays"], where / meta["state"]
    if damage == "columns":
        b = bytearray(arrays.read_bytes())
        b[len(b) // 2] ^= 0xFF
        arrays.write_bytes(bytes(b))
    elif damage == "state":
        b = bytearray(state.read_bytes())
        b[len(b) // 2] ^= 0xFF
        state.write_bytes(bytes(b))
    elif damage == "short":
        state.write_bytes(state.read_bytes()[:-100])
    elif damage == "missing":
        arrays.unlink()
    elif damage == "meta":
        meta["records"] += 1
        _reseal(where, meta)
    elif damage == "version":
        meta["version"] = cache.VERSION + 1
        _reseal(where, meta)
    elif damage == "other pool":
        meta["pool"] = "/elsewhere"
        _reseal(where, meta)
    elif damage == "writable":
        os.chmod(state, 0o666)
    else:
        (where / "meta.json").write_text("{not json")
    run = opened(pool, cache=True)
    assert run.cache_status.startswith("not used: "), run.cache_status
    same(reading(run), want)
    assert opened(pool, cache=True).cache_status.startswith("restored")


@pytest.mark.parametrize("change", [None, "columns damaged after", "columns damaged before",
                                    "described again", "a pool file rewritten"])
def test_columns_summed_early_are_taken_only_for_the_file_they_were_summed_from(
        pool: Path, change: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check_early`` (the commands call it before their imports) sums the columns on
    another thread; ``restore`` takes those sums only when the description and the
    columns' file are the very ones summed, and compares them as its own. A file changed
    after the sums (same size, its time put back) is summed again and refused; one
    damaged before is refused by the early sums; a description written again makes
    the restore sum the file itself; a pool file rewritten since the save stops the
    early sums (the restore gives up before it needs them). No summing thread is left
    running after the restore."""
    monkeypatch.setattr(cache, "CRC_BLOCK", 4099)
    want = reading(opened(pool, cache=True))
    where, meta = _files(pool)
    arrays = where / meta["arrays"]
    summed: list[Path] = []
    init = cache._Sums.__init__

    def counted(self: cache._Sums, path: Path, *args: Any) -> None:
        summed.append(path)
        init(self, path, *args)

    monkeypatch.setattr(cache._Sums, "__init__", counted)

    def flip() -> None:
        st = arrays.stat()
        b = bytearray(arrays.read_bytes())
        b[len(b) // 3] ^= 0x01
        arrays.write_bytes(bytes(b))
        os.utime(arrays, ns=(st.st_atime_ns, st.st_mtime_ns))

    if change == "columns damaged before":
        flip()
    elif change == "a pool file rewritten":
        f = max(pool.glob("*.jsonlog"), key=lambda p: p.stat().st_size)
        f.write_bytes(f.read_bytes().replace(b"next_item", b"next_ITEM", 1))
        want = reading(opened(pool, cache=False))
    assert cache.check_early(pool)
    if change != "a pool file rewritten":
        cache._EARLY[where].sums.result(threads=1)  # the early sums are done
    if change == "columns damaged after":
        flip()
    elif change == "described again":
        (where / "meta.json").write_text(json.dumps(meta, indent=1))  # other bytes
    run = opened(pool, cache=True)
    assert where not in cache._EARLY  # taken once
    if change in (None, "described again"):
        assert run.cache_status.startswith("restored"), run.cache_status
    elif change == "a pool file rewritten":  # given up before the sums were wanted
        assert run.cache_status.startswith("not used: ") and "rewritten" in \
            run.cache_status, run.cache_status
    else:
        assert run.cache_status.startswith(
            "not used: the cache's columns do not match their checksum"), run.cache_status
    assert summed == [arrays] * (1 if change in (None, "columns damaged before",
                                                 "a pool file rewritten") else 2)
    # Every summing thread has ended: a process left with one thread forks its workers.
    assert not [t for t in threading.enumerate() if t.name == "academy-tui-cache-sum"]
    same(reading(run), want)


def test_threads_that_join_a_sum_take_the_blocks_left(tmp_path: Path) -> None:
    """The columns' sums are taken block by block by whichever threads take part: one
    started early and more that join it (a restore) give each block's CRC-32 once; a
    file shorter than described is refused before any sum."""
    data = os.urandom(4099 * 37 + 11)
    path = tmp_path / "arrays.bin"
    path.write_bytes(data)
    want = [zlib.crc32(data[i:i + 4099]) for i in range(0, len(data), 4099)]
    for early in (0, 1, 3):
        sums = cache._Sums(path, 4099, len(data))
        started = [threading.Thread(target=sums.work) for _ in range(early)]
        for t in started:
            t.start()
        assert sums.result(threads=4) == want
        for t in started:
            t.join()
        assert not any(t.is_alive() for t in sums._threads)  # its own, joined
    sums = cache._Sums(path, 4099, len(data))
    sums.start(1)
    sums.cancel()  # not wanted: no block is taken after it, its thread has ended
    assert not any(t.is_alive() for t in sums._threads)
    assert sums._next == sums.n and sums._done.wait(timeout=60)
    assert cache._Sums(path, 4099, 0).result() == []
    with pytest.raises(cache.CacheError, match="ends early"):
        cache._Sums(path, 4099, len(data) + 1)


@pytest.mark.parametrize("forged", ["fifo", "fifo description", "symlink", "short",
                                    "no cache", "not json"])
def test_nothing_is_summed_early_from_what_is_not_a_saved_reading(
        pool: Path, tmp_path: Path, forged: str) -> None:
    """A columns' file or a description that is a FIFO (opening one would wait for a
    writer), a columns' file that is a symbolic link or shorter than described, no saved
    reading, or a description that is not JSON: ``check_early`` starts nothing and
    returns at once, and the run opens as it would without it."""
    want = len(opened(pool, cache=False).store)
    opened(pool, cache=True)
    where, meta = _files(pool)
    arrays = where / meta["arrays"]
    if forged.startswith("fifo"):
        fifo = arrays if forged == "fifo" else where / "meta.json"
        fifo.unlink()
        os.mkfifo(fifo, 0o600)
    elif forged == "symlink":
        other = tmp_path / "elsewhere"
        shutil.copy(arrays, other)
        arrays.unlink()
        arrays.symlink_to(other)
    elif forged == "short":
        arrays.write_bytes(arrays.read_bytes()[:-1])
    elif forged == "no cache":
        shutil.rmtree(where)
    else:
        (where / "meta.json").write_text("{not json")
    fifos = [arrays, where / "meta.json"] if forged.startswith("fifo") else []
    assert _within(lambda: cache.check_early(pool), fifos) is False
    assert where not in cache._EARLY
    run = _within(lambda: opened(pool, cache=True), fifos)  # (it waited on the FIFO for good)
    assert not run.cache_status.startswith("restored"), run.cache_status
    assert len(run.store) == want


def test_a_command_on_a_saved_reading_sums_it_while_it_imports(pool: Path,
                                                                tmp_path: Path) -> None:
    """``academy-tui report`` on a pool with a saved reading starts the sums before it
    imports numpy (in a fresh process: nothing of ours or numpy imported before), and
    reports what it reports without them."""
    opened(pool, cache=True)
    code = (
        "import sys\n"
        "from features import cache\n"
        "started = []\n"
        "check = cache.check_early\n"
        "def early(p):\n"
        "    started.append('numpy' in sys.modules)\n"
        "    return check(p)\n"
        "cache.check_early = early\n"
        "from tui.cli import main\n"
        "rc = main(['report', sys.argv[1], '--no-anomalies'])\n"
        "print('STARTED', started, file=sys.stderr)\n"
        "sys.exit(rc)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACADEMY_TUI_NO_CACHE": "0"}
    got = subprocess.run([sys.executable, "-c", code, str(pool)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, check=False)
    assert got.returncode == 0, got.stderr
    assert "STARTED [False]" in got.stderr, got.stderr
    plain = subprocess.run([sys.executable, "-m", "tui.cli", "report", str(pool),
                            "--no-anomalies", "--no-cache"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, check=False)
    assert plain.returncode == 0, plain.stderr
    strip = re.compile(r"\d+ s ago")
    assert strip.sub("", got.stdout) == strip.sub("", plain.stdout)


def test_a_forged_cache_makes_no_call(pool: Path, tmp_path: Path) -> None:
    """A cache whose checksums are right but whose pickle names a function (here
    ``os.system``) is refused before anything is called."""
    opened(pool, cache=True)
    where, meta = _files(pool)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    forged = pickle.dumps(Evil(), protocol=5)
    (where / meta["state"]).write_bytes(forged)
    meta.update(state_bytes=len(forged), state_crc=zlib.crc32(forged))
    _reseal(where, meta)
    run = opened(pool, cache=True)
    assert "posix.system" in run.cache_status or "os.system" in run.cache_status, \
        run.cache_status
    assert not marker.exists()
    assert len(run.store) == len(opened(pool, cache=False).store)


def test_small_pools_are_not_saved_unless_asked_and_the_switches_hold(
        pool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(opened(pool).store) < cache.MIN_RECORDS
    assert not cache.path_for(pool).exists()
    monkeypatch.setattr(cache, "MIN_RECORDS", 10)
    assert opened(pool).cache_status.startswith("saved")
    assert opened(pool).cache_status.startswith("restored")
    monkeypatch.setenv("ACADEMY_TUI_NO_CACHE", "1")
    assert opened(pool).cache_status == "not used"
    monkeypatch.delenv("ACADEMY_TUI_NO_CACHE")
    assert opened(pool, cache=False).cache_status == "not used"


def test_the_cli_switch(pool: Path) -> None:
    """``--no-cache`` opens without the cache and saves none; without it the report reads
    the same from a cache saved by a notebook."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "tui.cli", "report", str(pool)]
    plain = subprocess.run([*cmd, "--no-cache"], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert not cache.path_for(pool).exists()
    opened(pool, cache=True)
    cached = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=120)
    assert cached.returncode == 0, cached.stderr
    assert cached.stdout == plain.stdout


def test_least_recently_used_caches_go_first(sample: Callable[[str], Path],
                                             tmp_path: Path) -> None:
    pools = []
    for name in ("pairs", "http", "thread"):
        dst = tmp_path / name / sample(name).name
        shutil.copytree(sample(name), dst)
        opened(dst, cache=True)
        pools.append(dst)
    sizes = {p: sum(f.stat().st_size for f in cache.path_for(p).iterdir()) for p in pools}
    os.utime(cache.path_for(pools[0]) / "meta.json", (1, 1))  # used long ago
    gone = cache.evict(limit=sizes[pools[1]] + sizes[pools[2]])
    assert gone == [cache.path_for(pools[0])]
    assert all(cache.path_for(p).exists() for p in pools[1:])


def test_restored_columns_are_arrays_that_grow(pool: Path) -> None:
    opened(pool, cache=True)
    run = opened(pool, cache=True)
    col = run.store.created
    before = col.view().copy()
    col.extend(np.array([1.0, 2.0]))
    assert np.array_equal(col.view()[:-2], before) and col.view()[-2:].tolist() == [1.0, 2.0]


def test_messages_saved_as_bytes_read_back_as_written() -> None:
    """The message column freezes into UTF-8 bytes when saved and decodes on demand: any
    text (accents, CJK, emoji, newlines, NUL, an unpaired surrogate) comes back as it was,
    by index, slice and iteration, before and after more are appended."""
    from features.columns import Messages

    texts = ["plain", "", "café ✓", "日本語", "🚀 launch", "two\nlines", "nul\0byte",
             "lone \ud800 surrogate"] * 3
    m = Messages()
    m.extend(texts[:10])
    back = pickle.loads(pickle.dumps(m, protocol=5))
    back.extend(texts[10:])
    assert len(back) == len(texts)
    assert [back[i] for i in range(len(texts))] == texts
    assert back[-1] == texts[-1] and back[3:14] == texts[3:14] and back[::5] == texts[::5]
    assert list(back) == texts
    again = pickle.loads(pickle.dumps(back, protocol=5))  # frozen and tail, frozen again
    assert list(again) == texts and again[9:11] == texts[9:11]
    with pytest.raises(IndexError):
        again[len(texts)]


def test_messages_in_parts_as_parse_workers_send_them() -> None:
    """A parse worker sends a batch's messages packed (features.columns.pack_texts); the
    store keeps the parts as they come, after texts appended as a list, before and after
    saving: whatever the mix, every index, slice and pass gives the texts in order."""
    import random

    from features.columns import Messages, pack_texts

    rng = random.Random(3)
    alphabet = ["a", "é", "\ud800", "😀", "", "\n", "\0", "xxxxx", "日本"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    for _ in range(200):
        m, want = Messages(), []
        for _ in range(rng.randint(1, 8)):
            some = [text() if rng.random() < 0.5 else "ascii" * rng.randint(0, 3)
                    for _ in range(rng.randint(0, 7))]
            m.extend(pack_texts(some) if rng.random() < 0.5 else some)
            want.extend(some)
            if rng.random() < 0.2:
                m = pickle.loads(pickle.dumps(m, protocol=5))
        assert len(m) == len(want) and list(m) == want
        assert [m[i] for i in range(len(want))] == want
        assert [m[-i - 1] for i in range(len(want))] == want[::-1]
        for _ in range(10):
            a, b = sorted(rng.randint(-3, len(want) + 3) for _ in range(2))
            assert m[a:b] == want[a:b] and m[a:b:2] == want[a:b:2]
    assert pack_texts(["é\ud800", ""]).texts() == ["é\ud800", ""]


def test_user_values_saved_as_one_block_read_back_and_grow(pool: Path) -> None:
    """The workflow's own keys (``fib.*``), kept at ingest, are saved as one block of
    texts and decoded where asked: every range of rows, before and after 70 appended
    batches (joined once there are more than 64), equals a reading from scratch."""
    opened(pool, cache=True)
    run = opened(pool, cache=True)
    assert run.cache_status.startswith("restored")
    keys = [k for k in run.store.keys() if k.startswith("fib.")]  # noqa: SIM118 (a method)
    assert keys and all(run.store.user_kept(k) for k in keys)
    assert any(not isinstance(run.store._user[k][1][0], list) for k in keys)  # a block
    f = sorted(pool.glob("*.jsonlog"))[1]
    lines = f.read_bytes().splitlines(keepends=True)
    for step in range(2):
        n = len(run.store)
        fresh = opened(pool, cache=False)
        assert len(fresh.store) == n
        for k in keys:
            # Row numbers are each store's own: compared by where the record is.
            assert _by_place(run, k) == _by_place(fresh, k), k
            got = run.store.user_values(k, 0, n)
            assert got is not None
            for a, b in ((0, 5), (n // 3, n // 2), (n - 40, n), (n, n)):
                part = run.store.user_values(k, a, b)
                inside = (got[0] >= a) & (got[0] < b)
                assert part is not None and part[0].tolist() == got[0][inside].tolist()
                assert part[1] == [v for v, i in zip(got[1], inside, strict=True) if i]
        if step == 0:
            for i in range(70):
                with open(f, "ab") as fh:
                    fh.writelines(lines[i * 3:i * 3 + 3])
                run.refresh()
    assert len(run.store._user[keys[0]][0]) <= 3  # the appended batches were joined


def _by_place(run: Run, key: str) -> dict[tuple[str, int], object]:
    rows, vals = run.store.user_values(key, 0, len(run.store)) or (np.empty(0, int), [])
    names = [fi.name for fi in run.store.files]
    file_of, line_of = run.store.file.view(), run.store.line.view()
    return {(names[file_of[r]], int(line_of[r])): v
            for r, v in zip(rows.tolist(), vals, strict=True)}


def test_codes_widen_past_a_saved_narrow_column(pool: Path) -> None:
    """A saved reading keeps each key's codes as narrow as its values allowed (a byte
    for the sample's few agents); a live run that then logs hundreds of new agents
    widens the column, decodes every record as a fresh read does, and a snapshot taken
    before keeps its own rows' values."""
    opened(pool, cache=True)
    run = opened(pool, cache=True)
    assert run.cache_status.startswith("restored"), run.cache_status
    s = run.store
    assert s.codes["academy.agent_id"].view().dtype == np.int8
    assert s.file.view().dtype == s.shape.view().dtype == np.int8  # 3 files, few key sets
    assert s.codes["academy.action_tag"].view().dtype == np.int16  # hundreds of calls
    before = run.events()
    old = before.strings("academy.agent_id").tolist()
    f = sorted(pool.glob("*.jsonlog"))[1]
    last = json.loads(f.read_bytes().splitlines()[-1])
    with open(f, "ab") as out:
        for i in range(300):
            rec = dict(last, **{"academy.agent_id": f"AgentId<{i:08x}>",
                                "created": str(float(last["created"]) + 1 + i / 1000)})
            out.write(json.dumps(rec).encode() + b"\n")
    run.refresh()
    assert s.codes["academy.agent_id"].view().dtype == np.int16
    assert s.codes["academy.action_state"].view().dtype == np.int8
    assert before.strings("academy.agent_id").tolist() == old
    ids = run.events().strings("academy.agent_id").tolist()
    assert ids[:len(old)] == old and ids[-300:] == [f"AgentId<{i:08x}>" for i in range(300)]
    same(reading(run), reading(opened(pool, cache=False)))


def test_message_filters_on_a_restored_run_find_what_a_fresh_read_finds(pool: Path) -> None:
    """A saved reading keeps the messages packed, and a filter on them searches the bytes
    (features.columns.Messages.contains): the rows are those of the run read from scratch,
    whose messages are texts, for word and substring filters, sparse and dense, either case."""
    from features.query import parse
    from features.query_eval import select

    opened(pool, cache=True)
    again = opened(pool, cache=True)
    assert again.cache_status.startswith("restored")
    fresh = opened(pool, cache=False)
    ev, want_ev = again.events(), fresh.events()
    answered = [q for q in ("exchange", "shut", "no such text")
                if ev.message.contains(q, 0, ev.n, fold=True) is not None]
    assert answered, "the bytes answered no sparse filter"
    found = 0
    for q in ("agent", "AGENT", "Running", "message~Running", "message~running", "exchange",
              "shut", "no such text", "message~e", "a"):
        rows, want = select(ev, parse(q)), select(want_ev, parse(q))
        assert sorted(ev.message[int(r)] for r in rows) == \
            sorted(want_ev.message[int(r)] for r in want), q
        found += len(rows)
    assert found > 0
