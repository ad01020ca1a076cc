"""Agent start-up broken into its Parsl parts, from the run's pool joined with Parsl's
monitoring database (:mod:`features.parsl_db`).

An agent launched through a Manager on Parsl's HighThroughputExecutor is one Parsl task
(``_run_agent_on_worker``). Between ``Launched agent`` and the agent running, the time
goes to (each step from the records that bound it):

1. *waiting for a block*: the task is pending until a block is submitted for it
   (the try's block's ``PENDING`` record; 0 when the block was submitted before);
2. *block launch to manager registration*: the batch system or local provider starts the
   block's ``process_worker_pool`` and its manager registers with the interchange (the
   manager's first ``node`` row);
3. *task dispatch and worker start*: from the registration to Parsl's try ``running``;
4. *the task wrapper*: from the try running to the first record the agent's worker process
   writes to the pool (Academy's logging starting in the worker);
5. *Academy's agent start*: from there to the agent running (``Running agent``).

Agents launched "alongside" by another agent are no Parsl task: they have no row here.
A task is matched to the agent whose launch is nearest its ``pending`` record (within
:data:`MATCH_S`); the worker process is the agent's pool file, which Parsl's resource
samples confirm (``process``).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["STEPS", "parsl_startup"]

MATCH_S = 1.0
"""Seconds between an agent's launch record and its Parsl task's ``pending`` record (the
driver logs both within milliseconds; 1 ms in the sample)."""
STEPS = ("waiting for a block", "block launch to manager registration",
         "task dispatch and worker start", "the task wrapper", "Academy's agent start")


def _parsl_events(run: Run) -> dict[str, Any]:
    """The Parsl events as plain lists (a few hundred rows at most)."""
    ev = run.events()
    rows = run.select("source=parsl")
    cols = {k: ev.column(k)[rows] if k in ev.store.key_shapes else [None] * len(rows)
            for k in ("name", "parsl.task", "parsl.try", "parsl.status", "parsl.event",
                      "parsl.block", "parsl.manager", "parsl.func", "process")}
    return {"rows": rows, "t": ev.created[rows], **cols}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def parsl_startup(run: Run) -> Table:
    """One row per agent that was a Parsl task: its launch, the step times in seconds
    (:data:`STEPS`, NaN when a bound is missing) and the evidence rows."""
    p = _parsl_events(run)
    ev = run.events()
    n = len(p["rows"])
    pending: dict[Any, tuple[float, int]] = {}
    running: dict[Any, tuple[float, int, Any]] = {}
    blocks: dict[str, tuple[float, int]] = {}
    managers: dict[str, tuple[float, int]] = {}
    func: dict[Any, Any] = {}
    for i in range(n):
        name, t, row = p["name"][i], float(p["t"][i]), int(p["rows"][i])
        task = p["parsl.task"][i]
        if name == "parsl.monitoring.task":
            if p["parsl.status"][i] == "pending" and task not in pending:
                pending[task] = (t, row)
            func.setdefault(task, p["parsl.func"][i])
        elif name == "parsl.monitoring.try" and p["parsl.event"][i] == "running":
            running.setdefault(task, (t, row, p["parsl.block"][i]))
        elif name == "parsl.monitoring.block" and p["parsl.status"][i] == "PENDING":
            blocks.setdefault(str(p["parsl.block"][i]), (t, row))
        elif name == "parsl.monitoring.node" and p["parsl.event"][i] == "registered":
            managers.setdefault(str(p["parsl.block"][i]), (t, row))
    ag = run.agents()
    procs = run.processes()
    first_of = dict(zip(procs["file"].tolist(), procs["t_first"].tolist(), strict=True))
    row_of = dict(zip(procs["file"].tolist(), range(len(procs)), strict=True))
    out: dict[str, list[Any]] = {k: [] for k in ("agent_id", "class", "task", "block",
                                                 "t_launched", "t_running", "total_s",
                                                 *STEPS, "evidence")}
    used: set[Any] = set()
    launched = [_num(x) for x in ag["t_launched"].tolist()]
    for task, (t_pend, r_pend) in sorted(pending.items(), key=lambda kv: kv[1][0]):
        if func.get(task) not in (None, "_run_agent_on_worker"):
            continue
        near = [(abs(t - t_pend), i) for i, t in enumerate(launched)
                if t is not None and i not in used and abs(t - t_pend) <= MATCH_S]
        if not near:
            continue
        i = min(near)[1]
        used.add(i)
        t_launch = float(launched[i])  # type: ignore[arg-type]
        t_run_agent = _num(ag["t_running"][i])
        t_try, r_try, block = running.get(task, (math.nan, -1, None))
        t_block, r_block = blocks.get(str(block), (math.nan, -1))
        t_reg, r_reg = managers.get(str(block), (math.nan, -1))
        t_first = _num(first_of.get(str(ag["file"][i])))
        start = t_launch
        bounds = [start, max(start, t_block) if math.isfinite(t_block) else math.nan,
                  t_reg, t_try, t_first if t_first is not None else math.nan,
                  t_run_agent if t_run_agent is not None else math.nan]
        steps = [b - a if math.isfinite(a) and math.isfinite(b) else math.nan
                 for a, b in itertools.pairwise(bounds)]
        out["agent_id"].append(str(ag["agent_id"][i]))
        out["class"].append(str(ag["class"][i]))
        out["task"].append(task)
        out["block"].append(block)
        out["t_launched"].append(t_launch)
        out["t_running"].append(t_run_agent if t_run_agent is not None else math.nan)
        out["total_s"].append((t_run_agent - t_launch) if t_run_agent is not None
                              else math.nan)
        for name, s in zip(STEPS, steps, strict=True):
            out[name].append(s)
        fr = row_of.get(str(ag["file"][i]))
        first_row = int(procs["first_row"][fr]) if fr is not None and \
            "first_row" in procs.columns else -1
        ev_rows = [r for r in (r_pend, r_block, r_reg, r_try, first_row,
                               int(ag["row_running"][i])) if r >= 0]
        out["evidence"].append([f"{ev.file_names[int(ev.file[r])]}:{int(ev.line[r])}"
                                for r in ev_rows])
    cols: dict[str, np.ndarray] = {}
    for k, v in out.items():
        if k in ("t_launched", "t_running", "total_s", *STEPS):
            cols[k] = np.array(v, dtype=float)
        else:
            arr = np.empty(len(v), dtype=object)
            arr[:] = v
            cols[k] = arr
    return Table(cols, name="parsl_startup")
