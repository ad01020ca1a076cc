"""The kernel's view of a run: a sampler of its processes that visits politely.

The sampler behind ``observe_processes(cfg)`` (:mod:`steering.observe`) and
``academy-tui sample RUN``. It writes, every ``interval`` seconds, one record per process of the
run (CPU %, RSS, threads, open file descriptors, I/O counters, state, parent, the head of its
command line) into a file of its own in the run's pool, ``procs@HOST-PID.jsonlog``. Records
have Academy's shape (``created``, ``name`` = ``academy_tui.procs``, ``levelname``/``levelno``,
``msg``/``message``, ``process`` = the sampler's pid) plus ``source`` = ``procs`` and
``proc.*`` keys, the sampled process in ``proc.pid``; every reader of the pool sees them, and
:mod:`features.procs` joins them to the agents by pid and time.

Which processes: those that write the pool and their descendants, on this host
(:mod:`steering.procfind`; a pool pid of another host is named once as ``unseen``).

Polite: it only reads (``/proc`` or psutil, :mod:`steering.procread`), writes nothing but
its own file, runs in its own process (``observe_processes`` starts one, so a sampler never
takes the workflow's GIL or event loop), and stops by itself when the run is over: every
process of the run gone, or none of them holding a file of the pool open for ``grace_s``
(a notebook driver outlives its runs). Measured cost: ``bench/bench_procs.py``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from steering.procfind import FILE_PREFIX, RunProcesses, Tracked
from steering.procread import Gone, Reading, make_reader

__all__ = ["FILE_PREFIX", "NAME", "Sampler"]

NAME = "academy_tui.procs"
"""The records' logger-like name."""
SAMPLE_MSG = "pid %d %s: cpu %.1f%%, rss %.1f MB, %d threads"


_Rec = tuple[bool, float, bytes]


class Sampler(RunProcesses):
    """Samples the processes of the pool at ``pool_dir``; :meth:`run` until the run is over.

    ``seed_pids``: processes of the run known before any file names them (the workflow that
    called :func:`observe_processes`). ``reader``: ``auto``, ``proc`` or ``psutil``."""

    def __init__(self, pool_dir: str | os.PathLike[str], *, interval: float = 1.0,
                 reader: str = "auto", seed_pids: tuple[int, ...] = (),
                 wait_s: float = 60.0, grace_s: float | None = None) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self.pool = Path(pool_dir)
        self.interval = float(interval)
        self.me = os.getpid()
        self.host = socket.gethostname()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.host)[:64] or "host"
        self.path = self.pool / f"{FILE_PREFIX}{safe}-{self.me}.jsonlog"
        RunProcesses.__init__(self, self.pool, self.path.name, make_reader(reader))
        self.wait_s = wait_s
        self.grace_s = max(5.0, 3 * self.interval) if grace_s is None else grace_s
        self.written = 0
        """Samples written (see :meth:`tick` for those that are not)."""
        self.last_written = 0.0
        self.reason: str | None = None
        """Why :meth:`run` stopped."""
        self._started = time.monotonic()
        self._fh: Any = None
        self._holder = -1
        self._out: list[_Rec] = []
        """Records made since the last write: (is a sample, created, JSON)."""
        self._held: list[_Rec] = []
        for pid in seed_pids:
            self._track(pid, "the workflow that started the sampler", None, writer=True)

    # -- records -------------------------------------------------------------------------

    def _emit(self, kind: str, msg: str, args: tuple[Any, ...],
              keys: dict[str, Any] | None = None, created: float | None = None) -> None:
        created = time.time() if created is None else created
        rec: dict[str, Any] = {
            "created": created, "name": NAME,
            "levelname": "INFO", "levelno": 20, "msg": msg, "message": msg % args,
            "source": "procs", "process": self.me, "processName": "academy-tui sample",
            "proc.kind": kind, "proc.host": self.host}
        rec.update((k, v) for k, v in (keys or {}).items() if v is not None)
        self._out.append((kind == "sample", created, orjson.dumps(rec)))

    def _write(self, recs: list[_Rec]) -> None:
        if not recs:
            return
        if self._fh is None and not any(r[0] for r in recs):
            self._out = recs + self._out  # no file for notes alone: a finished run stays as is
            return
        if self._fh is None:
            self.pool.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 (held for the sampler's life)
            start, self._out = self._out, []
            self._emit("start", "sampling the processes of run %s on %s every %g s (%s); "
                       "processes on other hosts cannot be sampled from here",
                       (self.pool.name, self.host, self.interval, self.reader.name),
                       {"proc.interval_s": self.interval, "proc.reader": self.reader.name},
                       created=min(r[1] for r in recs))
            recs, self._out = self._out + recs, start
        self._fh.write(b"\n".join(r[2] for r in recs) + b"\n")
        self._fh.flush()
        self.written += sum(1 for r in recs if r[0])
        self.last_written = time.time()

    # -- sampling ------------------------------------------------------------------------

    def _sample(self) -> None:
        for pid, tr in list(self.tracked.items()):
            try:
                r = self.reader.read(pid, tr.create_time)
            except Gone:
                self._exit(pid, tr, "exited")
                continue
            self._record(tr, r)
            if r.status in ("zombie", "dead"):
                self._exit(pid, tr, "exited (a zombie: its parent has not reaped it yet)")

    def _record(self, tr: Tracked, r: Reading) -> None:
        now = time.time()
        cpu = r.cpu_user_s + r.cpu_system_s
        if tr.last_cpu is None:  # the first look: the average since the process started
            window = max(now - r.create_time, 1e-3)
            pct = cpu / window * 100
        else:
            window = max(now - tr.last_t, 1e-3)
            pct = max(cpu - tr.last_cpu, 0.0) / window * 100
        tr.last_cpu, tr.last_t = cpu, now
        tr.samples += 1
        # Built here rather than through _emit: this runs for every process every interval.
        rec = {"created": now, "name": NAME, "levelname": "INFO", "levelno": 20,
               "msg": SAMPLE_MSG,
               "message": SAMPLE_MSG % (r.pid, tr.name, pct, r.rss / 1e6, r.threads),
               "source": "procs", "process": self.me, "processName": "academy-tui sample",
               "proc.kind": "sample", "proc.host": self.host, "proc.pid": r.pid,
               "proc.ppid": r.ppid, "proc.name": tr.name, "proc.cmdline": tr.cmdline,
               "proc.create_time": r.create_time, "proc.status": r.status,
               "proc.cpu_pct": round(pct, 2), "proc.cpu_window_s": round(window, 4),
               "proc.cpu_user_s": r.cpu_user_s, "proc.cpu_system_s": r.cpu_system_s,
               "proc.rss_bytes": r.rss, "proc.threads": r.threads, "proc.origin": tr.origin}
        if r.fds is not None:
            rec["proc.fds"] = r.fds
        if r.read_bytes is not None:
            rec["proc.read_bytes"], rec["proc.write_bytes"] = r.read_bytes, r.write_bytes
        if r.read_chars is not None:
            rec["proc.read_chars"], rec["proc.write_chars"] = r.read_chars, r.write_chars
        self._out.append((True, now, orjson.dumps(rec)))

    def _exit(self, pid: int, tr: Tracked, how: str) -> None:
        del self.tracked[pid]
        self.done.add((pid, tr.create_time))
        self._emit("exit", "pid %d %s %s", (pid, tr.name, how), {
            "proc.pid": pid, "proc.name": tr.name, "proc.create_time": tr.create_time,
            "proc.samples": tr.samples})

    def _logs_open(self) -> bool | None:
        """Whether a process of the run holds a file of the pool open now; ``None`` when it
        cannot be told (no file of the pool yet, or none ever seen open: another user's
        processes, say)."""
        for pid in sorted(self.writers, key=lambda p: p != self._holder):
            if pid in self.tracked and self.reader.holds_open(pid, self.prefix, FILE_PREFIX):
                self._holder, self.seen_open = pid, True
                self._last_open = time.monotonic()
                return True
        return False if self.seen_open else None

    def tick(self) -> None:
        """One look: new files, new children, then a record per process. The records are
        written while the run's logs are open; after they all closed they are held (and
        dropped when they stay closed for ``grace_s``), so the run's end stays where its own
        records put it. Before any log opens (``observe_processes`` called first), there is
        no run yet: the samples are dropped."""
        self._discover()
        self._children()
        self._sample()
        state = self._logs_open()
        if state is True or (state is None and any(
                v is not None and v >= 0 for v in self.files.values())):
            recs, self._held, self._out = self._held + self._out, [], []
            self._write(recs)
        elif state is False:
            self._held.extend(self._out)
            self._out = []
        else:
            self._out = [r for r in self._out if not r[0]]

    def over(self) -> str | None:
        """Why sampling should stop now, or ``None``."""
        now = time.monotonic()
        if not self.tracked and not self.pending:
            if self.seen:
                return "every process of the run on this host has exited"
            if self.unseen:
                return (f"no process of the run is alive on this host ({len(self.unseen)} "
                        "pids of the pool are gone or on another host)")
            if now - self._started > self.wait_s:
                return f"no process of the run appeared within {self.wait_s:g} s"
        if self.seen_open and now - self._last_open >= self.grace_s:
            return (f"no process of the run has held a file of the pool open for "
                    f"{self.grace_s:g} s: the run is over")
        return None

    def run(self, duration: float | None = None,
            stop: threading.Event | None = None) -> str:
        """Sample until the run is over, ``duration`` seconds passed or ``stop`` is set;
        returns why it stopped. The ``stop`` record is dated at the last record written
        (the time it stopped is its ``proc.stopped_at``): a sampler that noticed the end
        seconds later must not move the run's end. Nothing is written when nothing was
        sampled, so sampling a finished run leaves its pool as it was."""
        stop = stop or threading.Event()
        start = time.monotonic()
        cpu0 = time.process_time()
        reason: str | None = None
        due = start
        try:
            while reason is None:
                self.tick()
                reason = self.over()
                if reason is not None:
                    break
                due = max(due + self.interval, time.monotonic())  # behind: skip, no burst
                if duration is not None and due - start >= duration:
                    reason = f"the duration ({duration:g} s) is over"
                elif stop.wait(max(0.0, due - time.monotonic())):
                    reason = "asked to stop"
        finally:
            wall = time.monotonic() - start
            cpu = time.process_time() - cpu0
            reason = reason or "failed"
            self.reason = reason
            if self._fh is not None:  # what is held or unwritten stays out (see tick)
                self._out = []
                self._emit("stop", "stopped: %s; %d samples of %d processes in %.1f s",
                           (reason, self.written, len(self.seen), wall),
                           {"proc.reason": reason, "proc.samples": self.written,
                            "proc.processes": len(self.seen), "proc.wall_s": round(wall, 3),
                            "proc.sampler_cpu_s": round(cpu, 4),
                            "proc.stopped_at": time.time()}, created=self.last_written)
                recs, self._out = self._out, []
                self._write(recs)
                self._fh.close()
        return reason
