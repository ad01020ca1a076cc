"""The core on runs that the tests produce with real academy-py: the report's numbers
against the sleeps the workflow was told to do, and live tailing while it runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from features.run import Run
from steering.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_thread_run_phases_match_the_injected_sleeps(tmp_path: Path) -> None:
    n, sleep, k, factor = 10, 0.1, 4, 5.0
    res = run_demo(DemoOptions(iterations=n, sleep=sleep, slow_at=k, slow_factor=factor,
                               academy_home=tmp_path))
    run = Run(res.pool_dir)
    run.load()
    acts = run.actions()
    nxt = acts.where(acts["action"] == "next_item")
    assert len(nxt) >= n and set(nxt["status"]) == {"ok"}
    tb = run.where_time_went(expected_s=2 * sleep * n)
    want_exec = sleep * (n - 1) + sleep * factor
    # Tolerance: 20% of the expected time plus 50 ms for the event loop and logging.
    assert tb.seconds["execution"] == pytest.approx(want_exec, abs=0.2 * want_exec + 0.05)
    assert tb.seconds["caller"] == pytest.approx(sleep * n, abs=0.2 * sleep * n + 0.05)
    assert sum(tb.seconds.values()) == pytest.approx(tb.wall_s, abs=1e-6)
    slowest = nxt.sort("exec_s", descending=True).row(0)
    assert slowest["exec_s"] == pytest.approx(sleep * factor, abs=0.05)
    # The slow call is the k-th: its agent-side user record says iteration k.
    ev = run.events()
    it = ev.column("fib.iteration")
    agents = run.event_agents()
    t0, t1 = slowest["t_exec_start"], slowest["t_exec_end"]
    inside = [int(it[r]) for r in range(ev.n) if it[r] is not None and
              t0 <= ev.created[r] <= t1 and agents[r] == slowest["agent_id"]]
    assert inside == [k]


def test_process_http_run_joins_across_files(tmp_path: Path) -> None:
    res = run_demo(DemoOptions(iterations=6, sleep=0.05, executor="process", exchange="http",
                               academy_home=tmp_path))
    run = Run(res.pool_dir)
    run.load()
    acts = run.actions()
    assert len(run.store.files) >= 2
    both = acts.where((acts["caller_file"] != None) & (acts["agent_file"] != None))  # noqa: E711
    assert len(both) == len(acts)
    assert (both["caller_file"] != both["agent_file"]).all()
    ag = run.agents()
    worker_files = set(ag["file"])
    assert len(worker_files) == 1 and worker_files.isdisjoint(set(acts["caller_file"]))
    assert (acts["queue_s"] >= 0).all() and (acts["reply_s"] >= 0).all()
    procs = run.processes()
    assert set(procs["end"]) == {"clean"}


def _workflow(home: Path, iterations: int, sleep: float, wait_s: float,
              written: Callable[[Path], bool]) -> tuple[subprocess.Popen[bytes], Path, float]:
    """The demo workflow (process pool, HTTP exchange) started writing its pool under
    ``home``; returns it once ``written(its logs directory)``, with its pool and the
    deadline (``wait_s`` from now) for the rest of the test."""
    cmd = [sys.executable, "-m", "steering.demo.workflow", "--iterations", str(iterations),
           "--sleep", str(sleep), "--executor", "process", "--exchange", "http",
           "--pairs", "2", "--academy-home", str(home)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    logs = home / "logs"
    deadline = time.time() + wait_s
    while time.time() < deadline and not (logs.exists() and written(logs)):
        time.sleep(0.01)
    return proc, next(logs.iterdir()), deadline


def test_live_tail_of_a_running_workflow_loses_and_doubles_nothing(tmp_path: Path) -> None:
    proc, pool, deadline = _workflow(tmp_path, 25, 0.03, 60, lambda logs: any(logs.iterdir()))
    live = Run(pool)
    live.refresh()
    polls = 0
    seen_growth = []
    while proc.poll() is None and time.time() < deadline:
        live.refresh()
        seen_growth.append(live.events().n)
        polls += 1
        time.sleep(0.005)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    live.refresh()
    live.reader.finish()
    fresh = Run(pool)
    fresh.load()
    a, b = live.events(), fresh.events()
    assert polls > 5 and len(set(seen_growth)) > 3  # it really read while the run wrote
    assert a.n == b.n
    assert live.store.stats.bad_lines == 0

    def keys(ev):  # type: ignore[no-untyped-def]
        return sorted(zip([ev.file_names[f] for f in ev.file], ev.line.tolist(), strict=True))

    ka = keys(a)
    assert ka == keys(b)
    assert len(set(ka)) == len(ka)
    assert np.array_equal(np.sort(a.created), np.sort(b.created))


def test_a_running_workflow_begun_from_its_ends_then_tailed_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    """The app's way into a live run: a first look (the end of the files written last,
    stored ahead of the rest of them) while the workflow writes, the load, then the live
    tail: every record once, at its line, as a fresh read of the finished run has it."""
    proc, pool, deadline = _workflow(  # until a file is past a head and an end (2 x 64 KB)
        tmp_path, 400, 0.01, 120,
        lambda logs: any(f.stat().st_size > 192 * 1024 for f in logs.glob("*/*.jsonlog")))
    live = Run(pool, cache=False)
    assert live.begin() > 0
    assert any(t.ahead is not None for t in live.reader.tails.values())
    assert proc.poll() is None  # begun while it writes
    live.load()
    while proc.poll() is None and time.time() < deadline:
        live.refresh()
        time.sleep(0.005)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    live.refresh()
    live.reader.finish()
    assert all(t.ahead is None for t in live.reader.tails.values())
    fresh = Run(pool, cache=False)
    fresh.load()
    a, b = live.events(), fresh.events()
    assert a.n == b.n and live.store.stats.bad_lines == 0

    def keys(ev):  # type: ignore[no-untyped-def]
        return sorted(zip([ev.file_names[f] for f in ev.file], ev.line.tolist(),
                          ev.offset.tolist(), ev.created.tolist(), strict=True))

    assert keys(a) == keys(b)
