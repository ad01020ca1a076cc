"""Agent start-up broken into its Parsl parts, from the run's pool joined with Parsl's
monitoring database (:mod:`features.parsl_db`), its text logs (:mod:`features.parsl_logs`),
or both.

An agent launched through a Manager on Parsl's HighThroughputExecutor is one Parsl task
(``_run_agent_on_worker``). Between ``Launched agent`` and the agent running, the time
goes through these points, each from the records that mark it:

========================  =====================================================  ========
point                     record                                                 source
========================  =====================================================  ========
block submitted           the block's ``PENDING`` row / ``Launched block N``     db, logs
manager started           the first record of the block's ``manager.log``        logs
manager registered        the manager's first ``node`` row / ``Registered        db, logs
                          manager`` in ``interchange.log``
worker started            ``Worker N started`` of the worker that got the task   logs
task received             ``Received executor task X`` (X from ``parsl.log``'s   logs
                          ``Parsl task T try 0 launched ... executor id X``)
try running               the try's ``task_try_time_running``                    db
first record              the first record the agent's worker process writes     pool
agent running             ``Running agent``                                      pool
========================  =====================================================  ========

A step is the time between two points that follow each other, named by the pair
(:data:`ALL_STEPS`). With the database alone they are :data:`STEPS` (waiting for a block,
block launch to manager registration, task dispatch and worker start, the task wrapper,
Academy's agent start); the logs split the second into *block launch to manager start*
and *manager registration*, and the third into *worker start*, *task dispatch* and, with
the database too, *unpacking the task* (the worker unpickling the function and its
arguments, which imports their modules: 0.64 s of the sample's 0.65 s from the task's
arrival to the try running). From the logs alone the last of those has no try-running
point: *unpacking and the task wrapper*. Where the database and the logs both mark a
point, the database's time is taken (they differ by under 1 ms in the sample). A point
earlier than the one before it (a block submitted before the agent's launch, a warm
pool) counts from that one: its step is 0.

Agents launched "alongside" by another agent are no Parsl task: they have no row here.
A task is matched to the agent whose launch is nearest its ``pending`` record (within
:data:`MATCH_S`); the worker process is the agent's pool file.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from features.query import select
from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["ALL_STEPS", "STEPS", "parsl_startup", "step_columns"]

MATCH_S = 1.0
"""Seconds between an agent's launch record and its Parsl task's ``pending`` record (the
driver logs both within milliseconds; 1 ms in the sample)."""
STEPS = ("waiting for a block", "block launch to manager registration",
         "task dispatch and worker start", "the task wrapper", "Academy's agent start")
"""The steps from the monitoring database alone."""
_NAMES = {
    ("launched", "block"): "waiting for a block",
    ("block", "job_start"): "queued in Slurm",
    ("job_start", "manager_start"): "job start to manager start",
    ("job_start", "registered"): "job start to manager registration",
    ("block", "manager_start"): "block launch to manager start",
    ("manager_start", "registered"): "manager registration",
    ("block", "registered"): "block launch to manager registration",
    ("registered", "worker_start"): "worker start",
    ("worker_start", "received"): "task dispatch",
    ("registered", "running"): "task dispatch and worker start",
    ("received", "running"): "unpacking the task",
    ("running", "first_record"): "the task wrapper",
    ("received", "first_record"): "unpacking and the task wrapper",
    ("registered", "first_record"): "task dispatch, worker start and the task wrapper",
    ("first_record", "agent_running"): "Academy's agent start",
}
ALL_STEPS = ("waiting for a block", "queued in Slurm", "job start to manager start",
             "job start to manager registration",
             "block launch to manager start", "manager registration",
             "block launch to manager registration", "worker start", "task dispatch",
             "task dispatch and worker start", "unpacking the task",
             "task dispatch, worker start and the task wrapper",
             "unpacking and the task wrapper", "the task wrapper", "Academy's agent start")
"""Every step a breakdown can have, in time order (a row has one path through them)."""
_KEYS = ("source", "name", "parsl.task", "parsl.status", "parsl.event", "parsl.block",
         "parsl.manager", "parsl.func", "parsl.executor", "parsl.executor_task",
         "parsl.worker", "parsl.job_id")
NAN = (math.nan, -1)


def step_columns(t: Table) -> list[str]:
    """The steps a breakdown has, in time order (``t`` from :func:`parsl_startup`)."""
    return [s for s in ALL_STEPS if s in t]


def _s(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class _Marks:
    """The Parsl events that mark the points, first per key (database before logs)."""

    def __init__(self, run: Run) -> None:
        ev = run.events()
        rows = select(ev, 'source=parsl or (source="parsl-logs" and has:parsl.event)')
        cols = {k: ev.column(k)[rows] if k in ev.store.key_shapes else [None] * len(rows)
                for k in _KEYS}
        self.pending: dict[str, tuple[float, int]] = {}
        self.func: dict[str, Any] = {}
        self.running: dict[str, tuple[float, int, str | None, str | None]] = {}
        self.exec_id: dict[str, tuple[str | None, str]] = {}
        self.block: dict[tuple[str | None, str], tuple[float, int]] = {}
        self.first_block: dict[str | None, str] = {}
        self.reg_m: dict[str, tuple[float, int]] = {}
        self.reg_b: dict[tuple[str | None, str], tuple[float, int]] = {}
        self.start_m: dict[str, tuple[float, int]] = {}
        self.start_b: dict[tuple[str | None, str], tuple[float, int]] = {}
        self.worker: dict[tuple[Any, ...], tuple[float, int]] = {}
        self.job_of: dict[tuple[str | None, str], str] = {}
        """(executor, block) -> the batch system's job id (a block's ``parsl.job_id``)."""
        self.slurm: dict[str, tuple[float, float]] = {}
        """Slurm job id -> (submitted, started), when Slurm's accounting is joined on."""
        self.received: dict[tuple[Any, ...], tuple[float, int, str, str, str]] = {}
        self._block_of: dict[str, tuple[str | None, str]] = {}
        """manager -> (executor, block), from the logs' file places."""
        self._logs_reg: list[tuple[str, tuple[float, int]]] = []
        """(manager, when) of ``Registered manager`` records in ``interchange.log``."""
        srcs = [str(s) for s in cols["source"]]
        self.has_db, self.has_logs = "parsl" in srcs, "parsl-logs" in srcs
        for src in ("parsl", "parsl-logs"):  # the database's marks first
            for i in (i for i, s in enumerate(srcs) if s == src):
                self._mark(src, {k: _s(cols[k][i]) for k in _KEYS},
                           (float(ev.created[rows[i]]), int(rows[i])))
        for man, at in self._logs_reg:  # interchange.log names the manager; its files, the block
            if man in self._block_of:
                self._both(self.reg_b, *self._block_of[man], at)
        if "slurm.job_id" in ev.store.key_shapes:
            from features.slurm import slurm_queue

            self.slurm = {str(k): v for k, v in slurm_queue(run).items()}

    def _mark(self, src: str, g: dict[str, str | None], at: tuple[float, int]) -> None:
        """Note the point one event marks, unless one was noted for it already."""
        task, ex, blk, man = (g["parsl.task"], g["parsl.executor"], g["parsl.block"],
                              g["parsl.manager"])
        what, name = g["parsl.event"], g["name"]
        if task is not None and g["parsl.func"] is not None:
            self.func.setdefault(task, g["parsl.func"])
        if task is not None and g["parsl.status"] == "pending":
            self.pending.setdefault(task, at)
        if name == "parsl.monitoring.try" and what == "running":
            self.running.setdefault(str(task), (*at, blk, ex))
        elif src == "parsl-logs" and what == "launched" and task is not None:
            self.exec_id.setdefault(task, (ex, str(g["parsl.executor_task"])))
        elif (name == "parsl.monitoring.block" and g["parsl.status"] == "PENDING") \
                or what == "block launched":
            self._both(self.block, ex, str(blk), at)
            self.first_block.setdefault(ex, str(blk))
            if g["parsl.job_id"] is not None:
                self._both(self.job_of, ex, str(blk), g["parsl.job_id"])
        elif what == "registered" and man is not None:
            if src == "parsl" and blk is not None:
                self._both(self.reg_b, ex, blk, at)
            self.reg_m.setdefault(man, at)
            if src == "parsl-logs":
                self._logs_reg.append((man, at))
        elif what == "manager started" and man is not None:
            self.start_m.setdefault(man, at)
            if blk is not None:
                self._both(self.start_b, ex, blk, at)
        elif what == "worker started":
            self.worker.setdefault((ex, man, g["parsl.worker"]), at)
        elif what == "received":
            self.received.setdefault((ex, g["parsl.executor_task"]),
                                     (*at, str(blk), str(man), str(g["parsl.worker"])))
        if src == "parsl-logs" and man is not None and blk is not None:
            self._block_of.setdefault(man, (ex, blk))

    @staticmethod
    def _both(d: dict[tuple[str | None, str], Any], ex: str | None, blk: str, v: Any) -> None:
        d.setdefault((ex, blk), v)
        d.setdefault(("*", blk), v)

    @staticmethod
    def get(d: dict[tuple[str | None, str], Any], ex: str | None, blk: str | None) -> Any:
        if blk is None:
            return None
        return d.get((ex, blk)) or d.get(("*", blk))

    def points(self, task: str, launch: float, first: float, running: float
               ) -> tuple[list[tuple[str, tuple[float, int]]], str | None]:
        """The task's points in time order (value NaN where not marked (yet)), its block."""
        ex, xid = self.exec_id.get(task, (None, None))
        recv = self.received.get((ex, xid)) if xid is not None else None
        run = self.running.get(task)
        ex = ex if ex is not None else (run[3] if run else None)
        blk = run[2] if run and run[2] is not None else recv[2] if recv else \
            self.first_block.get(ex)
        man = recv[3] if recv else None
        reg = (self.reg_m.get(man) if man else None) or self.get(self.reg_b, ex, blk) or NAN
        pts: list[tuple[str, tuple[float, int]]] = [
            ("launched", (launch, -1)), ("block", self.get(self.block, ex, blk) or NAN)]
        job = self.get(self.job_of, ex, blk)
        if job is not None and str(job) in self.slurm:  # the block's job, in Slurm's queue
            pts.append(("job_start", (self.slurm[str(job)][1], -1)))
        start = (self.start_m.get(man) if man else None) or \
            self.get(self.start_b, ex, blk) or NAN
        if self.has_logs and (math.isfinite(start[0]) or not math.isfinite(reg[0])):
            pts.append(("manager_start", start))
        pts.append(("registered", reg))
        if self.has_logs and recv is not None:
            pts.append(("worker_start", self.worker.get((ex, man, recv[4]), NAN)))
            pts.append(("received", recv[:2]))
        if self.has_db:
            pts.append(("running", run[:2] if run else NAN))
        pts += [("first_record", (first, -1)), ("agent_running", (running, -1))]
        return pts, blk


def parsl_startup(run: Run) -> Table:
    """One row per agent that was a Parsl task: its launch, the step times in seconds
    (:func:`step_columns`; NaN when a point is not marked, or the step is not this
    row's) and the evidence rows."""
    marks = _Marks(run)
    ev = run.events()
    ag = run.agents()
    procs = run.processes()
    first_of = dict(zip(procs["file"].tolist(), procs["t_first"].tolist(), strict=True))
    row_of = dict(zip(procs["file"].tolist(), range(len(procs)), strict=True))
    out: dict[str, list[Any]] = {k: [] for k in ("agent_id", "class", "task", "block",
                                                 "t_launched", "t_running", "total_s",
                                                 "evidence")}
    steps: list[dict[str, float]] = []
    used: set[int] = set()
    launched = [_num(x) for x in ag["t_launched"].tolist()]
    for task, (t_pend, r_pend) in sorted(marks.pending.items(), key=lambda kv: kv[1][0]):
        if marks.func.get(task) not in (None, "_run_agent_on_worker"):
            continue
        near = [(abs(t - t_pend), i) for i, t in enumerate(launched)
                if t is not None and i not in used and abs(t - t_pend) <= MATCH_S]
        if not near:
            continue
        i = min(near)[1]
        used.add(i)
        t_launch = float(launched[i])  # type: ignore[arg-type]
        t_run_agent = _num(ag["t_running"][i])
        t_first = _num(first_of.get(str(ag["file"][i])))
        fr = row_of.get(str(ag["file"][i]))
        first_row = int(procs["first_row"][fr]) if fr is not None and \
            "first_row" in procs.columns else -1
        pts, block = marks.points(task, t_launch, math.nan if t_first is None else t_first,
                                  math.nan if t_run_agent is None else t_run_agent)
        steps.append(_steps(pts))
        out["agent_id"].append(str(ag["agent_id"][i]))
        out["class"].append(str(ag["class"][i]))
        out["task"].append(int(task) if task.isdigit() else task)
        out["block"].append(block)
        out["t_launched"].append(t_launch)
        out["t_running"].append(t_run_agent if t_run_agent is not None else math.nan)
        out["total_s"].append((t_run_agent - t_launch) if t_run_agent is not None
                              else math.nan)
        ev_rows = [r_pend, *(r for _, (_t, r) in pts[1:-2]), first_row,
                   int(ag["row_running"][i])]
        out["evidence"].append([f"{ev.file_names[int(ev.file[r])]}:{ev.line_text(r)}"
                                for r in ev_rows if r >= 0])
    return _table(out, steps)


def _steps(pts: list[tuple[str, tuple[float, int]]]) -> dict[str, float]:
    """Step name -> seconds between each pair of following points (NaN where either
    is not marked)."""
    bounds, last = [], -math.inf
    for _, (t, _r) in pts:  # a point before the one before it counts from that one
        bounds.append(max(t, last) if math.isfinite(t) else math.nan)
        last = bounds[-1] if math.isfinite(t) else last
    return {_NAMES[(a[0], b[0])]: (y - x if math.isfinite(x) and math.isfinite(y)
                                   else math.nan)
            for (a, b), (x, y) in zip(itertools.pairwise(pts),
                                      itertools.pairwise(bounds), strict=True)}


def _table(out: dict[str, list[Any]], steps: list[dict[str, float]]) -> Table:
    """The rows as a table, the steps any row has (in time order) after ``total_s``."""
    names = [s for s in ALL_STEPS if any(s in st for st in steps)] or list(STEPS)
    cols: dict[str, np.ndarray] = {}
    for k, v in out.items():
        if k in ("t_launched", "t_running", "total_s"):
            cols[k] = np.array(v, dtype=float)
        else:
            arr = np.empty(len(v), dtype=object)
            arr[:] = v
            cols[k] = arr
        if k == "total_s":
            for s in names:
                cols[s] = np.array([st.get(s, math.nan) for st in steps], dtype=float)
    return Table(cols, name="parsl_startup")
