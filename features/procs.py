"""The kernel's view joined onto the run: the process sampler's records as series.

``academy-tui sample RUN`` or ``observe_processes(cfg)`` (``steering.procsampler``) writes
one record per process per interval into the pool (``source=procs``, ``proc.kind=sample``,
the sampled pid in ``proc.pid``, CPU in ``proc.cpu_pct``, memory in ``proc.rss_bytes`` ...).
Here they become tables, and join the agents by pid and time:

>>> from features.procs import samples, agent_samples, agent_usage, process_usage
>>> samples(run)                    # every sample, in time order
>>> agent_samples(run)              # per agent: its process's samples while the agent lived
>>> agent_usage(run)                # per agent: how many samples, mean/max CPU, max RSS

A process is ``(pid, create_time)``: pids are reused, and pool records carry no host, so
an agent's process is the one with its pid that had started by its file's first record
(the latest such start). Several agents can share a process (a generator runs alongside
its launcher): their numbers are the process's, and ``sharing`` says how many agents share it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.table import Table

__all__ = ["agent_samples", "agent_usage", "process_usage", "samples"]

NUMERIC = {
    "pid": "proc.pid", "ppid": "proc.ppid", "create_time": "proc.create_time",
    "cpu_pct": "proc.cpu_pct", "cpu_window_s": "proc.cpu_window_s",
    "cpu_user_s": "proc.cpu_user_s", "cpu_system_s": "proc.cpu_system_s",
    "rss_bytes": "proc.rss_bytes", "threads": "proc.threads", "fds": "proc.fds",
    "read_bytes": "proc.read_bytes", "write_bytes": "proc.write_bytes",
    "read_chars": "proc.read_chars", "write_chars": "proc.write_chars",
}
"""Column -> record key of the numbers a sample holds (NaN where the OS did not tell)."""
TEXT = {"status": "proc.status", "name": "proc.name", "cmdline": "proc.cmdline",
        "host": "proc.host", "origin": "proc.origin"}
START_SLACK_S = 1.0
"""A process's start may follow its file's first record by this much (clock granularity)."""


def samples(run: Any) -> Table:
    """One row per sample of any process, in time order: ``t`` (epoch seconds), the
    :data:`NUMERIC` and :data:`TEXT` columns, and ``row`` (the event, as evidence)."""
    ev = run.events()
    rows = ev.store.rows_with_key("proc.kind", ev.n)
    if len(rows):
        kind = ev.column("proc.kind")[rows]
        src = ev.column("source")[rows]
        rows = rows[(kind == "sample") & (src == "procs")]
    rows = rows[np.argsort(ev.created[rows], kind="stable")]
    cols: dict[str, Any] = {"t": ev.created[rows]}
    for name, key in NUMERIC.items():
        col = ev.numeric(key) if len(rows) else None
        cols[name] = col[rows] if col is not None else np.full(len(rows), np.nan)
    cols["pid"] = np.where(np.isnan(cols["pid"]), -1, cols["pid"]).astype(np.int64)
    cols["ppid"] = np.where(np.isnan(cols["ppid"]), -1, cols["ppid"]).astype(np.int64)
    for name, key in TEXT.items():
        cols[name] = ev.column(key)[rows] if len(rows) else np.empty(0, dtype=object)
    cols["row"] = rows.astype(np.int64)
    return Table(cols, name="proc_samples")


def _instance(s: Table, pid: int, t_first: float) -> float:
    """The create time of the process ``pid`` that had started by ``t_first``
    (NaN: no sample of such a process)."""
    ct = s["create_time"][s["pid"] == pid]
    ok = ct[ct <= t_first + START_SLACK_S] if np.isfinite(t_first) else ct
    return float(ok.max()) if len(ok) else np.nan


def _lifetimes(ag: Table) -> tuple[np.ndarray, np.ndarray]:
    """Per agent: from its start (starting, else running, else launched) to when it was
    gone (shutdown, crash or its process's end; +inf while it may still answer)."""
    start = np.array(ag["t_starting"], dtype=np.float64)
    for col in ("t_running", "t_launched"):
        start = np.where(np.isnan(start), np.asarray(ag[col], dtype=np.float64), start)
    end = np.asarray(ag["t_gone"], dtype=np.float64) if "t_gone" in ag else \
        np.asarray(ag["t_shutdown"], dtype=np.float64)
    return start, np.where(np.isnan(end), np.inf, end)


def agent_samples(run: Any, lifetime: bool = True) -> Table:
    """Per agent, the samples of the process it ran in (long format: one row per agent and
    sample): ``agent_id``, ``class``, ``pid``, ``sharing`` and the :func:`samples` columns.
    ``lifetime``: only while the agent lived (else every sample of its process)."""
    s = samples(run)
    ag = run.agents()
    procs = run.processes()
    t_first = dict(zip(procs["file"].tolist(), procs["t_first"].tolist(), strict=True))
    start, end = _lifetimes(ag)
    inst = np.full(len(ag), np.nan)
    pids = np.asarray(ag["pid"], dtype=np.int64)
    for i, (pid, f) in enumerate(zip(pids.tolist(), ag["file"].tolist(), strict=True)):
        if pid >= 0 and len(s):
            inst[i] = _instance(s, pid, t_first.get(f, np.nan))
    sharing = np.array([int(((pids == p) & (inst == c)).sum()) if np.isfinite(c) else 0
                        for p, c in zip(pids.tolist(), inst.tolist(), strict=True)],
                       dtype=np.int64)
    picks: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for i in range(len(ag)):
        if not np.isfinite(inst[i]):
            continue
        m = (s["pid"] == pids[i]) & (s["create_time"] == inst[i])
        if lifetime:
            m &= (s["t"] >= start[i] if np.isfinite(start[i]) else True) & (s["t"] <= end[i])
        idx = np.flatnonzero(m)
        picks.append(idx)
        owner.append(np.full(len(idx), i, dtype=np.int64))
    idx = np.concatenate(picks) if picks else np.empty(0, dtype=np.int64)
    who = np.concatenate(owner) if owner else np.empty(0, dtype=np.int64)
    cols: dict[str, Any] = {
        "agent_id": np.asarray(ag["agent_id"], dtype=object)[who],
        "class": np.asarray(ag["class"], dtype=object)[who],
        "sharing": sharing[who],
    }
    for c in s.columns:
        cols[c] = s[c][idx]
    return Table(cols, name="agent_samples")


def _stats(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    return (float(v.mean()), float(v.max())) if len(v) else (np.nan, np.nan)


def agent_usage(run: Any, lifetime: bool = True) -> Table:
    """One row per agent: ``agent_id``, ``class``, ``pid``, ``samples``, ``cpu_mean``,
    ``cpu_max`` (percent of one core), ``rss_max`` (bytes), ``t_first``/``t_last`` sample
    and ``sharing`` (agents in the same process; the numbers are the process's)."""
    ag = run.agents()
    a = agent_samples(run, lifetime)
    rows: dict[str, list[Any]] = {k: [] for k in (
        "agent_id", "class", "pid", "samples", "cpu_mean", "cpu_max", "rss_max",
        "t_first", "t_last", "sharing")}
    ids = a["agent_id"]
    for aid, cls, pid in zip(ag["agent_id"].tolist(), ag["class"].tolist(),
                             np.asarray(ag["pid"]).tolist(), strict=True):
        m = ids == aid
        cpu_mean, cpu_max = _stats(a["cpu_pct"][m])
        rss = a["rss_bytes"][m]
        t = a["t"][m]
        for k, v in (("agent_id", aid), ("class", cls), ("pid", pid),
                     ("samples", int(m.sum())), ("cpu_mean", cpu_mean), ("cpu_max", cpu_max),
                     ("rss_max", float(np.nanmax(rss)) if np.isfinite(rss).any() else np.nan),
                     ("t_first", float(t.min()) if len(t) else np.nan),
                     ("t_last", float(t.max()) if len(t) else np.nan),
                     ("sharing", int(a["sharing"][m][0]) if m.any() else 0)):
            rows[k].append(v)
    return Table({k: np.asarray(v, dtype=np.int64 if k in ("pid", "samples", "sharing")
                                else np.float64 if k not in ("agent_id", "class") else object)
                  for k, v in rows.items()}, name="agent_usage")


def process_usage(run: Any) -> Table:
    """One row per sampled process (``pid``, ``create_time``): ``name``, ``cmdline``,
    ``origin`` (the pool file it wrote, or whose child it is), ``samples``, CPU mean and
    max, ``rss_max``, first and last sample."""
    s = samples(run)
    keys = sorted(set(zip(s["pid"].tolist(), s["create_time"].tolist(), strict=True)),
                  key=lambda k: (np.nan_to_num(k[1]), k[0]))
    out: dict[str, list[Any]] = {k: [] for k in (
        "pid", "create_time", "name", "cmdline", "origin", "samples", "cpu_mean", "cpu_max",
        "rss_max", "t_first", "t_last")}
    for pid, ct in keys:
        m = (s["pid"] == pid) & ((s["create_time"] == ct) | (np.isnan(ct) &
                                                             np.isnan(s["create_time"])))
        last = int(np.flatnonzero(m)[-1])
        cpu_mean, cpu_max = _stats(s["cpu_pct"][m])
        rss = s["rss_bytes"][m]
        for k, v in (("pid", pid), ("create_time", ct), ("name", s["name"][last]),
                     ("cmdline", s["cmdline"][last]), ("origin", s["origin"][last]),
                     ("samples", int(m.sum())), ("cpu_mean", cpu_mean), ("cpu_max", cpu_max),
                     ("rss_max", float(np.nanmax(rss)) if np.isfinite(rss).any() else np.nan),
                     ("t_first", float(s["t"][m].min())), ("t_last", float(s["t"][m].max()))):
            out[k].append(v)
    kinds = {"pid": np.int64, "samples": np.int64, "name": object, "cmdline": object,
             "origin": object}
    return Table({k: np.asarray(v, dtype=kinds.get(k, np.float64)) for k, v in out.items()},
                 name="process_usage")
