"""``academy-tui demo``: run a demo workflow on real academy-py and show it.

Scenarios: ``fib`` (the fibonacci launcher/generator pairs) and ``straggler`` (a coordinator
spreading rounds of tasks over workers by steerable weights; one worker slows down).
``--steer MODE`` runs a steering agent alongside.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def demo(args: argparse.Namespace) -> int:
    """Run the demo; with ``--no-tui`` print the pool path, the report and the steering
    actions, otherwise open the app on the run while it is written."""
    from tui.cli.common import CliError

    # confirm: approvals come from another process (the TUI, `steer --approve`), which a
    # local exchange cannot reach.
    exchange = args.exchange or ("http" if args.executor != "thread"
                                 or getattr(args, "steer", None) == "confirm" else "local")
    if args.executor != "thread" and exchange == "local":
        raise CliError("the local exchange cannot cross processes: use --exchange http "
                       f"or redis with --executor {args.executor}")
    host, _, port = args.redis.rpartition(":")
    redis = (host or "127.0.0.1", int(port or 6379))
    try:
        if getattr(args, "scenario", "fib") == "straggler":
            return _straggler(args, exchange, redis)
        return _fib(args, exchange, redis)
    except ValueError as e:
        raise CliError(str(e)) from None


def _fib(args: argparse.Namespace, exchange: str, redis: tuple[str, int]) -> int:
    from features import render, report
    from features.run import Run
    from steering.demo import DemoOptions, run_demo

    sleep = 0.5 if args.sleep is None else args.sleep
    opts = DemoOptions(
        iterations=args.iterations, sleep=sleep, executor=args.executor,
        exchange=exchange,  # type: ignore[arg-type]  # argparse restricts the choices
        pairs=args.pairs, slow_at=args.slow_at,
        slow_factor=args.slow_factor, slow_len=args.slow_len, fail_at=args.fail_at,
        redis_host=redis[0], redis_port=redis[1],
        academy_home=args.home, label="academy-tui demo", steer=getattr(args, "steer", None),
    )
    if not args.no_tui:
        if opts.steer is not None:
            from tui.app import demo_args

            return _live(["steering.demo.workflow", *demo_args(opts), "--steer", opts.steer],
                         args.home)
        try:
            from tui.app import run_demo_app
        except ImportError:
            sys.stderr.write("academy-tui: the terminal app is not in this build; "
                             "running with --no-tui\n")
        else:
            return int(run_demo_app(opts) or 0)
    naive = 2 * sleep * args.iterations
    sys.stderr.write(f"running the fibonacci demo: {args.iterations} iterations x "
                     f"(2 x {sleep} s) = {naive:.2f} s naive, {args.executor} executor, "
                     f"{exchange} exchange\n")
    result = run_demo(opts)
    print(f"pool: {result.pool_dir}")
    if result.parsl_dir is not None:
        print(f"parsl: {result.parsl_dir}")
    run = Run(result.pool_dir)
    run.load()
    sys.stdout.write(render.render_text(report.build(run, expected_s=naive, ranking=False),
                                        width=40 if sys.stdout.isatty() else None))
    _print_steering(result.steering)
    if not result.ok:
        sys.stderr.write(f"academy-tui: the workflow failed: {result.error}\n")
    return 0


def _straggler(args: argparse.Namespace, exchange: str, redis: tuple[str, int]) -> int:
    from features import render, report
    from features.run import Run
    from steering.demo.straggler import StragglerOptions, run_straggler

    task_s = 0.1 if args.sleep is None else args.sleep
    opts = StragglerOptions(workers=args.workers, rounds=args.iterations, task_s=task_s,
                            slow_factor=args.slow_factor, executor=args.executor,
                            exchange=exchange, redis_host=redis[0], redis_port=redis[1],
                            academy_home=args.home, steer=args.steer,
                            label="academy-tui demo straggler",
                            **({"slow_after": args.slow_at} if args.slow_at is not None
                               else {}))
    if not args.no_tui:
        return _live(["steering.demo.straggler", *_straggler_args(opts)], args.home)
    sys.stderr.write(f"running the straggler demo: {opts.workers} workers x {opts.rounds} "
                     f"rounds of {opts.per_round} tasks x {task_s} s, worker "
                     f"{opts.slow_worker} {opts.slow_factor:g}x slower after "
                     f"{opts.slow_after} tasks; steering: {opts.steer or 'off'}\n")
    result = run_straggler(opts)
    print(f"pool: {result.pool_dir}")
    run = Run(result.pool_dir)
    run.load()
    sys.stdout.write(render.render_text(report.build(run, ranking=False),
                                        width=40 if sys.stdout.isatty() else None))
    print(f"makespan: {result.makespan_s:.2f} s")
    _print_steering(result.steering)
    if not result.ok:
        sys.stderr.write(f"academy-tui: the workflow failed: {result.error}\n")
    return 0


def _straggler_args(opts: Any) -> list[str]:
    out = ["--workers", str(opts.workers), "--rounds", str(opts.rounds), "--task-s",
           str(opts.task_s), "--slow-factor", str(opts.slow_factor), "--executor",
           opts.executor, "--exchange", opts.exchange, "--redis-host", opts.redis_host,
           "--redis-port", str(opts.redis_port), "--label", opts.label]
    if opts.slow_after is not None:
        out += ["--slow-after", str(opts.slow_after)]
    if opts.academy_home:
        out += ["--academy-home", str(opts.academy_home)]
    if opts.steer:
        out += ["--steer", opts.steer]
    return out


def _print_steering(events: list[dict[str, Any]] | None) -> None:
    """The calls the steering agent made and what became of them."""
    if events is None:
        return
    shown = [e for e in events if e["kind"] in ("suggestion", "approval", "rejection",
                                                 "check", "escalation")
             or (e["kind"] in ("apply", "revert") and e.get("phase") == "after")]
    applied = sum(1 for e in shown if e["kind"] == "apply" and e.get("result") == "ok")
    print(f"\nSteering ({len(shown)} events, {applied} call(s) applied):")
    for e in shown:
        print(f"  {e['kind']:<11} {e['message']}")


def _live(module_args: list[str], home: str | None) -> int:
    """Run ``python -m MODULE ARGS`` (its logging set-up is process-wide), open the app
    on its pool as soon as the pool exists, stop the workflow when the app closes."""
    from features.pools import RunError, logs_dir
    from tui.app import run_app

    logs = Path(home).expanduser() / "logs" if home else logs_dir()
    before = set(os.listdir(logs)) if logs.exists() else set()
    proc = subprocess.Popen([sys.executable, "-m", *module_args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            new = (set(os.listdir(logs)) - before) if logs.exists() else set()
            if new:
                return int(run_app(str(logs / sorted(new)[0])) or 0)
            if proc.poll() is not None:
                raise RunError("the demo workflow exited before writing its pool")
            if time.monotonic() > deadline:
                raise RunError("the demo workflow did not start within 60 s")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.terminate()
