"""``observe_processes(cfg)``: sample the run's processes from the workflow itself.

    cfg = JSONPoolLogging()
    with log_context(cfg), observe_processes(cfg, interval=1.0):
        ...  # the workflow; every process of the run gets a record per second in the pool

It starts the sampler (:class:`steering.procsampler.Sampler`) in a process of its own, a
child of the workflow, so sampling never takes the workflow's GIL or event loop, and a
sampler that fails leaves the run alone. The sampler stops when the run is over on this
host (see :mod:`steering.procsampler`), when ``duration`` is up, or when the returned
:class:`ProcessObserver` is stopped (leaving the ``with`` block does that). The pool is the
one ``cfg`` names: ``$ACADEMY_HOME/logs/<cfg.uuid>/``, as Academy resolves it in this process.

``python -m steering.observe POOL_DIR [--interval S] [--duration S]`` is the sampler's entry
point (``academy-tui sample RUN`` runs the same sampler in the foreground).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ProcessObserver", "observe_processes", "pool_dir_of"]


def pool_dir_of(log_config: Any) -> Path:
    """The pool directory of Academy's ``JSONPoolLogging`` (its ``uuid`` under
    ``$ACADEMY_HOME/logs``), or ``log_config`` itself when it is a path."""
    if isinstance(log_config, str | os.PathLike):
        return Path(log_config)
    uid = getattr(log_config, "uuid", None)
    if not uid:
        raise TypeError("observe_processes needs Academy's JSONPoolLogging (its uuid names "
                        f"the pool) or a pool directory, got {type(log_config).__name__}")
    from academy.home import get_academy_home

    return get_academy_home() / "logs" / str(uid)


class ProcessObserver:
    """A running sampler process. ``stop()`` ends it (it writes its ``stop`` record first)."""

    def __init__(self, proc: subprocess.Popen[bytes], pool_dir: Path) -> None:
        self.proc = proc
        self.pool_dir = pool_dir

    @property
    def pid(self) -> int:
        """The sampler's pid: the ``process`` of its records."""
        return self.proc.pid

    @property
    def path(self) -> Path | None:
        """Its file in the pool (``None`` until it wrote its first record)."""
        from steering.procsampler import FILE_PREFIX

        found = sorted(self.pool_dir.glob(f"{FILE_PREFIX}*-{self.pid}.jsonlog"))
        return found[0] if found else None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the sampler to stop, wait up to ``timeout`` s (then kill it); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Windows: TerminateProcess, no stop record
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def __enter__(self) -> ProcessObserver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def observe_processes(log_config: Any, *, interval: float = 1.0,
                      duration: float | None = None, reader: str = "auto") -> ProcessObserver:
    """Start sampling the processes of the run that writes with ``log_config`` (Academy's
    ``JSONPoolLogging``, or a pool directory) every ``interval`` seconds; this process is
    one of them from the start, whether or not it logs into the pool yet."""
    if not interval > 0:
        raise ValueError(f"interval must be > 0, got {interval!r}")
    pool = pool_dir_of(log_config).expanduser().resolve()
    cmd = [sys.executable, "-m", "steering.observe", str(pool), "--interval", repr(interval),
           "--seed", str(os.getpid()), "--reader", reader]
    if duration is not None:
        cmd += ["--duration", repr(float(duration))]
    env = dict(os.environ)
    # The child imports this package from where this process does (a source checkout too).
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    return ProcessObserver(proc, pool)


def main(argv: list[str] | None = None) -> int:
    from steering.procsampler import Sampler

    p = argparse.ArgumentParser(prog="python -m steering.observe",
                                description="Sample a run's processes into its pool.")
    p.add_argument("pool", help="the run's pool directory")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--seed", type=int, action="append", default=[],
                   help="a pid of the run known before the pool names it")
    p.add_argument("--reader", choices=("auto", "proc", "psutil"), default="auto")
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C in the workflow's terminal reaches this child too: it keeps watching the
    # workflow wind down and stops when the run is over.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sampler = Sampler(args.pool, interval=args.interval, reader=args.reader,
                      seed_pids=tuple(args.seed))
    sampler.run(args.duration, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
