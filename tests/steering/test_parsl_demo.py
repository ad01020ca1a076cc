"""The fibonacci demo on a real Parsl HighThroughputExecutor (HTEX), read back from its pool.

One HTEX run (4 iterations x 0.05 s, one pair) is shared by the tests: ~10 s on two cores,
most of it Parsl starting (monitoring router, interchange, worker pool) and stopping. Skipped
when Parsl is not installed (``pip install -e '.[parsl]'``; ``make setup`` installs it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from features.run import Run
from features.status import status_of
from steering.demo import DemoOptions, DemoResult, run_demo
from steering.demo.htex import PARSL_LOGGERS, parsl_missing

MISSING = parsl_missing()
needs_parsl = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING}")
FIBS = [1, 1, 2, 3]
WATCHED = ("", *PARSL_LOGGERS)
"""The root logger and those Parsl's kernel configures."""


def logger_state() -> dict[str, tuple[int, bool, list[logging.Handler]]]:
    return {n: (lg.level, lg.propagate, list(lg.handlers))
            for n in WATCHED for lg in [logging.getLogger(n)]}


def processes_of(home: Path) -> list[str]:
    """Live processes started for a run under ``home`` (they inherit its ACADEMY_HOME)."""
    import psutil  # a Parsl dependency

    out = []
    for p in psutil.process_iter(["pid", "ppid", "status", "cmdline"]):
        if p.pid == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["ppid"] == os.getpid() and "multiprocessing.resource_tracker" in cmd:
            continue  # this process's own, started with its first spawned child; not the run's
        try:
            env = p.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("ACADEMY_HOME") == str(home):
            out.append(f"{p.pid} {cmd[:120]}")
    return out


def wait_gone(home: Path, timeout: float = 20.0) -> list[str]:
    """The run's processes still alive after ``timeout`` (a killed one takes a moment)."""
    deadline = time.monotonic() + timeout
    while (left := processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class ParslRun:
    result: DemoResult
    run: Run
    home: Path
    cwd: Path
    """The current directory during the run (Parsl must write nothing there)."""
    loggers: tuple[Any, Any]
    """``logger_state()`` before and after."""
    new_threads: set[str]
    leftovers: list[str]
    thread_gap_s: float
    """A thread run's launcher: seconds from ``Launched agent`` to ``Running agent``."""


def launcher_gap(run: Run) -> float:
    ag = {r["class"]: r for r in run.agents().records()}
    return float(ag["FibonacciLauncher"]["t_running"] - ag["FibonacciLauncher"]["t_launched"])


@pytest.fixture(scope="module")
def parsl_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParslRun]:
    if MISSING is not None:
        pytest.skip(MISSING)
    home = tmp_path_factory.mktemp("parsl-home").resolve()
    cwd = tmp_path_factory.mktemp("parsl-cwd")
    thread = run_demo(DemoOptions(iterations=1, sleep=0.01, academy_home=home / "thread"))
    assert thread.ok, thread.error
    thread_run = Run(thread.pool_dir)
    thread_run.load()

    import parsl  # noqa: F401  # its import-time NullHandler is not the run's doing

    before, threads = logger_state(), {t.name for t in threading.enumerate()}
    old_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        # parsl_poll_s: the block is submitted at Parsl's first scaling poll after the
        # executor is up; Parsl's default (5 s) would only add idle seconds to the test.
        result = run_demo(DemoOptions(iterations=4, sleep=0.05, executor="parsl",
                                      exchange="http", academy_home=home, step_timeout=120,
                                      parsl_poll_s=0.5))
    finally:
        os.chdir(old_cwd)
    after = logger_state()
    new_threads = {t.name for t in threading.enumerate()} - threads
    leftovers = wait_gone(home)
    run = Run(result.pool_dir)
    run.load()
    yield ParslRun(result, run, home, cwd, (before, after), new_threads, leftovers,
                   launcher_gap(thread_run))


def by_class(run: Run) -> dict[str, dict[str, Any]]:
    return {r["class"]: r for r in run.agents().records()}


def worker_files(run: Run) -> dict[str, dict[str, Any]]:
    return {p["file"]: p for p in run.processes().records()
            if str(p["processName"]).startswith("HTEX-Worker-")}


@needs_parsl
def test_run_finished_ok(parsl_run: ParslRun) -> None:
    result, run = parsl_run.result, parsl_run.run
    assert result.ok, result.error
    assert result.results[0].values == FIBS
    status, rule = status_of(run, run.last_write(), now=run.last_write() + 3600)
    assert status == "finished", rule
    # Every process closed cleanly; Parsl's monitoring.db, joined on, is a source.
    assert {p["end"] for p in run.processes().records()} == {"clean", "source"}


@needs_parsl
def test_records_from_driver_and_htex_worker(parsl_run: ParslRun) -> None:
    procs = parsl_run.run.processes().records()
    assert len({p["pid"] for p in procs}) >= 2
    (driver,) = [p for p in procs if p["processName"] == "MainProcess"]
    workers = worker_files(parsl_run.run)
    assert workers and driver["file"] not in workers
    # Parsl's own records (the kernel, HTEX, the provider) are in the driver's file.
    rows = parsl_run.run.select('name~"^parsl" and message~"Launched block 0"')
    assert len(rows) == 1


@needs_parsl
def test_agents_run_in_an_htex_worker(parsl_run: ParslRun) -> None:
    ag = by_class(parsl_run.run)
    workers = worker_files(parsl_run.run)
    for cls in ("FibonacciLauncher", "GeneratorAgent"):
        assert ag[cls]["file"] in workers, cls  # where its `Running agent` was logged
        assert ag[cls]["pid"] == workers[ag[cls]["file"]]["pid"]
        assert ag[cls]["status"] == "shut down"


@needs_parsl
def test_first_call_waits_for_the_worker(parsl_run: ParslRun) -> None:
    """The first request to the agent (``calc_fibs``: the driver asks the launcher for its
    generator) is queued while the HTEX worker starts: its queue time holds the start-up."""
    run = parsl_run.run
    ag = by_class(run)
    launcher = ag["FibonacciLauncher"]
    acts = run.actions().records()
    first = min(acts, key=lambda a: a["t_start"])
    assert (first["action"], first["agent_class"]) == ("calc_fibs", "FibonacciLauncher")
    # Launched (driver) -> block submitted -> worker process writes -> agent running ->
    # the queued request executes.
    ev = run.events()
    (block_row,) = run.select('name~"^parsl" and message~"Launched block 0"')
    t_block = float(ev.created[block_row])
    (worker,) = [w for w in worker_files(run).values() if w["file"] == launcher["file"]]
    assert launcher["t_launched"] < t_block < worker["t_first"] <= launcher["t_running"]
    assert first["t_sending"] < launcher["t_running"] < first["t_exec_start"]
    assert first["queue_s"] >= launcher["t_running"] - first["t_sending"]
    assert launcher["t_running"] - launcher["t_launched"] > parsl_run.thread_gap_s
    # The generator starts beside the launcher, in the running worker: no such wait.
    gen = ag["GeneratorAgent"]
    nexts = sorted((a for a in acts if a["action"] == "next_item"), key=lambda a: a["t_start"])
    assert len(nexts) == 4 and all(a["status"] == "ok" for a in nexts)
    assert gen["t_running"] < nexts[0]["t_exec_start"]
    assert nexts[0]["queue_s"] < first["queue_s"]


@needs_parsl
def test_the_seed_question_names_the_htex_worker_start_up(parsl_run: ParslRun) -> None:
    """"Where did the time go?" on HTEX (issue 13): the first call's wait is the launcher's
    start-up in a Parsl HTEX worker, named as such with its numbers, not messaging."""
    from features import fmt, render, report

    run = parsl_run.run
    launcher = by_class(run)["FibonacciLauncher"]
    naive = 2 * 0.05 * 4
    tb = run.where_time_went(expected_s=naive)
    waited = tb.seconds["agent_startup"]
    assert waited >= 0.9 * (launcher["t_running"] - launcher["t_launched"])
    assert tb.seconds["queue"] + tb.seconds["reply"] < waited / 5  # real transit: small
    text = render.render_text(report.build(run, expected_s=naive, anomalies=False))
    para = next(ln for ln in text.splitlines() if ln.startswith("The run took"))
    assert f"calls waited {fmt.fmt_s(waited)} for their agents to start" in para
    why = para.split("Of the excess of", 1)[1]
    (su,) = [s for s in tb.startups if s["class"] == "FibonacciLauncher"]
    assert (f"agent start-up {fmt.fmt_s(su['waited_s'])}: FibonacciLauncher "
            f"{su['agent_id']} ran {fmt.fmt_s(su['startup_s'])} after its launch (its "
            "process wrote its first record ") in why
    assert "after the launch), in a Parsl HTEX worker process" in why
    # Messaging is not among the causes named before the rest.
    assert "messaging" not in why.split(". ")[0]


@needs_parsl
def test_parsl_files_beside_the_pool(parsl_run: ParslRun) -> None:
    result = parsl_run.result
    assert result.parsl_dir == result.pool_dir / "parsl"
    assert (result.parsl_dir / "000" / "parsl.log").is_file()
    assert list(parsl_run.cwd.iterdir()) == []  # nothing in the current directory
    with sqlite3.connect(result.parsl_dir / "monitoring.db") as db:
        (workflows,) = db.execute("select count(*) from workflow").fetchone()
        funcs = [r[0] for r in db.execute("select task_func_name from task")]
    assert workflows == 1
    assert funcs == ["_run_agent_on_worker"]  # one Parsl task: the launcher


@needs_parsl
def test_parsl_leaves_nothing_behind(parsl_run: ParslRun) -> None:
    before, after = parsl_run.loggers
    assert after == before  # levels, propagation, handlers of root, parsl, concurrent.futures
    assert parsl_run.new_threads == set()
    assert parsl_run.leftovers == []


@needs_parsl
def test_terminated_run_stops_parsl(tmp_path: Path) -> None:
    """SIGTERM (the app closing on a live demo) while the agents run in the HTEX worker:
    the run is cancelled through the same exits as a failure, and nothing is left running."""
    home = tmp_path.resolve()
    proc = subprocess.Popen(
        [sys.executable, "-m", "steering.demo.workflow", "--executor", "parsl",
         "--iterations", "400", "--sleep", "0.05", "--parsl-poll", "0.5",
         "--academy-home", str(home)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "ACADEMY_HOME"})
    try:
        deadline = time.monotonic() + 120
        while not any("fib step" in f.read_text() for f in home.glob("logs/*/*.jsonlog")):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the generator never ran"
            time.sleep(0.2)
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert wait_gone(home) == []
    (pool,) = home.glob("logs/*")
    assert (pool / "parsl" / "000" / "parsl.log").is_file()
    run = Run(pool)
    run.load()
    assert len(run.msg_rows("DFK cleanup complete")) == 1


def test_parsl_with_the_local_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="local exchange"):
        DemoOptions(executor="parsl", exchange="local")


def test_cli_without_parsl_is_one_line(tmp_path: Path) -> None:
    """Parsl not importable: one line naming the extra, no traceback, no run."""
    code = ("import sys; sys.modules['parsl'] = None\n"
            "from tui.cli import main\n"
            "sys.exit(main(['demo', '--no-tui', '--executor', 'parsl', '--iterations', '1']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False,
                          env={**os.environ, "ACADEMY_HOME": str(tmp_path)})
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install 'academy-tui[parsl]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists()


@needs_parsl
def test_parsl_monitoring_is_joined_and_breaks_down_the_start_up(parsl_run: ParslRun) -> None:
    """The run's records name Parsl's run directory: its monitoring.db is joined without
    --with, and the launcher's start-up splits into steps that agree with the database
    (read here with sqlite3) to 50 ms; `ask` names them."""
    from datetime import UTC, datetime

    from features.parsl_startup import STEPS, parsl_startup
    from steering.ask import ask

    def epoch(s: str) -> float:
        return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()

    run = parsl_run.run
    assert [s.kind for s in run.sources()] == ["parsl"]
    assert len(run.select("source=parsl and name=parsl.monitoring.block")) >= 2
    db = parsl_run.result.parsl_dir / "monitoring.db"
    with sqlite3.connect(db) as c:
        pending = min(epoch(t) for (t,) in c.execute(
            "select timestamp from block where status='PENDING'"))
        registered = min(epoch(t) for (t,) in c.execute("select timestamp from node"))
        (running,) = [epoch(t) for (t,) in c.execute("select task_try_time_running from try")]
    launcher = by_class(run)["FibonacciLauncher"]
    t = parsl_startup(run)
    assert t["class"].tolist() == ["FibonacciLauncher"]
    steps = dict(zip(STEPS, (float(t[s][0]) for s in STEPS), strict=True))
    start = max(float(launcher["t_launched"]), pending)
    assert steps["waiting for a block"] == pytest.approx(
        max(pending - float(launcher["t_launched"]), 0.0), abs=0.05)
    assert steps["block launch to manager registration"] == pytest.approx(
        registered - start, abs=0.05)
    assert steps["task dispatch and worker start"] == pytest.approx(running - registered,
                                                                    abs=0.05)
    assert float(t["total_s"][0]) == pytest.approx(
        float(launcher["t_running"] - launcher["t_launched"]), abs=0.05)
    a = ask(run, "Why did the first action take so long?", builtin=True)
    assert "On Parsl, FibonacciLauncher" in a.text and "block launch to manager " \
        "registration" in a.text
    assert any(c.ref.startswith("ev:parsl-") for c in a.valid_citations)


@needs_parsl
def test_parsl_text_logs_split_the_start_up_finer(parsl_run: ParslRun) -> None:
    """The run's Parsl logs joined beside its database (``--with parsl/000``), then alone
    (``discover=False``): the launcher's steps agree with the log lines, read here with
    string operations, to 50 ms, and add up to its launch-to-running time."""
    import itertools
    import re

    from features.parsl_startup import parsl_startup, step_columns

    logs = parsl_run.result.parsl_dir / "000"

    def lines(p: Path) -> list[tuple[float, str]]:
        return [(float(m[1]), ln) for ln in p.read_text().splitlines()
                if (m := re.match(r"^(\d+\.\d+) \d{4}-", ln))]

    def at(p: Path, text: str) -> float:
        return next(t for t, ln in lines(p) if text in ln)

    (xid,) = {m[1] for _, ln in lines(logs / "parsl.log")
              if (m := re.search(r"Parsl task \d+ try 0 launched on executor \S+ with "
                                 r"executor id (\d+)", ln))}
    (wlog,) = [p for p in logs.glob("*/block-*/*/worker_*.log")
               if f"Received executor task {xid}" in p.read_text()]
    block = re.match(r"block-(\d+)", wlog.parent.parent.name)[1]  # type: ignore[index]
    marks = {"block": at(logs / "parsl.log", f"Launched block {block} with job ID"),
             "manager": lines(wlog.parent / "manager.log")[0][0],
             "registered": at(wlog.parent.parent.parent / "interchange.log",
                              f"Registered manager b'{wlog.parent.name}'"),
             "worker": at(wlog, "started"),
             "received": at(wlog, f"Received executor task {xid}")}
    launcher = by_class(parsl_run.run)["FibonacciLauncher"]
    launched, running = float(launcher["t_launched"]), float(launcher["t_running"])
    worker_first = worker_files(parsl_run.run)[launcher["file"]]["t_first"]

    both = Run(parsl_run.result.pool_dir, sources=[logs])
    both.load()
    assert sorted(s.kind for s in both.sources()) == ["parsl", "parsl-logs"]
    t = parsl_startup(both)
    assert t["class"].tolist() == ["FibonacciLauncher"]
    got = {s: float(t[s][0]) for s in step_columns(t)}
    assert list(got) == ["waiting for a block", "block launch to manager start",
                         "manager registration", "worker start", "task dispatch",
                         "unpacking the task", "the task wrapper", "Academy's agent start"]
    start = max(launched, marks["block"])
    assert got["block launch to manager start"] == pytest.approx(marks["manager"] - start,
                                                                 abs=0.05)
    assert got["worker start"] == pytest.approx(max(marks["worker"], marks["registered"]) -
                                                marks["registered"], abs=0.05)
    assert got["task dispatch"] == pytest.approx(
        marks["received"] - max(marks["worker"], marks["registered"]), abs=0.05)
    assert sum(got.values()) == pytest.approx(running - launched, abs=1e-6)

    alone = Run(parsl_run.result.pool_dir, sources=[logs], discover=False)
    alone.load()
    assert [s.kind for s in alone.sources()] == ["parsl-logs"]
    t = parsl_startup(alone)
    got = {s: float(t[s][0]) for s in step_columns(t)}
    bounds = [launched, *marks.values(), worker_first, running]
    for i in range(1, len(bounds)):  # a mark before the one before counts from that one
        bounds[i] = max(bounds[i], bounds[i - 1])
    want = dict(zip(["waiting for a block", "block launch to manager start",
                     "manager registration", "worker start", "task dispatch",
                     "unpacking and the task wrapper", "Academy's agent start"],
                    (b - a for a, b in itertools.pairwise(bounds)), strict=True))
    assert got == pytest.approx(want, abs=0.05)
