"""Parsl's text logs as events of the run (``source: parsl-logs``), for runs without the
monitoring database ("forgot to turn on monitoring, parsl.log is more default", the talk).

A Parsl run directory (``runinfo/000``) holds the DFK's ``parsl.log``, each HTEX
executor's ``<label>/interchange.log`` and, per block and manager,
``<label>/block-<N>/<uid>/manager.log`` and ``worker_<N>.log``. Every record of them
becomes an event with the log's own logger, level, line, thread and pid (``process``),
and the Parsl keys :mod:`features.parsl_db` uses where they mean the same thing
(``parsl.block``, ``parsl.job_id``, ``parsl.manager``, ``parsl.task``, ``parsl.try``,
``parsl.executor``, ``parsl.status``) plus ``parsl.executor_task`` (HTEX's task id) and
``parsl.worker``; the file's place gives executor, block, manager and worker. Records
that mark a step (``Launched block 0 with job ID 32312``, ``Registered manager``,
``Worker 0 started``, the first record of a ``manager.log``: the process_worker_pool
starting) carry ``parsl.event`` and a ``msg`` with ``%s`` for their values, so they group
(the formats and those records: :mod:`features.parsl_log_formats`).

The driver's records are often in the pool already (Academy's handler sits on the root
logger): 130 of the sample's 151 ``parsl.log`` records. Those are not repeated (same
logger, line and time to the microsecond), unless they mark a step; while the run is live
a driver record newer than the pool read so far waits one sync for its twin.

Times: Parsl's format (``parsl.log_utils.DEFAULT_FORMAT``, every file of Parsl
2026.10.26 but ``database_manager.log``) starts with ``%(created)f``, epoch seconds. The
other formats (the monitoring database manager's; interchange and worker pool before
2023) have local wall-clock text only: read as UTC, then moved by the host's zone, taken
from a line that has both, or from the pool's ``Run id is:`` record against the log's
(rounded to 15 minutes, as :mod:`features.parsl_db` does); UTC when neither exists.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# FORMATS and RULES lived here: still importable from here.
from features.parsl_log_formats import FORMATS as FORMATS
from features.parsl_log_formats import LEVELS, match_step, parse_line, wall_clock
from features.parsl_log_formats import RULES as RULES
from features.regular import open_regular_file
from features.sources import Source, event, register

if TYPE_CHECKING:
    from collections.abc import Iterator

    from features.sources import RunView

__all__ = ["ParslLogs", "parse_line"]

_SRC = "parsl-logs"
TZ_STEP_S = 900.0
QUIET_S = 1.0
"""A file's last record is complete once the file has been quiet this long (or sooner:
see :data:`ATOMIC_BYTES`); it may still get continuation lines until then."""
ATOMIC_BYTES = 8192
"""Python's file handler writes and flushes each record; a record under its 8 KiB text
buffer arrives in one write, so one ending the data read is complete."""
CHUNK = 8 << 20
_NAMES = re.compile(r"(parsl|interchange|manager|worker_\d+|database_manager|"
                    r"monitoring_\w*router)\.log$")


def _is_log(path: Path) -> bool:
    """A Parsl log from its first line (a file), or a run directory holding ``parsl.log``
    (or the directory of run directories, Parsl's ``runinfo``)."""
    if path.is_dir():
        return (path / "parsl.log").is_file() or any(
            (d / "parsl.log").is_file() for d in path.iterdir() if d.is_dir())
    with open_regular_file(path) as fh:
        first = fh.read(4096).split(b"\n", 1)[0].decode("utf-8", "replace")
    hit = parse_line(first)
    return hit is not None and (hit[1]["name"].startswith("parsl") or
                                _NAMES.search(path.name) is not None)


def _make(path: Path) -> ParslLogs:
    if path.is_dir():
        return ParslLogs(path)
    for d in list(path.parents)[:4]:  # parsl.log, <label>/, <label>/block-N/<uid>/
        if (d / "parsl.log").is_file():
            return ParslLogs(d)
    return ParslLogs(path.parent)


@dataclass
class _File:
    """One log file being read: how far, its format, the record still open."""

    path: Path
    rel: str
    keys: dict[str, Any]
    offset: int = 0
    rest: bytes = b""
    fmt: int | None = None
    cur: dict[str, Any] | None = None
    records: int = 0
    orphans: int = 0
    """Lines before the file's first record (not Parsl's format): counted, not kept."""


@dataclass
class _Pool:
    """What the pool read so far says, folded forward as its rows arrive."""

    rows: int = 0
    keys: set[tuple[Any, ...]] = field(default_factory=set)
    pids: dict[int, float] = field(default_factory=dict)
    """pid -> the latest time of its records read so far (a file can lag the others)."""
    t_max: float = -math.inf
    run_ids: dict[str, float] = field(default_factory=dict)


class ParslLogs(Source):
    """The text logs of one Parsl run directory (or of the one a ``runinfo`` holding
    several is read for: the one whose ``parsl.log`` names the pool's run id, else the
    newest)."""

    kind = _SRC

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.rundir: Path | None = path if (path / "parsl.log").is_file() else None
        self.files: dict[Path, _File] = {}
        self.ready: list[dict[str, Any]] = []
        """Records read, not yet emitted (awaiting the zone or their pool twin)."""
        self.zone_s: float | None = None
        self.log_run_ids: dict[str, float] = {}
        """Run id -> wall-clock time of its ``Run id is:`` line (formats without epoch)."""
        self.pool = _Pool()
        self.notes: list[str] = []

    @property
    def label(self) -> str:
        """``plogs-4d3a…``: its first 8 characters name it in ``[ev:plogs-4d:12]``."""
        return "p" + super().label.replace("parsl-", "", 1)

    # -- reading -----------------------------------------------------------------------

    def _pick_rundir(self, run: RunView | None) -> Path | None:
        dirs = sorted(d for d in self.path.iterdir() if (d / "parsl.log").is_file())
        if not dirs:
            return None
        ids = set(self.pool.run_ids)
        for d in dirs:
            with open_regular_file(d / "parsl.log") as fh:
                head = fh.read(1 << 18).decode("utf-8", "replace")
            if any(f"Run id is: {i}" in head for i in ids):
                return d
        if run is not None and not ids and run.live:
            return None  # the pool may name its run id at its next read
        best = max(dirs, key=lambda d: (d / "parsl.log").stat().st_mtime)
        self.notes.append(f"{self.path}: read {best.name}, the newest of {len(dirs)} runs")
        return best

    def _scan(self) -> list[_File]:
        root = self.rundir
        assert root is not None
        for pat in ("*.log", "*/*.log", "*/block-*/*/*.log"):
            for p in root.glob(pat):
                if p not in self.files and p.is_file():
                    parts = p.relative_to(root).parts
                    keys: dict[str, Any] = {}
                    if len(parts) >= 2:
                        keys["executor"] = parts[0]
                    if len(parts) == 4 and parts[1].startswith("block-"):
                        keys["block"] = parts[1].removeprefix("block-")
                        keys["manager"] = parts[2]
                        w = re.fullmatch(r"worker_(\d+)\.log", parts[3])
                        if w:
                            keys["worker"] = int(w[1])
                    self.files[p] = _File(p, "/".join(parts), keys)
        # parsl.log first: its lines calibrate the zone of the files that need one.
        return sorted(self.files.values(), key=lambda f: (f.rel != "parsl.log", f.rel))

    def _read(self, f: _File, now: float) -> None:
        try:
            fh = open_regular_file(f.path)
        except FileNotFoundError:
            return
        except OSError as e:  # not a file any more (a FIFO would block), no permission
            note = f"{f.rel}: cannot read ({e.strerror or type(e).__name__})"
            if note not in self.notes:
                self.notes.append(note)
            return
        with fh:
            st = os.fstat(fh.fileno())  # of the file read, not of what the path is next
            if st.st_size < f.offset:  # replaced or truncated: read it again from the start
                self.notes.append(f"{f.rel}: shrank from {f.offset} to {st.st_size} bytes")
                f.offset, f.rest, f.cur = 0, b"", None
            fh.seek(f.offset)
            while chunk := fh.read(CHUNK):
                f.offset += len(chunk)
                data = f.rest + chunk
                cut = data.rfind(b"\n") + 1
                f.rest = data[cut:]
                for line in data[:cut].decode("utf-8", "replace").splitlines():
                    self._line(f, line)
        cur = f.cur
        if cur is not None and not f.rest and (now - st.st_mtime >= QUIET_S or
                                               cur["size"] < ATOMIC_BYTES):
            self._close(f)

    def _line(self, f: _File, line: str) -> None:
        hit = parse_line(line, FORMATS if f.fmt is None else (FORMATS[f.fmt],))
        if hit is None:
            if f.cur is None:
                f.orphans += 1
            else:
                f.cur["lines"].append(line)
                f.cur["size"] += len(line) + 1
            return
        if f.cur is not None:
            self._close(f)
        if f.fmt is None:
            f.fmt = hit[0]
        m = hit[1]
        f.cur = {"m": m, "lines": [m["msg"]], "size": len(line) + 1,
                 "first": f.records == 0}
        f.records += 1

    def _close(self, f: _File) -> None:
        cur, f.cur = f.cur, None
        assert cur is not None
        m: re.Match[str] = cur["m"]
        g = m.groupdict()
        created = g.get("created")
        wall = wall_clock(m) if created is None or self.zone_s is None else math.nan
        if created is not None and self.zone_s is None:
            self.zone_s = round((float(created) - wall) / TZ_STEP_S) * TZ_STEP_S
        text = "\n".join(cur["lines"]) if len(cur["lines"]) > 1 else cur["lines"][0]
        exc = None
        tb = text.find("Traceback (most recent call last):") if len(cur["lines"]) > 1 else -1
        if tb > 0 and text[tb - 1] == "\n":
            text, exc = text[:tb - 1], text[tb:]
        pid = g.get("pid")
        keys: dict[str, Any] = {"process": int(pid) if pid else None,
                                "processName": g.get("proc"), "threadName": g.get("thread"),
                                "lineno": int(g["lineno"]), "funcName": g.get("func"),
                                "exc_text": exc, "parsl.log_file": f.rel}
        for k, v in f.keys.items():
            keys[f"parsl.{k}"] = v
        msg, what = text, None
        if cur["first"] and f.path.name == "manager.log":
            what = "manager started"
        step = match_step(text, keys)
        if step is not None:
            what, msg = step
        if what == "began" and created is None:
            self.log_run_ids[keys["parsl.run_id"]] = wall
        keys["parsl.event"] = what
        level = LEVELS.get(g["level"], 20)
        self.ready.append({"created": float(created) if created is not None else None,
                           "wall": wall, "ctext": created, "name": g["name"],
                           "level": level, "msg": msg, "message": text, "keys": keys})

    # -- the pool ----------------------------------------------------------------------

    def _fold_pool(self, run: RunView) -> None:
        """Note the new pool rows: the driver's Parsl records (to repeat none of them),
        the pids that write the pool, how far it was read, its ``Run id is:`` records."""
        import numpy as np

        ev = run.events()
        p = self.pool
        if ev.n <= p.rows or "name" not in ev.codes:
            p.rows = max(p.rows, ev.n)
            return
        new = np.arange(p.rows, ev.n)
        p.rows = ev.n
        pool_file = np.array([f.source is None for f in ev.store.files], dtype=bool)
        new = new[pool_file[ev.file[new]]]
        if not len(new):
            return
        t, pid = ev.created[new], ev.ints["process"][new]
        p.t_max = max(p.t_max, float(np.nanmax(t, initial=-math.inf)))
        for x in np.unique(pid[pid >= 0]).tolist():
            p.pids[x] = max(p.pids.get(x, -math.inf),
                            float(np.nanmax(t[pid == x], initial=-math.inf)))
        codes, names = ev.cat("name")
        ours = [i for i, n in enumerate(names) if str(n).startswith(("parsl", "concurrent"))]
        rows = new[np.isin(codes[new], ours)]
        for r, rec in zip(rows.tolist(), ev.records(rows.tolist()), strict=True):
            if rec is None:
                continue
            t = float(ev.created[r])
            line, name = str(rec.get("lineno")), str(rec.get("name"))
            p.keys.add(("f", f"{t:f}", name, line))
            p.keys.add(("ms", math.floor(t * 1000), name, line))
            message = str(ev.message[r] or "")
            if message.startswith("Run id is: "):
                p.run_ids[message.removeprefix("Run id is: ").strip()] = t

    def _zone(self) -> float | None:
        if self.zone_s is None:
            for rid, wall in self.log_run_ids.items():
                if rid in self.pool.run_ids:
                    self.zone_s = round((self.pool.run_ids[rid] - wall) / TZ_STEP_S) * \
                        TZ_STEP_S
                    break
        return self.zone_s

    # -- events ------------------------------------------------------------------------

    def new_events(self, run: RunView | None) -> Iterator[dict[str, Any]]:
        if run is not None:
            self._fold_pool(run)
        live = run is not None and run.live
        if self.rundir is None:
            self.rundir = self._pick_rundir(run)
            if self.rundir is None:
                return
        now = time.time()
        for f in self._scan():
            self._read(f, now)
        zone = self._zone()
        if zone is None and not live:
            zone = self.zone_s = 0.0
            if any(r["created"] is None for r in self.ready):
                self.notes.append(f"{self.rundir}: no line gives the host's zone; read UTC")
        keep: list[dict[str, Any]] = []
        for r in self.ready:
            if r["created"] is None:
                if zone is None:
                    keep.append(r)
                    continue
                r["created"] = r["wall"] + zone
            pid = r["keys"]["process"]
            if run is not None and r["keys"]["parsl.event"] is None and \
                    (pid is None or pid in self.pool.pids):
                k = r["keys"]["lineno"]
                twin = ("f", r["ctext"], r["name"], str(k)) if r["ctext"] else \
                    ("ms", math.floor(r["created"] * 1000 + 1e-3), r["name"], str(k))
                if twin in self.pool.keys:
                    continue
                if live and r["created"] > self.pool.pids.get(pid, self.pool.t_max):
                    keep.append(r)
                    continue
            rec = event(r["created"], _SRC, r["name"], r["message"], (), r["level"],
                        r["keys"])
            rec["msg"] = r["msg"]
            yield rec
        self.ready = keep


register(_is_log, _make, rank=10)
