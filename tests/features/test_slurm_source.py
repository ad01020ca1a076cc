"""Slurm's ``sacct --json`` and ``squeue --json`` output joined onto a run (issue 16).

The fixtures follow Slurm's own JSON writers, read in SchedMD/slurm's
``src/plugins/data_parser/*/parsers.c`` (``PARSER_ARRAY(JOB)``, ``STEP``, ``JOB_INFO``,
``PROCESS_EXIT_CODE_VERBOSE``, ``UINT64_NO_VAL_STRUCT``):

- :func:`sacct_old`: data_parser v0.0.39 (Slurm 23.02), the same shape as 22.05's
  OpenAPI dbv0.0.38: plain integer times, ``state.current`` a string, ``exit_code``
  ``{"status": "SUCCESS", "return_code": 0}`` (a signal as ``{"signal_id", "name"}``), a
  step's id ``{"job_id", "id": "batch", "name"}``.
- :func:`sacct_new`: data_parser v0.0.41 (Slurm 24.05): ``state.current`` a list,
  ``exit_code`` ``{"status": [...], "return_code": {"set", "infinite", "number"},
  "signal": {"id": {...}, "name"}}``, steps' times wrapped as ``{"set", "infinite",
  "number"}``, a step's id ``"N.batch"``, ``time.limit`` wrapped (job times are plain
  TIMESTAMPs in v0.0.41's ``JOB``).
- :func:`squeue_new`: data_parser v0.0.41 ``JOB_INFO``: ``job_state`` a list,
  ``submit_time``/``eligible_time``/``start_time``/``end_time`` wrapped, ``last_update``.
- ``tests/data/slurm-22.05/``: real output of Slurm 22.05.8 (Debian bookworm's
  ``slurm-wlm``, single node on 127.0.0.1, slurmdbd on MariaDB), captured with
  ``squeue --json`` at 06:51:07 UTC and ``sacct --json -j 4,5,6,7`` after; ``sacct -P`` said
  then: ``4|block-a|COMPLETED|0:0`` submitted/started 06:51:04, ended 06:51:12;
  ``5|fails|FAILED|3:0`` all at 06:51:04; ``6|wide|COMPLETED`` submitted 06:51:05,
  started 06:51:13, ended 06:51:14; ``7|later|CANCELLED by 0`` submitted 06:51:05,
  eligible 07:51:05 (``--begin``), never started, ended 06:51:17 (2026-12-06).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from features.run import Run
from features.slurm import SlurmJSON, fetch, slurm_jobs, slurm_queue
from features.slurm_json import load, translate
from features.source_kinds import open_source
from tui.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
T = 1795839468
"""A whole second inside the thread sample (its records run 1795839467.18 .. 470.44)."""


def wrap(n: int | None) -> dict[str, Any]:
    return {"set": n is not None, "infinite": False, "number": n or 0}


JOBS = [  # id, name, state, (submit, eligible, start, end) after T, exit, signal, nodes
    (500001, "parsl.block", "COMPLETED", (0, 0, 1, 2), 0, None, "nid001"),
    (500002, "fails", "FAILED", (0, 0, 1, 2), 2, None, "nid002"),
    (500003, "too-long", "TIMEOUT", (0, 0, 0, 2), None, ("TERM", 15), "nid003"),
    (500004, "never", "CANCELLED", (0, 3600, None, 1), 0, None, "None assigned"),
]


def _at(dt: int | None) -> int:
    return 0 if dt is None else T + dt


def sacct_old() -> dict[str, Any]:
    jobs = []
    for jid, name, st, (s, e, b, f), code, sig, nodes in JOBS:
        ec: dict[str, Any] = {"status": "SIGNALED", "signal": {"signal_id": sig[1],
                                                               "name": sig[0]}} if sig \
            else {"status": "SUCCESS" if code == 0 else "ERROR", "return_code": code}
        steps = [] if b is None else [{
            "step": {"job_id": jid, "het": {"component": None}, "id": "batch", "name": "batch"},
            "time": {"elapsed": f - b, "end": _at(f), "start": _at(b), "suspended": 0},
            "state": st, "exit_code": ec, "nodes": {"list": [nodes], "count": 1,
                                                    "range": nodes}}]
        jobs.append({"account": "m4321", "job_id": jid, "name": name, "nodes": nodes,
                     "partition": "debug", "user": "alice", "exit_code": ec,
                     "state": {"current": st, "reason": "None"}, "steps": steps,
                     "time": {"elapsed": 0 if b is None else f - b, "eligible": _at(e),
                              "end": _at(f), "start": _at(b), "submission": _at(s),
                              "suspended": 0, "limit": 60}})
    return {"meta": {"plugin": {"type": "openapi/dbv0.0.39", "name": "Slurm OpenAPI DB"},
                     "Slurm": {"version": {"major": 23, "micro": 0, "minor": 2},
                               "release": "23.02.0"}}, "errors": [], "jobs": jobs}


def sacct_new() -> dict[str, Any]:
    jobs = []
    for jid, name, st, (s, e, b, f), code, sig, nodes in JOBS:
        ec = {"status": ["SIGNALED" if sig else "SUCCESS" if code == 0 else "ERROR"],
              "return_code": wrap(None if sig else code),
              "signal": {"id": wrap(sig[1] if sig else None), "name": sig[0] if sig else ""}}
        steps = [] if b is None else [{
            "step": {"id": f"{jid}.batch", "name": "batch"}, "state": [st], "exit_code": ec,
            "time": {"elapsed": f - b, "end": wrap(_at(f)), "start": wrap(_at(b))},
            "nodes": {"count": 1, "range": nodes, "list": [nodes]}}]
        jobs.append({"account": "m4321", "job_id": jid, "name": name, "nodes": nodes,
                     "partition": "debug", "user": "alice", "exit_code": ec,
                     "state": {"current": [st], "reason": "None"}, "steps": steps,
                     "time": {"elapsed": 0 if b is None else f - b, "eligible": _at(e),
                              "end": _at(f), "start": _at(b), "submission": _at(s),
                              "limit": wrap(60), "planned": wrap(b)}})
    return {"jobs": jobs, "meta": {"plugin": {"type": "openapi/slurmdbd",
                                              "data_parser": "data_parser/v0.0.41"},
                                   "slurm": {"release": "24.05.4", "cluster": "c"}},
            "errors": [], "warnings": []}


def squeue_new(last_update: int = T + 2) -> dict[str, Any]:
    def job(jid: int, st: str, times: tuple[int, int, int, int], code: int = 0
            ) -> dict[str, Any]:
        return {"account": "m4321", "job_id": jid, "name": f"q{jid}", "job_state": [st],
                "partition": "debug", "user_name": "alice", "nodes": "nid009",
                "submit_time": wrap(T + times[0]), "eligible_time": wrap(T + times[1]),
                "start_time": wrap(T + times[2]), "end_time": wrap(T + times[3]),
                "exit_code": {"status": ["SUCCESS" if code == 0 else "ERROR"],
                              "return_code": wrap(code),
                              "signal": {"id": wrap(None), "name": ""}}}

    return {"jobs": [job(600001, "RUNNING", (0, 0, 1, 3601)),      # end: its time limit
                     job(600002, "PENDING", (0, 0, 600, 4200)),    # start: expected
                     job(600003, "PENDING", (0, 3600, 3600, 7200)),  # --begin in an hour
                     job(600004, "COMPLETED", (0, 0, 1, 2)),
                     job(600005, "FAILED", (0, 0, 1, 2), code=1)],
            "last_backfill": wrap(T), "last_update": wrap(last_update),
            "meta": {"plugin": {"data_parser": "data_parser/v0.0.41"}}, "errors": [],
            "warnings": []}


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def events(run: Run) -> list[tuple[float, str, str, dict[str, Any]]]:
    """(seconds after T, message, level, slurm keys) of the run's Slurm events."""
    ev = run.events()
    rows = run.select("source=slurm")
    out = []
    for r, rec in zip(rows.tolist(), run.events_table(rows).records(), strict=True):
        keys = {k: v for k, v in rec.items() if (k.startswith(("slurm.", "parsl."))
                                                and v is not None)}
        out.append((float(ev.created[r]) - T, str(rec["message"]), str(rec["levelname"]),
                    keys))
    return out


def test_every_job_becomes_its_events(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = Run(sample("thread"), sources=[write(tmp_path / "sacct.json", sacct_old())])
    run.load()
    got = {(k["slurm.job_id"], k.get("slurm.step"), k["slurm.event"]): (t, m, lv, k)
           for t, m, lv, k in events(run)}
    assert len(got) == len(events(run)) == 14 + 6  # jobs, steps; no event twice
    want = {
        (500001, None, "submitted"): (0, "Slurm job 500001 submitted to partition debug "
                                         "(parsl.block)", "INFO"),
        (500001, None, "eligible"): (0, "Slurm job 500001 eligible to start", "INFO"),
        (500001, None, "started"): (1, "Slurm job 500001 started on nid001 after 1.00 s in "
                                       "the queue", "INFO"),
        (500001, None, "ended"): (2, "Slurm job 500001 ended COMPLETED (exit code 0) after "
                                     "running 1.00 s", "INFO"),
        (500001, "500001.batch", "started"): (1, "Slurm step 500001.batch started on nid001",
                                              "INFO"),
        (500001, "500001.batch", "ended"): (2, "Slurm step 500001.batch ended COMPLETED "
                                               "(exit code 0)", "INFO"),
        (500002, None, "ended"): (2, "Slurm job 500002 ended FAILED (exit code 2) after "
                                     "running 1.00 s", "ERROR"),
        (500003, None, "started"): (0, "Slurm job 500003 started on nid003 after 0.0 ms in "
                                       "the queue", "INFO"),
        (500003, None, "ended"): (2, "Slurm job 500003 ended TIMEOUT (exit code signal TERM) "
                                     "after running 2.00 s", "ERROR"),
        (500003, "500003.batch", "ended"): (2, "Slurm step 500003.batch ended TIMEOUT "
                                               "(exit code signal TERM)", "ERROR"),
        (500004, None, "submitted"): (0, "Slurm job 500004 submitted to partition debug "
                                         "(never)", "INFO"),
        # cancelled while pending: its --begin an hour on was never reached, it never ran
        (500004, None, "ended"): (1, "Slurm job 500004 ended CANCELLED (exit code 0) before "
                                     "it started", "WARNING"),
    }
    for key, (dt, message, level) in want.items():
        assert got[key][:3] == (pytest.approx(dt), message, level), key
    assert {k[2] for k in got if k[0] == 500004} == {"submitted", "ended"}
    started = got[(500001, None, "started")][3]
    assert started["slurm.queued_s"] == 1.0 and started["slurm.state"] == "RUNNING"
    assert started["slurm.nodes"] == "nid001" and started["slurm.partition"] == "debug"
    assert started["slurm.account"] == "m4321" and started["slurm.user"] == "alice"
    assert started["parsl.job_id"] == started["slurm.job_id"] == 500001  # typed like parsl's
    ended = got[(500002, None, "ended")][3]
    assert (ended["slurm.state"], ended["slurm.exit_code"], ended["slurm.run_s"]) == \
        ("FAILED", 2, 1.0)
    assert got[(500003, None, "ended")][3]["slurm.signal"] == "TERM"
    # The run's own records are untouched: a source file is no process of the run.
    assert sorted(run.processes()["end"].tolist()).count("source") == 1
    assert len(run.select("levelno>=40 and source=slurm")) == 2 + 2  # jobs and steps


def test_plain_and_wrapped_numbers_say_the_same(tmp_path: Path) -> None:
    old = translate(load(write(tmp_path / "old.json", sacct_old())))
    new = translate(load(write(tmp_path / "new.json", sacct_new())))
    assert len(old) == 20 and old == new


def test_squeue_reports_what_happened_not_what_slurm_expects(
        sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = Run(sample("thread"), sources=[write(tmp_path / "squeue.json", squeue_new())])
    run.load()
    got = {(k["slurm.job_id"], k["slurm.event"]): (t, lv, k) for t, _, lv, k in events(run)}
    assert sorted(got) == [
        (600001, "eligible"), (600001, "started"), (600001, "submitted"),
        (600002, "eligible"), (600002, "submitted"),
        (600003, "submitted"),
        (600004, "eligible"), (600004, "ended"), (600004, "started"), (600004, "submitted"),
        (600005, "eligible"), (600005, "ended"), (600005, "started"), (600005, "submitted")]
    assert got[(600001, "started")][0] == pytest.approx(1)
    assert got[(600005, "ended")][1:] == ("ERROR", got[(600005, "ended")][2])
    assert got[(600005, "ended")][2]["slurm.exit_code"] == 1
    assert {k["slurm.command"] for _, _, _, k in events(run)} == {"squeue"}


def test_real_slurm_22_05_output(tmp_path: Path) -> None:
    """The captured files, against what ``sacct -P`` said of the same jobs."""
    base = 1796539864  # 2026-12-06T06:51:04Z
    sq = tmp_path / "squeue.json"
    shutil.copy(DATA / "slurm-22.05" / "squeue.json", sq)
    os.utime(sq, (base + 3, base + 3))  # written when squeue ran: its file has no time
    src = open_source(DATA / "slurm-22.05" / "sacct.json")
    assert isinstance(src, SlurmJSON)

    def got(s: SlurmJSON) -> dict[tuple[Any, ...], tuple[float, str | None, int]]:
        return {(e["slurm.job_id"], e.get("slurm.step"), e["slurm.event"]):
                (e["created"] - base, e.get("slurm.state"), e["levelno"])
                for e in s.new_events(None)}

    acct = got(src)
    assert acct[("4", None, "ended")] == (8, "COMPLETED", 20)
    assert acct[("4", "4.batch", "started")] == (0, "RUNNING", 20)
    assert acct[("5", None, "ended")] == (0, "FAILED", 40)
    assert acct[("6", None, "started")] == (9, "RUNNING", 20)  # 8 s waiting for 2 CPUs
    assert acct[("7", None, "ended")] == (13, "CANCELLED", 30)
    assert not {k for k in acct if k[0] == "7"} - {("7", None, "submitted"),
                                                   ("7", None, "ended")}
    queue = got(SlurmJSON(sq))
    assert ("4", None, "started") in queue and ("4", None, "ended") not in queue  # running
    assert not {k for k in queue if k[0] == "6"} - {("6", None, "submitted"),
                                                    ("6", None, "eligible")}
    assert {k for k in queue if k[0] == "7"} == {("7", None, "submitted")}  # --begin: later
    ended = [e for e in SlurmJSON(sq).new_events(None)
             if e["slurm.job_id"] in ("3", "5") and e["slurm.event"] == "ended"]
    assert [e["slurm.exit_code"] for e in ended] == [3, 3]  # 768, the raw wait status


def test_joined_to_parsls_block_by_job_id(tmp_path: Path, parsl_sample: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The Parsl sample's block 0 was job 32312: a sacct file saying it queued 4 s before
    Slurm started it, about 1 s before Parsl saw the block running."""
    sample = parsl_sample
    pool = sample / "pool" / "7ea557a4-c126-4292-b558-94a130940b3f"
    doc = sacct_old()
    job = doc["jobs"][0]
    job["job_id"], job["steps"] = 32312, []
    job["time"].update(submission=1796519310, eligible=1796519310, start=1796519314,
                       end=1796519321)
    doc["jobs"] = [job]
    acct = write(tmp_path / "sacct.json", doc)
    run = Run(pool, sources=[sample / "parsl", acct])
    run.load()
    ev = run.events()
    both = run.select("parsl.job_id=32312")
    assert {str(ev.column("source")[r]) for r in both} == {"parsl", "slurm"}
    block_running = next(float(ev.created[r]) for r in both
                         if ev.column("message")[r] == "Parsl block 0 RUNNING (job 32312)")
    assert block_running > 1796519314  # Slurm started the job before Parsl saw its block
    assert slurm_queue(run) == {"32312": (1796519310.0, 1796519314.0)}
    (j,) = slurm_jobs(run)
    assert (j["block"], j["state"], j["ended"]) == ("0", "COMPLETED", 1796519321.0)
    assert main(["report", str(pool), "--with", str(sample / "parsl"), "--with",
                 str(acct)]) == 0
    out = capsys.readouterr().out
    assert "job 32312 (parsl.block 0): queued in Slurm for 4.00 s, ran 7.00 s, COMPLETED" \
        in out.splitlines()


def test_report_names_hours_in_the_queue(sample, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    doc = sacct_old()
    job = doc["jobs"][0]
    job["job_id"], job["steps"] = 123456, []
    job["time"].update(submission=T - 43140, eligible=T - 43140, start=T, end=T + 7380)
    doc["jobs"] = [job]
    acct = write(tmp_path / "sacct.json", doc)
    assert slurm_queue(Run(sample("thread"))) == {}
    assert main(["report", str(sample("thread")), "--with", str(acct)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "job 123456: queued in Slurm for 11 h 59 min, ran 2 h 3 min, COMPLETED" in lines


def test_a_garbled_file_is_one_line(sample, tmp_path: Path,  # type: ignore[no-untyped-def]
                                    capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "sacct.json"
    cut.write_text(json.dumps(sacct_old(), indent=1)[:700])
    noise = tmp_path / "noise.json"
    noise.write_bytes(b"\x00\xffnot json at all\n" * 40)
    nameless = write(tmp_path / "nameless.json", {"jobs": [{"id": 1}],
                                                   "meta": {"slurm": {"release": "24.05"}}})
    for bad, why in [(cut, "not complete JSON"), (noise, "not a source academy-tui reads"),
                     (nameless, "without a `job_id`")]:
        assert main(["events", str(sample("thread")), "--with", str(bad), "--limit",
                     "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err and "Traceback" not in err, err


def test_a_rewritten_file_is_read_again_without_duplicates(
        sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "jobs.json"
    first = squeue_new()
    first["jobs"] = first["jobs"][:1]  # 600001, running
    write(path, first)
    run = Run(sample("thread"), sources=[path])
    run.load()
    assert [k["slurm.event"] for _, _, _, k in events(run)] == \
        ["submitted", "eligible", "started"]
    path.write_text(json.dumps(first)[:50])  # sacct run again: caught mid-write
    run.refresh()
    run.refresh()
    notes = [n for n in run.notes if "not complete JSON" in n]
    assert len(notes) == 1 and notes[0].startswith("slurm ")
    later = sacct_new()  # the user ran sacct once the job was done
    later["jobs"] = [later["jobs"][0]]
    later["jobs"][0]["job_id"] = 600001
    later["jobs"][0]["time"].update(submission=T, eligible=T, start=T + 1, end=T + 2)
    write(path, later)
    run.refresh()
    got = [(k["slurm.event"], k.get("slurm.step")) for _, _, _, k in events(run)]
    assert got == [("submitted", None), ("eligible", None), ("started", None),
                   ("started", "500001.batch"), ("ended", None), ("ended", "500001.batch")]
    os.utime(path, (time.time() + 5, time.time() + 5))  # touched, the same jobs
    run.refresh()
    assert len(events(run)) == 6


def test_fetch_runs_sacct_only_where_it_is(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert fetch(["32312"]) is None
    with pytest.raises(ValueError, match="not a Slurm job id"):
        fetch(["--help"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sacct"  # Slurm's client stands in for itself at the process boundary
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "argv"}\n/bin/cat {DATA}/slurm-22.05/'
                    "sacct.json\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = fetch([4, "5", "6_1"])
    assert out is not None and json.loads(out)["jobs"][0]["job_id"] == 4
    assert (tmp_path / "argv").read_text().split() == ["--json", "-j", "4,5,6_1"]
    fake.write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' "
                    ">&2\nexit 1\n")
    assert fetch([4]) is None


def _live_slurm() -> str | None:
    """Why a real Slurm cannot be used here, or None when one answers (see
    slurm_single_node.sh beside this file)."""
    if not all(shutil.which(c) for c in ("sbatch", "sacct", "scontrol")):
        return "no Slurm commands on the PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True,
                              timeout=10, check=False)
        acct = subprocess.run(["sacct", "--json", "-j", "1"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Slurm does not answer: {exc}"
    if "UP" not in ping.stdout:
        return "no slurmctld answers `scontrol ping`"
    if acct.returncode != 0:
        return f"sacct fails: {acct.stderr.strip()[:80]}"
    return None


def test_a_real_slurm_job(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    why = _live_slurm()
    if why is not None:
        pytest.skip(why)
    jid = subprocess.run(["sbatch", "--parsable", "-J", "academy-tui-test", "-o",
                          str(tmp_path / "slurm-%j.out"), "--wrap", "sleep 1"],
                         capture_output=True, text=True, check=True,
                         timeout=30).stdout.strip().split(";")[0]
    doc = None
    for _ in range(120):
        out = fetch([jid])
        doc = json.loads(out) if out else None
        if doc and doc["jobs"] and doc["jobs"][0]["time"]["end"]:
            break
        time.sleep(0.5)
    assert doc is not None
    path = tmp_path / "sacct.json"
    path.write_text(json.dumps(doc))
    got = {e["slurm.event"]: e for e in SlurmJSON(path).new_events(None)
           if e["name"] == "slurm.job"}
    # Moments after a job ends 22.05's sacct was seen to give its eligible time as 0 (the
    # next sacct has it): a file read again adds it then.
    assert {"submitted", "started", "ended"} <= set(got)
    assert got["submitted"]["created"] <= got["started"]["created"] <= \
        got["ended"]["created"]
    assert got["ended"]["slurm.state"] == "COMPLETED"
    assert got["started"]["parsl.job_id"] == jid
    run = Run(sample("thread"), sources=[path])
    run.load()
    assert len(run.select(f"source=slurm and slurm.job_id={jid}")) >= 4


def test_the_start_up_breakdown_names_the_slurm_queue(tmp_path: Path,
                                                     parsl_sample: Path) -> None:
    """Block 0 of the Parsl sample as Slurm job 32312, started by Slurm 0.788 s after
    Parsl submitted it (+5.721 s) and 1.68 s before its manager registered (+8.189 s):
    the breakdown splits 'block launch to manager registration' there."""
    from features.parsl_startup import parsl_startup, step_columns

    sample = parsl_sample
    pool = sample / "pool" / "7ea557a4-c126-4292-b558-94a130940b3f"
    doc = sacct_old()
    job = doc["jobs"][0]
    job["job_id"], job["steps"] = 32312, []
    job["time"].update(submission=1796519310, eligible=1796519310, start=1796519311,
                       end=1796519321)
    doc["jobs"] = [job]
    run = Run(pool, sources=[sample / "parsl", write(tmp_path / "sacct.json", doc)])
    run.load()
    t = parsl_startup(run)
    steps = {s: float(t[s][0]) for s in step_columns(t)}
    assert steps["queued in Slurm"] == pytest.approx(1796519311 - 1796519310.211965, abs=1e-3)
    assert steps["job start to manager registration"] == pytest.approx(
        1796519312.679468 - 1796519311, abs=1e-3)
    assert "block launch to manager registration" not in steps
    assert float(t["total_s"][0]) == pytest.approx(sum(steps.values()), abs=1e-3)
