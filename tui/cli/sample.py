"""``academy-tui sample RUN``: sample the run's processes into its pool, in the foreground.

    academy-tui sample latest                  # every 1 s until the run is over (or Ctrl-C)
    academy-tui sample RUN --interval 0.5 --duration 60

The sampler is :class:`steering.procsampler.Sampler` (what ``observe_processes`` starts from
a workflow). It is the one command that writes into a pool: its own ``procs@HOST-PID.jsonlog``,
read back with ``academy-tui events RUN --where source=procs``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def add_parser(sub: Any) -> None:
    """The ``sample`` subcommand (``sub``: the CLI's subparsers)."""
    s = sub.add_parser("sample", help="sample the run's processes (CPU, memory, threads, "
                                      "files, I/O) into its pool while it runs")
    s.add_argument("run")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    s.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: when the run is over)")
    s.add_argument("--reader", choices=("auto", "proc", "psutil"), default="auto",
                   help="auto: /proc on Linux, psutil elsewhere")
    s.set_defaults(fn=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    from features.pools import resolve
    from steering.procsampler import Sampler
    from tui.cli.common import CliError

    if not args.interval > 0:
        raise CliError(f"--interval must be > 0, got {args.interval:g}")
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration must be > 0, got {args.duration:g}")
    home = Path(args.home).expanduser() if getattr(args, "home", None) else None
    sampler = Sampler(resolve(args.run, home), interval=args.interval, reader=args.reader)
    sys.stderr.write(f"academy-tui: sampling the processes of {sampler.pool.name} every "
                     f"{args.interval:g} s into {sampler.path.name} (Ctrl-C stops)\n")
    stop = threading.Event()
    old = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        reason = sampler.run(args.duration, stop)
    finally:
        signal.signal(signal.SIGINT, old)
    for pid, why in sorted(sampler.unseen.items()):
        sys.stderr.write(f"academy-tui: pid {pid} {why}\n")
    if not sampler.written:
        sys.stderr.write(f"academy-tui: nothing sampled, nothing written: {reason}\n")
        return 1
    print(f"{sampler.written} samples of {len(sampler.seen)} processes in "
          f"{sampler.path}: stopped because {reason}")
    return 0
