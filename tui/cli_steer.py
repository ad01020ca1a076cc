"""``academy-tui steer``: the steering trail of a run, steering it from here, approvals.

    academy-tui steer RUN                                  # what steering did (from the pool)
    academy-tui steer RUN --exchange redis://HOST:PORT     # attach a steering agent now
    academy-tui steer RUN --approve s3          # over the exchange the agent recorded
    academy-tui steer RUN --exchange http://HOST:PORT --approve s3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

TRAIL_KEYS = ("steering.kind", "steering.id", "steering.incident", "steering.action",
              "steering.args", "steering.phase", "steering.result", "steering.mode")


def _home(args: argparse.Namespace) -> Any:
    from pathlib import Path

    return Path(args.home).expanduser() if getattr(args, "home", None) else None


def steer(args: argparse.Namespace) -> int:
    """Dispatch on the flags (see the module docstring)."""
    from features.runs import resolve
    from steering.attach import AttachError
    from tui.cli import CliError

    path = resolve(args.run, _home(args))
    try:
        if args.approve or args.reject:
            return _decide(args, path)
        if args.exchange:
            return _attach(args, path)
    except AttachError as e:
        raise CliError(str(e)) from None
    return _trail(path)


def _decide(args: argparse.Namespace, path: Any) -> int:
    from steering.attach import call_steering

    action, sid = ("approve", args.approve) if args.approve else ("reject", args.reject)
    res = asyncio.run(call_steering(path, args.exchange or "", action, sid, args.agent))
    line = f"{res.get('id')}: {res.get('status')}"
    if res.get("action"):
        line += f" ({res['action']}({_args(res.get('args'))}) on {res.get('target')})"
    print(line)
    wanted = {"approve": ("applied", "resolved", "improved"), "reject": ("rejected",)}[action]
    return 0 if res.get("status") in wanted else 1


def _args(args: Any) -> str:
    if not isinstance(args, dict):
        return ""
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _attach(args: argparse.Namespace, path: Any) -> int:
    from steering.agent import SteeringOptions
    from steering.attach import attach, exchange_factory

    exchange_factory(args.exchange)  # a bad address fails before anything starts

    def show(e: dict[str, Any]) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(e["t"]))
        print(f"{stamp} {e['kind']:<12} {e['message']}", flush=True)

    targets = [t for t in (args.targets or "").split(",") if t] or None
    _quiet_closed_loop_noise()
    sys.stderr.write(f"steering {path.name} in mode {args.mode} over {args.exchange} "
                     "(Ctrl-C stops)\n")
    res = asyncio.run(attach(path, args.exchange, mode=args.mode, targets=targets,
                             llm=None if args.no_llm else "auto",
                             options=SteeringOptions(poll_s=args.poll),
                             duration_s=args.duration, idle_s=args.idle, on_event=show))
    applied = sum(1 for e in res.history if e["kind"] == "apply"
                  and e.get("phase") == "after" and e.get("result") == "ok")
    st = res.stats
    suggested = len(res.suggestions) if st else sum(1 for e in res.history
                                                    if e["kind"] == "suggestion")
    line = f"stopped ({res.reason}): {suggested} suggestion(s), {applied} applied"
    if st:
        line += (f"; read {st.get('records', 0)} records, CPU {st.get('cpu_s', 0.0):.2f}s "
                 f"over {st.get('wall_s', 0.0):.1f}s")
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


def _trail(path: Any) -> int:
    from features.run import Run

    run = Run(path)
    run.load()
    rows = run.select("has:steering.kind")
    if not len(rows):
        print(f"no steering events in {path.name}")
        return 0
    ev = run.events()
    cols = {k: ev.column(k) for k in (*TRAIL_KEYS, "message")}
    for r in rows:
        t = float(ev.created[r]) - ev.t0
        kind = str(cols["steering.kind"][r])
        extra = [str(cols[k][r]) for k in ("steering.id", "steering.phase", "steering.result")
                 if cols[k][r] not in (None, "None")]
        print(f"{t:9.3f}s {kind:<12} {' '.join(extra):<22} {cols['message'][r]}")
    _summary(cols, rows)
    return 0


def _summary(cols: dict[str, Any], rows: Any) -> None:
    kinds = [str(cols["steering.kind"][r]) for r in rows]
    applied = sum(1 for r in rows if cols["steering.kind"][r] == "apply"
                  and cols["steering.phase"][r] == "after"
                  and cols["steering.result"][r] == "ok")
    counts = {k: kinds.count(k) for k in ("incident", "suggestion", "approval", "rejection",
                                          "check", "escalation")}
    reverted = sum(1 for r in rows if cols["steering.kind"][r] == "revert"
                   and cols["steering.phase"][r] == "after")
    print(json.dumps({**counts, "applied": applied, "reverted": reverted}))
