"""``academy-tui steer``: the steering trail of a run, steering it from here, approvals.

    academy-tui steer RUN                                  # what steering did (from the pool,
                                                           # tui/cli/trail.py)
    academy-tui steer RUN --exchange redis://HOST:PORT     # attach a steering agent now
    academy-tui steer RUN --approve s3          # over the exchange in its session file
    academy-tui steer RUN --exchange http://HOST:PORT --approve s3

Only verified records count (``features.trail``); approvals go where this user's session
file says, with its proof (``steering.attach``), never where a pool record points.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any


def _home(args: argparse.Namespace) -> Any:
    from pathlib import Path

    return Path(args.home).expanduser() if getattr(args, "home", None) else None


def steer(args: argparse.Namespace) -> int:
    """Dispatch on the flags (see the module docstring)."""
    from features.pools import resolve

    path = resolve(args.run, _home(args))
    if not (args.approve or args.reject or args.exchange):
        # Listing imports neither academy nor the steering agent (whose detector module
        # took 2 s of a 3 s listing to import).
        from tui.cli.trail import print_trail

        return print_trail(path, args)
    from steering.attach import AttachError
    from steering.knobs import KnobsError
    from steering.wire import WireError
    from tui.cli.common import CliError

    try:
        if args.approve or args.reject:
            return _decide(args, path)
        return _attach(args, path)
    except (AttachError, WireError, KnobsError) as e:
        raise CliError(str(e)) from None


def _decide(args: argparse.Namespace, path: Any) -> int:
    from features.run import Run
    from steering.attach import prepare_decision, send_decision

    verb, key = ("approve", args.approve) if args.approve else ("reject", args.reject)
    run = Run(path)
    run.load()
    decision = prepare_decision(run, key, args.agent, args.exchange or "")
    _quiet_closed_loop_noise()
    res = run_quietly(send_decision(decision, verb))
    if res.get("denied"):
        print(f"{decision.suggestion.key}: {verb} refused by the steering agent: "
              f"{res['denied']}")
        return 1
    line = f"{decision.suggestion.key}: {res.get('status')}"
    if res.get("action"):
        line += f" ({res['action']}({_args(res.get('args'))}) on {res.get('target')})"
    print(line)
    wanted = {"approve": ("applied", "resolved", "improved"), "reject": ("rejected",)}[verb]
    return 0 if res.get("status") in wanted else 1


def run_quietly(coro: Any) -> Any:
    """``asyncio.run(coro)`` without the event loop's teardown chatter: a connection that
    failed leaves aiohttp sessions that report themselves as unclosed when collected, which
    would add lines after our one-line error."""
    import gc
    import logging

    def handler(loop: Any, context: dict[str, Any]) -> None:
        if "Unclosed" in str(context.get("message", "")):
            return
        loop.default_exception_handler(context)

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(handler)
        try:
            return await coro
        finally:
            gc.collect()  # collect them while our handler is in place

    aio = logging.getLogger("asyncio")
    level = aio.level
    try:
        return asyncio.run(main())
    finally:
        aio.setLevel(logging.CRITICAL)  # a last straggler after the loop closed
        gc.collect()
        aio.setLevel(level)


def _args(args: Any) -> str:
    if not isinstance(args, dict):
        return ""
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _attach(args: argparse.Namespace, path: Any) -> int:
    from steering.agent import SteeringOptions
    from steering.attach import attach
    from steering.knobs import load_knobs
    from steering.wire import exchange_factory

    exchange_factory(args.exchange)  # a bad address fails before anything starts
    knobs = load_knobs(args.knobs) if args.knobs else None  # so does a bad knobs file

    def show(e: dict[str, Any]) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(e["t"]))
        print(f"{stamp} {e['kind']:<12} {e['message']}", flush=True)

    targets = [t.strip() for t in (args.targets or "").split(",") if t.strip()] or None
    if knobs:
        n = sum(len(s.knobs) for a in knobs.values() for s in a.values())
        sys.stderr.write(f"knobs from {args.knobs}: {n} knob(s) of "
                         f"{', '.join(sorted(knobs))}\n")
    elif not any(":" in t for t in targets or ()):
        sys.stderr.write("academy-tui: note: no agent class named with --targets "
                         "pkg.module:Class; only classes this process has imported can be "
                         "steered (the pool never names code to import)\n")
    _quiet_closed_loop_noise()
    sys.stderr.write(f"steering {path.name} in mode {args.mode} over {args.exchange} "
                     "(Ctrl-C stops)\n")
    res = run_quietly(attach(path, args.exchange, mode=args.mode, targets=targets,
                             llm=None if args.no_llm else "auto",
                             options=SteeringOptions(poll_s=args.poll),
                             duration_s=args.duration, idle_s=args.idle, on_event=show,
                             knobs=knobs))
    applied = sum(1 for e in res.history if e["kind"] == "apply"
                  and e.get("phase") == "after" and e.get("result") == "ok")
    st = res.stats
    suggested = len(res.suggestions) if st else sum(1 for e in res.history
                                                    if e["kind"] == "suggestion")
    line = f"stopped ({res.reason}): {suggested} suggestion(s), {applied} applied"
    if st:
        line += (f"; read {st.get('records', 0)} records, CPU {st.get('cpu_s', 0.0):.2f}s "
                 f"over {st.get('wall_s', 0.0):.1f}s")
        if st.get("judge_every_s"):  # a big run: full judgements kept to the CPU budget
            line += f", judged in full at most every {st['judge_every_s']:.0f}s"
    else:  # the workflow's exchange went away (it usually ends with the workflow)
        line += "; the run's exchange went away, most likely because the workflow ended"
    print(line)
    return 0


def _quiet_closed_loop_noise() -> None:
    """When the workflow's HTTP exchange goes away, aiohttp responses left inside Academy's
    client are collected after our event loop closed and print "Exception ignored ...
    Event loop is closed" tracebacks: harmless teardown noise in this process (ours), so
    only that one is dropped; anything else reaches the usual hook."""
    default = sys.unraisablehook

    def hook(u: Any) -> None:
        where = str(getattr(u.object, "__module__", "")) + type(u.object).__module__
        if isinstance(u.exc_value, RuntimeError) and "Event loop is closed" in \
                str(u.exc_value) and "aiohttp" in where:
            return
        default(u)

    sys.unraisablehook = hook
