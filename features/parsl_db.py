"""Parsl's monitoring database as events of the run (``source: parsl``).

Read with the standard library's ``sqlite3``, read-only, live while Parsl writes it (a
locked database is read at the next sync). Each table becomes events at the times its rows
carry: the workflow's start and end, task status transitions, tries (with their block),
blocks (``PENDING`` -> ``RUNNING`` -> ``SCALED_IN``, job ids), managers (first row of a
node: registration; ``active=0``: released) and resource samples (per-process CPU and
memory). Keys: ``parsl.run_id``, ``parsl.task``, ``parsl.try``, ``parsl.status``,
``parsl.block``, ``parsl.job_id``, ``parsl.executor``, ``parsl.manager``, ``parsl.host``,
and ``process`` (the sampled pid) on resource samples: the join onto the pool, whose HTEX
worker file carries the same ``process``.

Times: the database holds naive datetimes, in the host's zone (UTC on the machines seen).
They are read as UTC and then moved by the offset that makes the workflow's start agree
with the pool's ``Run id is: <run_id>`` record (rounded to 15 minutes: a time zone), so a
driver in another zone still lines up; without that record they stay UTC.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.regular import open_regular_file
from features.sources import Source, event, register

if TYPE_CHECKING:
    from features.sources import RunView

__all__ = ["ParslDB", "to_epoch"]

SQLITE_MAGIC = b"SQLite format 3\x00"
TZ_STEP_S = 900.0
"""Time zones are whole quarter hours."""
_SRC = "parsl"


def to_epoch(value: Any, offset_s: float = 0.0) -> float | None:
    """Epoch seconds of a Parsl DB datetime (naive, read as UTC, then ``offset_s``)."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    t = dt.timestamp() + offset_s
    return t if math.isfinite(t) else None


def _is_db(path: Path) -> bool:
    if path.suffix not in (".db", ".sqlite", ".sqlite3", "") and path.name != "monitoring.db":
        return False
    with open_regular_file(path) as fh:  # a path a pool can name: never a FIFO's wait
        if fh.read(16) != SQLITE_MAGIC:
            return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            names = {r[0] for r in con.execute("select name from sqlite_master")}
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return {"workflow", "task", "block"} <= names


def _i(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _f(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class ParslDB(Source):
    """One ``monitoring.db``."""

    kind = _SRC

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.offset_s: float | None = None
        self.emitted: set[tuple[Any, ...]] = set()
        """Keys of the events written already (rows are updated in place as runs go on)."""
        self.last_rowid: dict[str, int] = {}
        self.cpu_last: dict[int, tuple[float, float]] = {}
        """pid -> (time, CPU seconds) of its last resource sample."""
        self.notes: list[str] = []

    def _offset(self, con: sqlite3.Connection, run: RunView | None) -> float:
        if self.offset_s is not None:
            return self.offset_s
        if run is None:
            return 0.0
        ev = run.events()
        rows = [(r, str(m)) for r, m in enumerate(ev.column("message")[: ev.n])
                if isinstance(m, str) and m.startswith("Run id is: ")] if ev.n else []
        began = dict(con.execute("select run_id, time_began from workflow"))
        for r, m in rows:
            t_db = to_epoch(began.get(m.removeprefix("Run id is: ").strip()))
            if t_db is not None:
                off = float(ev.created[r]) - t_db
                self.offset_s = round(off / TZ_STEP_S) * TZ_STEP_S
                return self.offset_s
        return 0.0

    def new_events(self, run: RunView | None) -> Iterator[dict[str, Any]]:
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error as exc:
            self.notes.append(f"{self.path}: {exc}")
            return
        try:
            off = self._offset(con, run)
            con.row_factory = sqlite3.Row
            out: list[dict[str, Any]] = []
            for fn in (self._workflow, self._tasks, self._tries, self._blocks, self._nodes,
                       self._resources):
                try:
                    out.extend(fn(con, off))
                except sqlite3.OperationalError as exc:  # locked, or a table not there yet
                    self.notes.append(f"{fn.__name__[1:]}: {exc}")
            out.sort(key=lambda e: e["created"])
            yield from out
        finally:
            con.close()

    def _once(self, key: tuple[Any, ...]) -> bool:
        if key in self.emitted:
            return False
        self.emitted.add(key)
        return True

    def _new_rows(self, con: sqlite3.Connection, table: str) -> list[sqlite3.Row]:
        last = self.last_rowid.get(table, 0)
        rows = list(con.execute(f"select rowid as _rowid, * from {table} where rowid > ? "
                                "order by rowid", (last,)))
        if rows:
            self.last_rowid[table] = int(rows[-1]["_rowid"])
        return rows

    def _workflow(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        for w in con.execute("select * from workflow"):
            rid = str(w["run_id"])
            common = {"parsl.run_id": rid, "parsl.workflow": w["workflow_name"],
                      "parsl.rundir": w["rundir"], "parsl.host": w["host"]}
            t = to_epoch(w["time_began"], off)
            if t is not None and self._once(("wf", rid, "began")):
                yield event(t, _SRC, "parsl.monitoring.workflow", "Parsl workflow %s began",
                            (w["workflow_name"],), keys={**common, "parsl.event": "began"})
            t = to_epoch(w["time_completed"], off)
            if t is not None and self._once(("wf", rid, "completed")):
                yield event(t, _SRC, "parsl.monitoring.workflow",
                            "Parsl workflow %s completed: %s tasks done, %s failed",
                            (w["workflow_name"], w["tasks_completed_count"],
                             w["tasks_failed_count"]),
                            keys={**common, "parsl.event": "completed",
                               "parsl.tasks_done": _i(w["tasks_completed_count"]),
                               "parsl.tasks_failed": _i(w["tasks_failed_count"])})

    def _tasks(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        funcs = {(r["run_id"], r["task_id"]): r["task_func_name"]
                 for r in con.execute("select run_id, task_id, task_func_name from task")}
        for s in self._new_rows(con, "status"):
            t = to_epoch(s["timestamp"], off)
            if t is None:
                continue
            status = str(s["task_status_name"])
            level = 40 if status in ("failed", "dep_fail") else 20
            yield event(t, _SRC, "parsl.monitoring.task", "Parsl task %s %s",
                        (s["task_id"], status), level, {
                            "parsl.run_id": s["run_id"], "parsl.task": _i(s["task_id"]),
                            "parsl.try": _i(s["try_id"]), "parsl.status": status,
                            "parsl.func": funcs.get((s["run_id"], s["task_id"]))})

    def _tries(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        for r in con.execute("select * from try"):
            key = (r["run_id"], r["task_id"], r["try_id"])
            common = {"parsl.run_id": r["run_id"], "parsl.task": _i(r["task_id"]),
                      "parsl.try": _i(r["try_id"]), "parsl.block": r["block_id"],
                      "parsl.host": r["hostname"], "parsl.executor": r["task_executor"]}
            for col, what in (("task_try_time_launched", "launched"),
                              ("task_try_time_running", "running"),
                              ("task_try_time_returned", "returned")):
                t = to_epoch(r[col], off)
                if t is not None and self._once(("try", *key, what)):
                    yield event(t, _SRC, "parsl.monitoring.try",
                                "Parsl task %s try %s %s on block %s", (r["task_id"],
                                                                        r["try_id"], what,
                                                                        r["block_id"]),
                                keys={**common, "parsl.event": what})

    def _blocks(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        for b in self._new_rows(con, "block"):
            t = to_epoch(b["timestamp"], off)
            if t is None:
                continue
            status = str(b["status"])
            level = 40 if status in ("FAILED", "MISSING") else 20
            yield event(t, _SRC, "parsl.monitoring.block", "Parsl block %s %s (job %s)",
                        (b["block_id"], status, b["job_id"]), level, {
                            "parsl.run_id": b["run_id"], "parsl.block": b["block_id"],
                            "parsl.job_id": b["job_id"], "parsl.status": status,
                            "parsl.executor": b["executor_label"]})

    def _nodes(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        for n in self._new_rows(con, "node"):
            t = to_epoch(n["timestamp"], off)
            if t is None:
                continue
            uid = str(n["uid"])
            active = bool(n["active"]) if n["active"] is not None else True
            if self._once(("node", uid, "registered")):
                what = "registered"
            elif not active and self._once(("node", uid, "released")):
                what = "released"
            else:
                what = "heartbeat"
            yield event(t, _SRC, "parsl.monitoring.node",
                        "Parsl manager %s %s on block %s (%s workers, %s)",
                        (uid, what, n["block_id"], n["worker_count"], n["hostname"]), keys={
                            "parsl.run_id": n["run_id"], "parsl.manager": uid,
                            "parsl.block": n["block_id"], "parsl.host": n["hostname"],
                            "parsl.event": what, "parsl.workers": _i(n["worker_count"]),
                            "parsl.active": active,
                            "parsl.heartbeat": to_epoch(n["last_heartbeat"], off)})

    def _resources(self, con: sqlite3.Connection, off: float) -> Iterator[dict[str, Any]]:
        for r in self._new_rows(con, "resource"):
            t = to_epoch(r["timestamp"], off)
            pid = _i(r["psutil_process_pid"])
            if t is None:
                continue
            cpu_s = (_f(r["psutil_process_time_user"]) or 0.0) + \
                (_f(r["psutil_process_time_system"]) or 0.0)
            pct = None
            if pid is not None:
                last = self.cpu_last.get(pid)
                if last is not None and t > last[0]:
                    pct = round(100.0 * max(cpu_s - last[1], 0.0) / (t - last[0]), 1)
                self.cpu_last[pid] = (t, cpu_s)
            rss = _f(r["psutil_process_memory_resident"])
            yield event(t, _SRC, "parsl.monitoring.resource",
                        "Parsl resource sample of pid %s: %s%% CPU, %s MB resident",
                        (pid, pct if pct is not None else "?",
                         round(rss / 1e6, 1) if rss is not None else "?"), keys={
                            "parsl.run_id": r["run_id"], "parsl.task": _i(r["task_id"]),
                            "parsl.try": _i(r["try_id"]), "process": pid,
                            "parsl.cpu_pct": pct, "parsl.cpu_s": round(cpu_s, 3),
                            "parsl.rss_bytes": rss,
                            "parsl.status": r["psutil_process_status"]})


register(_is_db, ParslDB)
