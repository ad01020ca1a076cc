"""Parsl's text logs as a source (issue 16: "forgot to turn on monitoring, parsl.log is
more default"), on the real Parsl sample (tests/data/parsl-sample.tar.xz; its README gives
the timeline checked here). Expected values come from the log files and the .jsonlog
lines, read here with plain string operations and json, and from the database with
sqlite3."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from features.parsl_startup import STEPS, parsl_startup, step_columns
from features.run import Run
from features.source_kinds import open_source
from tui.cli import main

POOL = "7ea557a4-c126-4292-b558-94a130940b3f"
T0 = 1796519304.4906838
"""The sample's first pool record (its README's +0)."""
RECORD = re.compile(r"^(\d+\.\d+) \d{4}-")



def writable_copy(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*skip))
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


def records(log: Path) -> list[tuple[float, str]]:
    """(created, first line) of each record of a Parsl log in Parsl's default format."""
    return [(float(m[1]), line) for line in log.read_text().splitlines()
            if (m := RECORD.match(line))]


def at(log: Path, text: str) -> float:
    return next(t for t, line in records(log) if text in line)


def pool_records(sample: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((sample / "pool" / POOL).glob("*.jsonlog")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def with_logs(sample: Path, *extra: Path, discover: bool = True) -> Run:
    run = Run(sample / "pool" / POOL, sources=[*extra, sample / "parsl" / "000"],
              discover=discover)
    run.load()
    return run


def logs_events(run: Run) -> list[dict[str, Any]]:
    ev = run.events()
    return [{**(ev.record(int(r)) or {}), "created": float(ev.created[r])}
            for r in run.select('source="parsl-logs"')]


def test_every_record_becomes_an_event_at_its_own_time(parsl_sample: Path) -> None:
    logs = parsl_sample / "parsl" / "000"
    hx = logs / "htex_local"
    mdir = hx / "block-0" / "a29224de8f5d"
    evs = logs_events(with_logs(parsl_sample))
    by_file: dict[str, list[dict[str, Any]]] = {}
    for e in evs:
        by_file.setdefault(e["parsl.log_file"], []).append(e)
    # The processes the pool does not hold: every record, at the time its line says.
    for rel in ("htex_local/interchange.log", "htex_local/monitoring_zmq_router.log",
                "htex_local/block-0/a29224de8f5d/manager.log",
                "htex_local/block-0/a29224de8f5d/worker_0.log"):
        want = [t for t, _ in records(logs / rel)]
        assert sorted(e["created"] for e in by_file[rel]) == pytest.approx(want, abs=1e-6)
    # parsl.log: the driver's records are in the pool already (same time to the
    # microsecond, logger and line); only those marking a step come again, with keys.
    twins = {(f"{float(r['created']):f}", r["lineno"]) for r in pool_records(parsl_sample)
             if r["name"].startswith("parsl")}
    lines = records(logs / "parsl.log")
    assert len(lines) == 151
    lineno = re.compile(r" parsl[\w.]*:(\d+) ")
    assert sum((line.split(" ", 1)[0], m[1]) in twins for _, line in lines
               if (m := lineno.search(line))) == 151
    driver = by_file["parsl.log"]
    assert all(e.get("parsl.event") for e in driver) and len(driver) == 12
    # The README's timeline, seconds after the first pool record.
    for (event, rel), t_want in {("block launched", "parsl.log"): 5.721,
                               ("manager started", "htex_local/block-0/a29224de8f5d/"
                                                   "manager.log"): 7.072,
                               ("registered", "htex_local/interchange.log"): 8.189,
                               ("worker started", "htex_local/block-0/a29224de8f5d/"
                                                  "worker_0.log"): 9.159,
                               ("received", "htex_local/block-0/a29224de8f5d/"
                                            "worker_0.log"): 9.164}.items():
        (e,) = [e for e in evs if e.get("parsl.event") == event and
                e["parsl.log_file"] == rel]
        assert e["created"] - T0 == pytest.approx(t_want, abs=0.002), event
    (started,) = [e for e in by_file["htex_local/block-0/a29224de8f5d/manager.log"]
                  if e.get("parsl.event") == "manager started"]
    assert started["created"] == records(mdir / "manager.log")[0][0]
    assert "Manager ID: a29224de8f5d" in started["message"]
    # database_manager.log has wall-clock text only: the host's zone (UTC) comes from
    # parsl.log's lines, which have both.
    (dbm,) = [e for e in by_file["database_manager.log"]
              if e["message"] == "Initializing Database Manager process"]
    assert dbm["created"] == pytest.approx(datetime(2026, 12, 6, 1, 8, 28, 209000,
                                                    tzinfo=UTC).timestamp(), abs=1e-6)
    assert at(hx / "interchange.log", "Registered manager") < at(mdir / "worker_0.log",
                                                                  "Worker 0 started")


def test_keys_join_the_logs_onto_the_pool_and_the_database(parsl_sample: Path) -> None:
    run = with_logs(parsl_sample, parsl_sample / "parsl")
    ev = run.events()
    evs = {e.get("parsl.event"): e for e in logs_events(run)}
    assert {k: evs["block launched"].get(k) for k in
            ("parsl.block", "parsl.job_id", "parsl.executor", "process", "levelname")} == \
        {"parsl.block": "0", "parsl.job_id": "32312", "parsl.executor": "htex_local",
         "process": 32158, "levelname": "DEBUG"}
    assert evs["block launched"]["msg"] == \
        "[Scaling executor %s] Launched block %s with job ID %s"
    assert {k: evs["launched"].get(k) for k in ("parsl.task", "parsl.try", "parsl.executor",
                                                "parsl.executor_task")} == \
        {"parsl.task": 0, "parsl.try": 0, "parsl.executor": "htex_local",
         "parsl.executor_task": 1}
    recv = evs["received"]
    assert (recv["parsl.executor_task"], recv["parsl.worker"], recv["parsl.manager"],
            recv["parsl.block"], recv["process"]) == (1, 0, "a29224de8f5d", "0", 32359)
    assert evs["registered"]["parsl.manager"] == "a29224de8f5d"
    # The log's own level: the manager's first connection attempt is an ERROR line.
    (err,) = [e for e in logs_events(run) if e["levelno"] >= 40]
    assert err["message"].startswith("Failed to connect to interchange")
    # One filter across the three: the HTEX worker's pid.
    files = {ev.file_names[int(ev.file[r])].split("-")[0] for r in run.select("process=32359")}
    assert files == {"32586b15", "parsl", "plogs"}
    block0 = run.select('source="parsl-logs" and parsl.block=0')
    # parsl.log's block lines, the interchange's registration, manager.log, worker_0.log
    assert len(block0) == 3 + 1 + 9 + 4
    assert sorted(run.processes()["end"].tolist()) == ["clean", "clean", "source", "source"]


def test_what_a_path_opens(parsl_sample: Path, tmp_path: Path) -> None:
    """The database wins where both are; the run directory, or any of its logs, opens
    the logs; a copy without the database opens the logs from the top too."""
    parsl = parsl_sample / "parsl"
    assert open_source(parsl).kind == "parsl"
    for p in (parsl / "000", parsl / "000" / "parsl.log",
              parsl / "000" / "htex_local" / "block-0" / "a29224de8f5d" / "worker_0.log"):
        s = open_source(p)
        assert (s.kind, s.path) == ("parsl-logs", parsl / "000"), p
    bare = writable_copy(parsl, tmp_path / "runinfo", skip=("monitoring.db",))
    assert (open_source(bare).kind, open_source(bare).path) == ("parsl-logs", bare)


def test_start_up_split_finer_with_the_logs(parsl_sample: Path) -> None:
    """With the database and the logs: each step agrees with both (50 ms) and the steps
    add up to the launch-to-running time."""
    logs, db = parsl_sample / "parsl" / "000", parsl_sample / "parsl" / "monitoring.db"
    mdir = logs / "htex_local" / "block-0" / "a29224de8f5d"
    recs = pool_records(parsl_sample)
    launched = next(float(r["created"]) for r in recs if r["msg"].startswith(
        "Launched agent") and "FibonacciLauncher" in r["message"])
    running = next(float(r["created"]) for r in recs if r["msg"].startswith("Running agent")
                   and r["processName"] == "HTEX-Worker-0")
    first_worker = min(float(r["created"]) for r in recs
                       if r["processName"] == "HTEX-Worker-0")
    with sqlite3.connect(db) as c:
        (pending,) = [datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp() for (t,) in
                      c.execute("select timestamp from block where status='PENDING'")]
        registered = min(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp()
                         for (t,) in c.execute("select timestamp from node"))
        (try_running,) = [datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp()
                          for (t,) in c.execute("select task_try_time_running from try")]
    manager = records(mdir / "manager.log")[0][0]
    worker = at(mdir / "worker_0.log", "Worker 0 started")
    received = at(mdir / "worker_0.log", "Received executor task 1")
    want = {"waiting for a block": pending - launched,
            "block launch to manager start": manager - pending,
            "manager registration": registered - manager,
            "worker start": worker - registered, "task dispatch": received - worker,
            "unpacking the task": try_running - received,
            "the task wrapper": first_worker - try_running,
            "Academy's agent start": running - first_worker}
    t = parsl_startup(with_logs(parsl_sample, parsl_sample / "parsl"))
    assert step_columns(t) == list(want)
    assert {s: float(t[s][0]) for s in want} == pytest.approx(want, abs=0.05)
    assert sum(want.values()) == pytest.approx(float(t["total_s"][0]), abs=1e-6)
    # Where the 2.47 s of "block launch to manager registration" went: 1.35 s for the
    # worker pool to start, 1.12 s for its manager to register.
    assert float(t["block launch to manager start"][0]) == pytest.approx(1.351, abs=0.002)
    assert float(t["unpacking the task"][0]) == pytest.approx(0.636, abs=0.002)


def test_start_up_from_the_logs_alone(parsl_sample: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A copy of the run without monitoring.db: the breakdown from parsl.log,
    interchange.log and the worker's log; the report and `ask` name the steps."""
    rundir = writable_copy(parsl_sample / "parsl", tmp_path / "runinfo",
                           skip=("monitoring.db",))
    logs = rundir / "000"
    mdir = logs / "htex_local" / "block-0" / "a29224de8f5d"
    recs = pool_records(parsl_sample)
    launched = next(float(r["created"]) for r in recs if r["msg"].startswith(
        "Launched agent") and "FibonacciLauncher" in r["message"])
    running = next(float(r["created"]) for r in recs if r["msg"].startswith("Running agent")
                   and r["processName"] == "HTEX-Worker-0")
    first_worker = min(float(r["created"]) for r in recs
                       if r["processName"] == "HTEX-Worker-0")
    block = at(logs / "parsl.log", "Launched block 0 with job ID 32312")
    manager = records(mdir / "manager.log")[0][0]
    registered = at(logs / "htex_local" / "interchange.log", "Registered manager")
    worker = at(mdir / "worker_0.log", "Worker 0 started")
    received = at(mdir / "worker_0.log", "Received executor task 1")
    want = {"waiting for a block": block - launched,
            "block launch to manager start": manager - block,
            "manager registration": registered - manager,
            "worker start": worker - registered, "task dispatch": received - worker,
            "unpacking and the task wrapper": first_worker - received,
            "Academy's agent start": running - first_worker}
    run = Run(parsl_sample / "pool" / POOL, sources=[rundir])
    run.load()
    assert [s.kind for s in run.sources()] == ["parsl-logs"]
    t = parsl_startup(run)
    assert t["agent_id"].tolist() == ["AgentId<4db67cbd>"] and t["task"].tolist() == [0]
    assert step_columns(t) == list(want)
    assert {s: float(t[s][0]) for s in want} == pytest.approx(want, abs=0.05)
    assert float(t["total_s"][0]) == pytest.approx(running - launched, abs=1e-6)
    pool = parsl_sample / "pool" / POOL
    assert main(["report", str(pool), "--with", str(rundir)]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines()
               if ln.startswith("AgentId<4db67cbd>") and "Parsl task 0" in ln]
    assert "block launch to manager start 1.35 s, manager registration 1.12 s, worker " \
        "start 0.970 s, task dispatch 4.9 ms, unpacking and the task wrapper 0.650 s" in line

    from steering.ask import ask

    a = ask(run, "why did the first action take so long?", builtin=True)
    assert "block launch to manager start 1.35 s, manager registration 1.12 s" in a.text
    assert any(c.ref.startswith("ev:plogs-") for c in a.valid_citations)
    assert all(n.supported for n in a.numbers)


def test_the_database_alone_keeps_its_steps(parsl_sample: Path) -> None:
    run = Run(parsl_sample / "pool" / POOL, sources=[parsl_sample / "parsl"])
    run.load()
    assert step_columns(parsl_startup(run)) == list(STEPS)


def test_the_pool_names_its_run_directory(parsl_sample: Path, tmp_path: Path) -> None:
    """Parsl writes its logs whether monitoring is on or not: a run whose records name
    its run directory gets them joined without --with when there is no database; with a
    database, the database only (the logs stay a --with away)."""
    pool = tmp_path / "logs" / POOL
    shutil.copytree(parsl_sample / "pool" / POOL, pool)
    rundir = writable_copy(parsl_sample / "parsl", tmp_path / "runinfo",
                           skip=("monitoring.db",))
    for f in pool.glob("*.jsonlog"):
        f.write_text(f.read_text().replace("/home/user/runinfo", str(rundir)))
    run = Run(pool)
    run.load()
    assert [(s.kind, s.path) for s in run.sources()] == [("parsl-logs", rundir / "000")]
    assert any("joined parsl-logs source" in n for n in run.notes)
    assert len(parsl_startup(run)) == 1
    shutil.copy(parsl_sample / "parsl" / "monitoring.db", rundir)
    run = Run(pool)
    run.load()
    assert [s.kind for s in run.sources()] == ["parsl"]


def test_logs_are_read_as_they_grow(parsl_sample: Path, tmp_path: Path) -> None:
    """Append-only files read from where the last read stopped: a half-written line
    waits for its end; nothing is read twice."""
    rundir = writable_copy(parsl_sample / "parsl" / "000", tmp_path / "000")
    wlog = rundir / "htex_local" / "block-0" / "a29224de8f5d" / "worker_0.log"
    full = wlog.read_bytes()
    cut = full.rindex(b"\n", 0, full.index(b"Received executor task")) + 1
    wlog.write_bytes(full[:cut])
    run = Run(parsl_sample / "pool" / POOL, sources=[rundir], discover=False)
    run.load()
    n = len(run.select('source="parsl-logs"'))
    assert len(run.select('source="parsl-logs" and parsl.event="worker started"')) == 1
    with open(wlog, "ab") as fh:
        fh.write(full[cut:cut + 20])  # a line cut short
    run.refresh()
    assert len(run.select('source="parsl-logs"')) == n
    with open(wlog, "ab") as fh:
        fh.write(full[cut + 20:])
    run.refresh()
    assert len(run.select('source="parsl-logs"')) == n + 3
    assert len(run.select('source="parsl-logs" and parsl.event=received')) == 1
    assert len(run.select('source="parsl-logs" and parsl.event="worker started"')) == 1


def test_wall_clock_logs_are_put_in_the_pool_zone(parsl_sample: Path,
                                                  tmp_path: Path) -> None:
    """Parsl before 2023 wrote wall-clock text without its zone
    (``%(asctime)s.%(msecs)03d %(name)s:%(lineno)d %(processName)s(%(process)d) ...``):
    a parsl.log so written two hours ahead of UTC lines up with the pool through the
    pool's ``Run id is:`` record."""
    src = parsl_sample / "parsl" / "000" / "parsl.log"
    rundir = tmp_path / "000"
    rundir.mkdir()
    out, want = [], []
    rx = re.compile(r"^(\d+\.\d+) \S+ \S+ (\S+)-(\d+) (\S+)-\d+ (\S+) (\S+) ([A-Z]+): (.*)$")
    for line in src.read_text().splitlines():
        m = rx.match(line)
        if m is None:
            out.append(line)
            continue
        t = float(m[1])
        local = datetime.fromtimestamp(t, UTC) + timedelta(hours=2)
        out.append(f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d} {m[5]} "
                   f"{m[2]}({m[3]}) {m[4]} {m[6]} [{m[7]}]  {m[8]}")
        want.append(t)
    (rundir / "parsl.log").write_text("\n".join(out) + "\n")
    os.utime(rundir / "parsl.log", (T0, T0))
    run = Run(parsl_sample / "pool" / POOL, sources=[rundir], discover=False)
    run.load()
    ev = run.events()
    rows = run.select('source="parsl-logs" and parsl.event="block launched"')
    assert len(rows) == 1
    assert float(ev.created[rows[0]]) == pytest.approx(
        next(t for t, line in zip(want, [ln for ln in src.read_text().splitlines()
                                         if rx.match(ln)], strict=True)
             if "Launched block 0" in line), abs=0.001)
    assert len(run.select('source="parsl-logs"')) == 12  # the rest are the pool's twins


def test_a_live_pool_behind_the_logs_gets_nothing_twice(parsl_sample: Path,
                                                        tmp_path: Path) -> None:
    """While the run is live the driver's log can be ahead of the pool read so far: its
    records wait for their pool twins instead of being repeated."""
    pool = writable_copy(parsl_sample / "pool" / POOL, tmp_path / POOL)
    driver = pool / "03d2e587-58ca-468a-a8ce-4521bab79697.jsonlog"
    full = driver.read_bytes().splitlines(keepends=True)
    driver.write_bytes(b"".join(full[:40]))  # up to +5.26 s: the agent's launch
    rundir = writable_copy(parsl_sample / "parsl" / "000", tmp_path / "000")
    run = Run(pool, sources=[rundir], discover=False)
    run.load()
    assert run.live
    early = len(run.select('source="parsl-logs"'))
    # The driver's records after +5.26 s are held: none came without its step key.
    assert len(run.select('source="parsl-logs" and not has:parsl.event and '
                          'parsl.log_file="parsl.log"')) == 0
    with open(driver, "ab") as fh:
        fh.write(b"".join(full[40:]))
    run.refresh()
    run.refresh()
    ev = run.events()
    rows = run.select('source="parsl-logs"')
    assert len(rows) > early
    finished = with_logs(parsl_sample, discover=False)
    assert sorted(str(ev.column("message")[r]) for r in rows) == sorted(
        str(e["message"]) for e in logs_events(finished))


def test_a_log_replaced_by_a_fifo_is_said_unreadable(parsl_sample: Path,
                                                     tmp_path: Path) -> None:
    """A worker's log replaced by a FIFO (opening one to read blocks until something
    writes): the next refresh says it cannot be read and returns; the other logs and
    what was read of this one stay."""
    import threading

    rundir = writable_copy(parsl_sample / "parsl" / "000", tmp_path / "000")
    wlog = rundir / "htex_local" / "block-0" / "a29224de8f5d" / "worker_0.log"
    logs = open_source(rundir)
    run = Run(parsl_sample / "pool" / POOL, sources=[logs], discover=False)
    run.load()
    n = len(run.select('source="parsl-logs"'))
    assert n
    wlog.unlink()
    os.mkfifo(wlog)
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(run.refresh()), daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():
        os.close(os.open(wlog, os.O_WRONLY | os.O_NONBLOCK))  # frees the reader
        pytest.fail("refresh blocked on a FIFO")
    assert "htex_local/block-0/a29224de8f5d/worker_0.log: cannot read (not a regular file)" \
        in logs.notes, logs.notes  # type: ignore[attr-defined]
    assert len(run.select('source="parsl-logs"')) == n
    told = [x for x in run.notes if "worker_0" in x]  # said to the user, once
    assert "parsl-logs: htex_local/block-0/a29224de8f5d/worker_0.log: cannot read " \
        "(not a regular file)" in told, told
    assert not [x for x in told if "NotRegular" in x]  # not the whole source failing
    assert not [x for x in told if "shrank" in x]  # a FIFO has no size to shrink to
    run.refresh()
    assert [x for x in run.notes if "worker_0" in x] == told


def test_a_log_rewritten_shorter_is_read_again_and_said(parsl_sample: Path,
                                                        tmp_path: Path) -> None:
    rundir = writable_copy(parsl_sample / "parsl" / "000", tmp_path / "000")
    wlog = rundir / "htex_local" / "block-0" / "a29224de8f5d" / "worker_0.log"
    full = wlog.read_bytes()
    run = Run(parsl_sample / "pool" / POOL, sources=[rundir], discover=False)
    run.load()
    half = full[:full.rindex(b"\n", 0, len(full) // 2) + 1]
    wlog.write_bytes(half)
    run.refresh()
    rel = "htex_local/block-0/a29224de8f5d/worker_0.log"
    assert f"parsl-logs: {rel}: shrank from {len(full)} to {len(half)} bytes" in run.notes
