"""The infrastructure under a run's agents, from its other sources (:mod:`features.sources`):
Parsl blocks and managers as spans, and CPU and memory per process as series, each tied
to the pool's processes by pid (what the timeline draws under the agents they host).

Blocks: ``PENDING`` (submitted) -> ``RUNNING`` -> an end state (``SCALED_IN``, ``FAILED``,
...). Managers: registered -> released. A block or manager *hosts* the worker processes
Parsl's resource samples name for the tries that ran on its block. Series: Parsl's
resource samples (``parsl.cpu_pct``, ``parsl.rss_bytes`` by ``process``) and the process
sampler's (``proc.cpu_pct``, ``proc.rss_bytes`` by ``proc.pid``), whichever are joined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["Series", "infra_spans", "process_series"]

END_STATES = ("SCALED_IN", "COMPLETED", "FAILED", "CANCELLED", "MISSING", "TIMEOUT")


def _cols(run: Run, rows: np.ndarray, keys: tuple[str, ...]) -> dict[str, Any]:
    ev = run.events()
    return {k: ev.column(k)[rows] if k in ev.store.key_shapes else [None] * len(rows)
            for k in keys}


def _f(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


_SPAN_COLUMNS = ("key", "kind", "t_submitted", "t_running", "t_end", "state", "pids")
_SPAN_KEYS = ("name", "parsl.block", "parsl.status", "parsl.event", "parsl.manager",
              "parsl.task", "parsl.try", "process", "parsl.job_id")


def infra_spans(run: Run) -> Table:
    """Blocks and managers: ``key`` (``block 0``, ``manager a29224de``), ``kind``,
    ``t_submitted`` (block pending / manager registered), ``t_running`` (block running;
    = submitted for a manager), ``t_end`` (NaN while it lasts), ``state`` and ``pids``
    (the worker processes it hosted, comma separated), in start order."""
    ev = run.events()
    if "parsl.block" not in ev.store.key_shapes:
        return Table({"key": np.empty(0, dtype=object), "kind": np.empty(0, dtype=object),
                      "t_submitted": np.empty(0), "t_running": np.empty(0),
                      "t_end": np.empty(0), "state": np.empty(0, dtype=object),
                      "pids": np.empty(0, dtype=object)}, name="infra")
    from features.query import select  # only for a run joined with Parsl's

    rows = select(ev, "has:parsl.block or has:parsl.task")
    blocks, managers, hosted = _read_spans(_cols(run, rows, _SPAN_KEYS), ev.created[rows])
    out: dict[str, list[Any]] = {k: [] for k in _SPAN_COLUMNS}
    for blk, b in blocks.items():
        _put(out, f"block {blk}", "block", b["t0"], b["t1"], b["t2"], b["state"],
             hosted.get(blk, set()))
    for uid, m in managers.items():
        _put(out, f"manager {uid[:8]}", "manager", m["t0"], m["t0"], m["t2"], m["state"],
             hosted.get(m["block"], set()))
    order = np.argsort(np.array([x if math.isfinite(x) else np.inf
                                 for x in out["t_submitted"]]), kind="stable")
    cols: dict[str, np.ndarray] = {}
    for k, v in out.items():
        arr = np.array(v, dtype=float) if k.startswith("t_") else np.array(v, dtype=object)
        cols[k] = arr[order] if len(arr) else arr
    return Table(cols, name="infra")


def _read_spans(c: dict[str, Any], t: np.ndarray) -> tuple[
        dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, set[int]]]:
    """Blocks and managers by id, each with its times and state, and the pids each block
    hosted, from Parsl's records (``c``, their keys; ``t``, their times)."""
    block_of_try: dict[tuple[Any, Any], str] = {}
    pids_of_try: dict[tuple[Any, Any], set[int]] = {}
    blocks: dict[str, dict[str, Any]] = {}
    managers: dict[str, dict[str, Any]] = {}
    for i in range(len(t)):
        name, ti = c["name"][i], float(t[i])
        blk = c["parsl.block"][i]
        if name == "parsl.monitoring.try" and blk is not None:
            block_of_try[(c["parsl.task"][i], c["parsl.try"][i])] = str(blk)
        elif name == "parsl.monitoring.resource":
            pid = c["process"][i]
            if pid is not None and int(pid) >= 0:
                pids_of_try.setdefault((c["parsl.task"][i], c["parsl.try"][i]),
                                       set()).add(int(pid))
        elif name == "parsl.monitoring.block" and blk is not None:
            _block_seen(blocks.setdefault(str(blk), {"t0": math.nan, "t1": math.nan,
                                                     "t2": math.nan, "state": ""}),
                        str(c["parsl.status"][i]), ti)
        elif name == "parsl.monitoring.node" and c["parsl.manager"][i] is not None:
            _manager_seen(managers.setdefault(str(c["parsl.manager"][i]),
                                              {"t0": math.nan, "t2": math.nan,
                                               "block": str(blk), "state": "registered"}),
                          c["parsl.event"][i], ti)
    hosted: dict[str, set[int]] = {}
    for key, blk in block_of_try.items():
        hosted.setdefault(blk, set()).update(pids_of_try.get(key, set()))
    return blocks, managers, hosted


def _block_seen(b: dict[str, Any], st: str, ti: float) -> None:
    """A block's status record at ``ti``: the first of each phase sets its time."""
    if st == "PENDING" and math.isnan(b["t0"]):
        b["t0"] = ti
    elif st == "RUNNING" and math.isnan(b["t1"]):
        b["t1"] = ti
    elif st in END_STATES and math.isnan(b["t2"]):
        b["t2"] = ti
    b["state"] = st


def _manager_seen(m: dict[str, Any], what: Any, ti: float) -> None:
    """A manager's node record at ``ti``: the first registration and release count."""
    if what == "registered" and math.isnan(m["t0"]):
        m["t0"] = ti
    elif what == "released" and math.isnan(m["t2"]):
        m["t2"] = ti
        m["state"] = "released"


def _put(out: dict[str, list[Any]], key: str, kind: str, t0: float, t1: float, t2: float,
         state: str, pids: set[int]) -> None:
    out["key"].append(key)
    out["kind"].append(kind)
    out["t_submitted"].append(t0)
    out["t_running"].append(t1)
    out["t_end"].append(t2)
    out["state"].append(state)
    out["pids"].append(",".join(str(p) for p in sorted(pids)))


@dataclass
class Series:
    """One process's samples, in time order."""

    pid: int
    t: np.ndarray
    cpu_pct: np.ndarray
    rss_bytes: np.ndarray
    source: str


def process_series(run: Run) -> dict[int, Series]:
    """CPU % and resident memory per sampled pid, from whichever sources are joined (the
    process sampler wins for a pid both sampled: it samples every process of the run)."""
    ev = run.events()
    out: dict[int, Series] = {}
    for src, pid_key, cpu_key, rss_key in (("parsl", "process", "parsl.cpu_pct",
                                            "parsl.rss_bytes"),
                                           ("procs", "proc.pid", "proc.cpu_pct",
                                            "proc.rss_bytes")):
        if cpu_key not in ev.store.key_shapes:
            continue
        from features.query import select  # only for a run with samples

        rows = select(ev, f"has:{cpu_key} or has:{rss_key}")
        c = _cols(run, rows, (pid_key, cpu_key, rss_key))
        t = ev.created[rows]
        by: dict[int, list[int]] = {}
        for i, p in enumerate(c[pid_key]):
            try:
                pid = int(p)
            except (TypeError, ValueError):
                continue
            if pid >= 0:
                by.setdefault(pid, []).append(i)
        for pid, idx in by.items():
            ix = np.array(idx, dtype=np.int64)
            order = ix[np.argsort(t[ix], kind="stable")]
            out[pid] = Series(pid, np.asarray(t[order], dtype=float),
                              np.array([_f(c[cpu_key][j]) for j in order]),
                              np.array([_f(c[rss_key][j]) for j in order]), src)
    return out
