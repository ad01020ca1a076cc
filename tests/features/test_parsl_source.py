"""Parsl's monitoring database joined onto its run (issue 16), on the real Parsl sample
(tests/data/parsl-sample.tar.xz, a copy of shared/samples/parsl: its README gives the
timeline these tests check). Expected values come from the database, read here with
sqlite3, and from the raw .jsonlog lines, read with json."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from features.parsl_startup import STEPS, parsl_startup
from features.run import Run
from features.source_kinds import open_source
from features.sources import SourceError
from features.status import status_of
from tui.cli import main

POOL = "7ea557a4-c126-4292-b558-94a130940b3f"



def epoch(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


def db_rows(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(db) as c:
        return list(c.execute(sql))


def raw(pool: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def joined(sample: Path) -> Run:
    run = Run(sample / "pool" / POOL, sources=[sample / "parsl"])
    run.load()
    return run


def test_every_row_becomes_an_event_at_its_own_time(parsl_sample: Path) -> None:
    db = parsl_sample / "parsl" / "monitoring.db"
    run = joined(parsl_sample)
    ev = run.events()
    rows = run.select("source=parsl")
    # workflow began + completed, 5 status rows, 3 try times, 3 block rows, 4 node rows,
    # 8 resource samples.
    assert len(rows) == 2 + 5 + 3 + 3 + 4 + 8
    created = sorted(float(ev.created[r]) for r in run.select("source=parsl and "
                                                               "name=parsl.monitoring.block"))
    blocks = sorted(epoch(t) for (t,) in db_rows(db, "select timestamp from block"))
    assert created == pytest.approx(blocks, abs=1e-3)
    # The README's timeline, in seconds after the first pool record.
    t0 = min(float(r["created"]) for r in raw(parsl_sample / "pool" / POOL))
    at = {str(ev.column("message")[r]): float(ev.created[r]) - t0 for r in rows}
    for message, want in [("Parsl workflow fib_workflow began", 0.697),
                          ("Parsl block 0 PENDING (job 32312)", 5.721),
                          ("Parsl task 0 running", 9.800),
                          ("Parsl block 0 RUNNING (job 32312)", 10.724),
                          ("Parsl block 0 SCALED_IN (job 32312)", 16.571)]:
        assert at[message] == pytest.approx(want, abs=0.002), message


def test_joins_and_a_filter_across_sources(parsl_sample: Path) -> None:
    run = joined(parsl_sample)
    ev = run.events()
    # Resource samples carry the sampled pid as `process`: the HTEX worker's pool file.
    samples = run.select("source=parsl and name=parsl.monitoring.resource")
    worker_pid = {int(r["process"]) for r in raw(parsl_sample / "pool" / POOL)
                  if r["processName"] == "HTEX-Worker-0"}
    assert {int(ev.ints["process"][r]) for r in samples} == worker_pid == {32359}
    both = run.select("process=32359")
    assert {ev.file_names[int(ev.file[r])].split("-")[0] for r in both} == \
        {"32586b15", "parsl"}
    block0 = run.select("source=parsl and parsl.block=0")
    assert len(block0) == 3 + 3 + 4  # block rows, try times, node rows
    # The pool's own record of the block names the job the database has.
    (job,) = {str(ev.column("parsl.job_id")[r]) for r in block0
              if ev.column("parsl.job_id")[r] is not None}
    assert job == "32312"


def test_the_sources_file_is_not_a_process_and_the_run_stays_finished(
        parsl_sample: Path) -> None:
    run = joined(parsl_sample)
    procs = run.processes()
    assert sorted(procs["end"].tolist()) == ["clean", "clean", "source"]
    state, rule = status_of(run, run.last_write(), now=run.last_write() + 3600)
    assert state == "finished", rule


def test_start_up_broken_into_its_parsl_parts(parsl_sample: Path) -> None:
    """Each step agrees with the database and the pool (50 ms), computed here apart."""
    db = parsl_sample / "parsl" / "monitoring.db"
    recs = raw(parsl_sample / "pool" / POOL)
    launched = next(float(r["created"]) for r in recs
                    if r["msg"].startswith("Launched agent") and "FibonacciLauncher" in
                    r.get("message", ""))
    running = next(float(r["created"]) for r in recs if r["msg"].startswith("Running agent")
                   and r["processName"] == "HTEX-Worker-0")
    first_worker = min(float(r["created"]) for r in recs
                       if r["processName"] == "HTEX-Worker-0")
    (pending,) = [epoch(t) for (t,) in db_rows(
        db, "select timestamp from block where status='PENDING'")]
    registered = min(epoch(t) for (t,) in db_rows(db, "select timestamp from node"))
    (try_running,) = [epoch(t) for (t,) in db_rows(
        db, "select task_try_time_running from try")]
    want = [pending - launched, registered - pending, try_running - registered,
            first_worker - try_running, running - first_worker]
    t = parsl_startup(joined(parsl_sample))
    assert t["agent_id"].tolist() == ["AgentId<4db67cbd>"]  # the generator is no Parsl task
    got = [float(t[s][0]) for s in STEPS]
    assert got == pytest.approx(want, abs=0.05)
    assert float(t["total_s"][0]) == pytest.approx(running - launched, abs=0.05)
    assert got[1] == max(got)  # the block's start is where the time went (2.47 s)


def test_the_report_names_the_parsl_steps(parsl_sample: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pool = parsl_sample / "pool" / POOL
    assert main(["report", str(pool), "--with", str(parsl_sample / "parsl")]) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("AgentId<4db67cbd>")
               and "Parsl task 0" in ln]
    assert "block launch to manager registration 2.47 s" in line
    assert "waiting for a block 0.460 s" in line


def test_bad_sources_are_one_line(parsl_sample: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pool = parsl_sample / "pool" / POOL
    not_db = tmp_path / "monitoring.db"
    not_db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    for bad, why in [(tmp_path / "missing", "no such file"),
                     (not_db, "not a source academy-tui reads")]:
        assert main(["events", str(pool), "--with", str(bad), "--limit", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err, err
    with pytest.raises(SourceError):
        open_source(tmp_path)


def test_a_growing_database_is_read_as_it_grows(parsl_sample: Path, tmp_path: Path) -> None:
    db = tmp_path / "monitoring.db"
    shutil.copy(parsl_sample / "parsl" / "monitoring.db", db)
    run = Run(parsl_sample / "pool" / POOL, sources=[db])
    run.load()
    before = len(run.select("source=parsl"))
    with sqlite3.connect(db) as c:
        c.execute("insert into block values (?, 'htex_local', '1', '40000', "
                  "'2026-12-06 01:08:42.000000', 'PENDING')",
                  ("ff68edc0-39c9-4406-89a3-5898be55fa7d",))
    run.refresh()
    rows = run.select("source=parsl and parsl.block=1")
    assert len(run.select("source=parsl")) == before + 1 and len(rows) == 1
    assert float(run.events().created[rows[0]]) == pytest.approx(
        epoch("2026-12-06 01:08:42"), abs=1e-3)


def test_the_pool_names_its_database(parsl_sample: Path, tmp_path: Path) -> None:
    """A copy of the run whose records name where Parsl ran: the database is joined
    without --with."""
    pool = tmp_path / "logs" / POOL
    shutil.copytree(parsl_sample / "pool" / POOL, pool)
    rundir = tmp_path / "runinfo"
    shutil.copytree(parsl_sample / "parsl", rundir)
    for f in pool.glob("*.jsonlog"):
        f.write_text(f.read_text().replace("/home/user/runinfo", str(rundir)))
    run = Run(pool)
    run.load()
    assert [s.kind for s in run.sources()] == ["parsl"]
    assert any("joined parsl source" in n for n in run.notes)
    assert len(run.select("source=parsl")) == 25


def test_ask_names_the_parsl_steps_with_their_evidence(parsl_sample: Path) -> None:
    from steering.ask import ask

    a = ask(joined(parsl_sample), "why did the first action take so long?", builtin=True)
    assert ("On Parsl, FibonacciLauncher AgentId<4db67cbd> took 4.61 s from its launch to "
            "running: waiting for a block 0.460 s, block launch to manager registration "
            "2.47 s") in a.text
    cited = {c.ref for c in a.valid_citations}
    assert {"ev:parsl-4d:5", "ev:parsl-4d:6"} <= {r[:8] + r[8:] for r in cited} or \
        any(r.startswith("ev:parsl-") for r in cited)
    assert all(n.supported for n in a.numbers)
