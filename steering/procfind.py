"""Which processes are the run's, on this host (the sampler's half that finds them).

The pool names its writers: each file's first record carries the ``process`` (pid) that
wrote it; files are looked at as they appear. A named pid is the run's here when it is alive,
started before its file's first record, and holds a file of the pool open or descends from a
process of the run; else it is another host's pid (pool records carry no host) or gone, and
is named once as ``unseen``. The writers' descendants (HTEX managers and workers, the HTTP
exchange, pool workers) are found by their parent pids: every look lists the pids new since
the last one (all of them again once a new process joins: its children may be older).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import orjson

from steering.procread import Gone, Reader

FILE_PREFIX = "procs@"
"""Sampler files start so; they name no process of the run."""
CMDLINE_HEAD = 160
"""Characters of the command line kept in each record."""
FIRST_LINE_MAX = 1 << 20
"""Bytes of a file's first line read to find its writer (Academy's records: ~1 KB, 66 KB seen)."""
VERIFY_TRIES = 3
"""Looks at an alive pid that holds no pool file open before it is taken for another host's:
its parent may join the run a look later."""


@dataclasses.dataclass(slots=True)
class Tracked:
    """A process of the run being sampled, named by ``(pid, create_time)``."""

    create_time: float
    origin: str
    name: str
    cmdline: str
    last_cpu: float | None = None
    last_t: float = 0.0
    samples: int = 0


def first_record(path: Path) -> dict[str, Any] | None:
    """The first record of a pool file (``None``: not complete yet; ``{}``: not a record)."""
    try:
        with open(path, "rb") as fh:
            line = fh.readline(FIRST_LINE_MAX)
    except OSError:
        return None
    if not line.endswith(b"\n"):
        # Not written yet, or written in pieces: look again next time; past the limit, give
        # up (never read a megabyte at every look).
        return {} if len(line) >= FIRST_LINE_MAX else None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return rec if isinstance(rec, dict) else {}


class RunProcesses:
    """The run's processes found so far (``tracked``), and the pids it could not sample."""

    def __init__(self, pool: Path, own_file: str, reader: Reader) -> None:
        self.pool = pool
        self.reader = reader
        self.prefix = os.path.realpath(pool) + os.sep
        """What the run's processes' open pool files start with, as the OS names them."""
        self.tracked: dict[int, Tracked] = {}
        self.done: set[tuple[int, float]] = set()
        self.writers: list[int] = []
        """Pids that wrote a file of the pool (and seeds), in the order they were found:
        the run is over when none of them holds a file of the pool open."""
        self.seen: list[int] = []
        """Every process sampled, in the order it was found."""
        self.files: dict[str, int | None] = {own_file: None}
        self.own_file = own_file
        self.pending: dict[int, list[Any]] = {}
        """Pid -> [file, first created, tries]: alive here, not yet shown to be the run's."""
        self.unseen: dict[int, str] = {}
        self.excluded = {os.getpid()}
        self.known: set[int] = set()
        self.seen_open = False
        """A process of the run was seen holding a file of the pool open."""
        self._last_open = 0.0

    def _emit(self, kind: str, msg: str, args: tuple[Any, ...],
              keys: dict[str, Any] | None = None, created: float | None = None) -> None:
        raise NotImplementedError

    def _track(self, pid: int, origin: str, create_time: float | None,
               writer: bool = False) -> bool:
        if pid in self.tracked or pid in self.excluded:
            return False
        try:
            ct = self.reader.create_time(pid) if create_time is None else create_time
        except Gone:
            return False
        if (pid, ct) in self.done:
            return False
        name, argv = self.reader.describe(pid)
        self.tracked[pid] = Tracked(ct, origin, name, " ".join(argv)[:CMDLINE_HEAD])
        self.known.clear()  # look at every pid again: its children may be older than now
        self.seen.append(pid)
        if writer and pid not in self.writers:
            self.writers.append(pid)
        return True

    def _discover(self) -> None:
        """New files of the pool: the pids they name become candidates."""
        try:
            names = [e.name for e in os.scandir(self.pool) if e.name.endswith(".jsonlog")]
        except OSError:
            names = []
        for name in names:
            if self.files.get(name) is not None or name == self.own_file:
                continue
            rec = first_record(self.pool / name)
            if rec is None:
                self.files[name] = None
                continue
            try:
                pid, t = int(rec.get("process")), float(rec.get("created"))  # type: ignore
            except (TypeError, ValueError):
                pid, t = -1, 0.0
            if pid <= 0:
                self.files[name] = -1  # no writer named: nothing to sample
                continue
            self.files[name] = pid
            if name.startswith(FILE_PREFIX) or rec.get("source") is not None:
                self.excluded.add(pid)  # another sampler (or source): not the run's
                if self.tracked.pop(pid, None) is not None:  # taken for a child so far
                    self.seen.remove(pid)
                continue
            if pid in self.tracked:  # found as a child first: it writes the pool too
                if pid not in self.writers:
                    self.writers.append(pid)
            elif pid not in self.unseen:
                self.pending.setdefault(pid, [name, t, 0])
        for pid, cand in list(self.pending.items()):
            self._verify(pid, *cand)

    def _verify(self, pid: int, name: str, t_first: float, tries: int) -> None:
        if pid in self.tracked:  # found as a child meanwhile
            self.pending.pop(pid)
            self.writers.append(pid)
            return
        try:
            ct = self.reader.create_time(pid)
        except Gone:
            self._unseen(pid, name, "is not alive on this host: it exited before it was "
                                    "sampled, or it runs on another host")
            return
        if ct > t_first + 1.0:
            self._unseen(pid, name, "names a process here that started after the file's "
                                    "first record: another host's pid, in use here")
            return
        if self.reader.holds_open(pid, self.prefix, FILE_PREFIX):
            self.seen_open = True
            self._last_open = time.monotonic()
        elif not self._descends(pid):
            if tries < VERIFY_TRIES:
                self.pending[pid][2] = tries + 1
                return
            self._unseen(pid, name, "is alive here but holds no file of the pool open and "
                                    "descends from no process of the run: taken for another "
                                    "host's process")
            return
        self.pending.pop(pid, None)
        self._track(pid, f"wrote {name}", ct, writer=True)

    def _descends(self, pid: int) -> bool:
        for _ in range(64):
            try:
                pid = self.reader.ppid(pid)[0]
            except Gone:
                return False
            if pid in self.tracked:
                return True
            if pid <= 1:
                return False
        return False

    def _unseen(self, pid: int, name: str, why: str) -> None:
        self.pending.pop(pid, None)
        self.unseen[pid] = why
        self._emit("unseen", "pid %d (%s) %s; not sampled", (pid, name, why),
                   {"proc.pid": pid, "proc.file": name})

    def _children(self) -> None:
        """Pids new since the last look whose parent is a process of the run (to a fixed
        point: a grandchild may be listed before its parent)."""
        try:
            now = set(self.reader.pids())
        except OSError:
            return
        fresh = now - self.known
        parents: dict[int, tuple[int, float]] = {}
        for pid in fresh:
            if pid not in self.tracked and pid not in self.excluded:
                with contextlib.suppress(Gone, OSError):
                    parents[pid] = self.reader.ppid(pid)
        grew = True
        while grew:
            grew = False
            for pid, (ppid, ct) in list(parents.items()):
                if ppid in self.tracked:
                    del parents[pid]
                    if self._track(pid, f"child of {ppid}", ct):
                        grew = True
        self.known = now
