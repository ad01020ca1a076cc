"""The process sampler on pools it can check exactly: a driver process holding its pool file
open with two children, a pid of this host that is no process of the run, a pid that is gone;
the two readers against each other; a finished run left as it was."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from steering.procread import Gone, ProcReader, PsutilReader
from steering.procsampler import FILE_PREFIX, Sampler
from tui.cli import main as cli

LINUX = sys.platform.startswith("linux")

DRIVER = r"""
import json, os, subprocess, sys, time
pool = sys.argv[1]
fh = open(os.path.join(pool, "driver.jsonlog"), "w")
def log(msg):
    fh.write(json.dumps({"created": time.time(), "process": os.getpid(), "message": msg}) + "\n")
    fh.flush()
log("start")
kids = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
print(" ".join(str(k.pid) for k in kids), flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "close":
        log("end")
        fh.close()
        print(time.time(), flush=True)
    elif cmd[0] == "kill":
        kids[int(cmd[1])].kill()
        kids[int(cmd[1])].wait()
        print("ok", flush=True)
    else:
        break
for k in kids:
    k.kill()
"""


def _write(path: Path, pid: int, created: float | None = None) -> None:
    path.write_text(json.dumps({"created": created or time.time(), "process": pid,
                                "message": "hello"}) + "\n")


def _records(pool: Path) -> list[dict[str, Any]]:
    (path,) = pool.glob(f"{FILE_PREFIX}*.jsonlog")
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def _until(cond: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("reader", ["proc", "psutil"] if LINUX else ["psutil"])
def test_sampler_follows_the_run_and_stops_when_its_logs_close(tmp_path: Path,
                                                               reader: str) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    drv = subprocess.Popen([sys.executable, "-c", DRIVER, str(pool)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    stranger = subprocess.Popen(["sleep", "120"])  # alive here, but no process of the run
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        assert drv.stdout is not None and drv.stdin is not None
        kids = [int(x) for x in drv.stdout.readline().split()]
        _write(pool / "other-host.jsonlog", stranger.pid)
        _write(pool / "gone.jsonlog", gone.pid)
        for i, bad in enumerate(['{"process": "-5", "created": 1}', '{"process": "x"}',
                                 "not json", '{"process": 1, "created": "soon"}']):
            (pool / f"bad{i}.jsonlog").write_text(bad + "\n")  # name no writer: left alone
        (pool / "partial.jsonlog").write_text('{"process": 1, "crea')
        sampler = Sampler(pool, interval=0.1, grace_s=1.0, reader=reader)
        result: list[str] = []
        th = threading.Thread(target=lambda: result.append(sampler.run(duration=60)))
        th.start()
        _until(lambda: all(p in sampler.tracked for p in [drv.pid, *kids]))
        _until(lambda: sampler.written >= 9)
        drv.stdin.write("kill 0\n")
        drv.stdin.flush()
        assert drv.stdout.readline().strip() == "ok"
        _until(lambda: kids[0] not in sampler.tracked)
        time.sleep(0.3)
        drv.stdin.write("close\n")
        drv.stdin.flush()
        closed = float(drv.stdout.readline())
        th.join(15)
        assert not th.is_alive()
    finally:
        with contextlib.suppress(OSError):  # the driver kills its children, then ends
            drv.stdin.write("quit\n")  # type: ignore[union-attr]
            drv.stdin.flush()  # type: ignore[union-attr]
        try:
            drv.wait(10)
        finally:
            drv.kill()
            stranger.kill()
            stranger.wait()
            drv.wait()
    assert result == ["no process of the run has held a file of the pool open for 1 s: "
                      "the run is over"]
    recs = _records(pool)
    kinds = [r["proc.kind"] for r in recs]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    for r in recs:  # Academy's record shape, typed
        assert isinstance(r["created"], float) and r["name"] == "academy_tui.procs"
        assert (r["levelname"], r["levelno"], r["source"]) == ("INFO", 20, "procs")
        assert r["process"] == os.getpid() and isinstance(r["message"], str)
    samples = [r for r in recs if r["proc.kind"] == "sample"]
    by_pid = {p: [r for r in samples if r["proc.pid"] == p] for p in [drv.pid, *kids]}
    assert all(len(v) >= 3 for v in by_pid.values()), {p: len(v) for p, v in by_pid.items()}
    assert {r["proc.pid"] for r in samples} == set(by_pid)
    assert by_pid[kids[1]][0]["proc.ppid"] == drv.pid
    assert by_pid[kids[1]][0]["proc.origin"] == f"child of {drv.pid}"
    assert by_pid[drv.pid][0]["proc.origin"] == "wrote driver.jsonlog"
    for key in ("proc.cpu_pct", "proc.rss_bytes", "proc.threads", "proc.status", "proc.cmdline",
                "proc.create_time", "proc.cpu_user_s"):
        assert key in by_pid[drv.pid][-1], key
    assert "sleep" in by_pid[kids[1]][0]["proc.cmdline"]
    (ex,) = [r for r in recs if r["proc.kind"] == "exit"]
    assert ex["proc.pid"] == kids[0]
    unseen = {r["proc.pid"]: r["message"] for r in recs if r["proc.kind"] == "unseen"}
    assert set(unseen) == {stranger.pid, gone.pid}
    assert "descends from no process of the run" in unseen[stranger.pid]
    assert "not alive on this host" in unseen[gone.pid]
    # Nothing sampled after the run's logs closed: the run's end stays its own.
    assert max(r["created"] for r in samples) <= closed
    assert recs[-1]["created"] <= closed and recs[-1]["proc.stopped_at"] > closed


def test_a_finished_run_is_left_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    pool = tmp_path / "logs" / "0b7c86a5-1d36-4bb2-9ad5-2f7a1e0f6a11"
    pool.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    _write(pool / "a.jsonlog", gone.pid, time.time() - 60)
    before = sorted(p.name for p in pool.iterdir())
    reason = Sampler(pool, interval=0.05).run(duration=10)
    assert reason.startswith("no process of the run is alive on this host")
    assert cli(["--home", str(tmp_path), "sample", pool.name, "--interval", "0.05"]) == 1
    err = capsys.readouterr().err
    assert "nothing sampled, nothing written" in err and f"pid {gone.pid} is not alive" in err
    assert sorted(p.name for p in pool.iterdir()) == before
    assert cli(["sample", str(pool), "--interval", "0"]) == 2
    assert "--interval must be > 0" in capsys.readouterr().err


@pytest.mark.skipif(not LINUX, reason="/proc is Linux's")
def test_proc_and_psutil_readers_agree() -> None:
    busy = ("import time\nwhile time.process_time() < 0.3: pass\n"
            "open('/dev/null').read()\nprint('idle', flush=True)\ntime.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "idle\n"
        a, b = ProcReader(), PsutilReader()
        ct = a.create_time(p.pid)
        _until(lambda: a.read(p.pid, ct).status == "sleeping")  # into its sleep
        assert b.create_time(p.pid) == pytest.approx(ct, abs=0.02)
        ra, rb = a.read(p.pid, ct), b.read(p.pid, ct)
        assert (ra.pid, ra.ppid, ra.status, ra.threads, ra.fds) == \
            (rb.pid, rb.ppid, rb.status, rb.threads, rb.fds)
        assert ra.ppid == os.getpid() and ra.status == "sleeping"
        assert ra.cpu_user_s + ra.cpu_system_s >= 0.25  # the busy 0.3 s
        assert ra.cpu_user_s == pytest.approx(rb.cpu_user_s, abs=0.02)
        assert ra.rss == pytest.approx(rb.rss, rel=0.05)
        for k in ("read_bytes", "write_bytes", "read_chars", "write_chars"):
            assert getattr(ra, k) == getattr(rb, k), k
        assert a.describe(p.pid)[1][:2] == b.describe(p.pid)[1][:2] == [sys.executable, "-c"]
        for reader in (a, b):  # another create time: another process (a reused pid)
            with pytest.raises(Gone):
                reader.read(p.pid, ct - 5)
    finally:
        p.kill()
        p.wait()
    for reader in (a, b):
        with pytest.raises(Gone):
            reader.read(p.pid, ct)
