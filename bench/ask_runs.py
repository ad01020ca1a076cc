"""The runs the ask eval asks about, made here on real academy-py (issue 14).

Twelve runs, each with a label in its workflow-start record: a clean one, a slowdown, a
level shift, a drift, a speed-up, a hung call (cancelled by its caller's timeout), a
shutdown hang, a failed call, a crashed worker process (SIGKILL mid-call, HTTP exchange),
a steered run (the steering agent applies a remedy), a Parsl HTEX run (worker start-up)
and a process pool. ``make_runs(home)`` returns label -> pool directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from academy.agent import Agent, action
from academy.exchange import LocalExchangeFactory
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

__all__ = ["RUNS", "Worker", "crash_run", "make_runs", "stuck_shutdown"]


def _demo(home: Path, fails: bool = False, **kw: Any) -> Path:
    """A demo run's pool; it must succeed unless it ``fails`` by design."""
    from steering.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(academy_home=home, **kw))
    if res.ok == fails:
        raise RuntimeError(f"demo run {kw} failed: {res.error}")
    return Path(res.pool_dir)


class Worker(Agent):
    """One quick action; ``stuck_s`` seconds in its shutdown hook."""

    def __init__(self, stuck_s: float = 0.0) -> None:
        super().__init__()
        self.stuck_s = stuck_s

    @action
    async def step(self) -> int:
        """One step."""
        await asyncio.sleep(0.01)
        return 1

    async def agent_on_shutdown(self) -> None:
        await asyncio.sleep(self.stuck_s)


async def stuck_shutdown(home: Path, logger: str = "eval.shutdown") -> Path:
    """Three workers, three steps each; the third takes 2.5 s to shut down while the
    manager waits 1 s for them (a TimeoutError is logged on ``logger``). The pool."""
    from academy.home import get_academy_home

    from steering.runenv import academy_home_env, pool_logging

    cfg = JSONPoolLogging()
    log = logging.getLogger(logger)
    with academy_home_env(home), pool_logging(cfg):
        pool = get_academy_home() / "logs" / cfg.uuid
        async with await Manager.from_exchange_factory(
                LocalExchangeFactory(), executors=ThreadPoolExecutor(4), log_config=cfg) as m:
            hs = [await m.launch(Worker, kwargs={"stuck_s": s}, log_config=cfg)
                  for s in (0.0, 0.0, 2.5)]
            for _ in range(3):
                for h in hs:
                    await h.step()
            for h in hs:
                await h.shutdown()
            try:
                await m.wait(hs, timeout=1.0)
            except TimeoutError:
                log.exception("agents did not shut down in time")
    return pool


def raw_records(pool: Path) -> list[dict[str, Any]]:
    """Every JSON record of the pool's files, read with json (lines that are not JSON
    skipped): what the tests check the analyses against."""
    out = []
    for f in pool.glob("*.jsonlog"):
        for line in f.read_text().split("\n")[:-1]:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def crash_run(home: Path) -> tuple[Path, float]:
    """A worker process SIGKILLed while it executes a call (process pool, HTTP exchange):
    the pool (its files aged an hour, read as a finished run) and the kill time."""
    wf = subprocess.Popen(
        [sys.executable, "-m", "steering.demo.workflow", "--iterations", "40", "--sleep", "0.3",
         "--executor", "process", "--exchange", "http", "--academy-home", str(home),
         "--step-timeout", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        pool = None
        while pool is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the crash run wrote no pool")
            logs = home / "logs"
            pool = next(iter(logs.iterdir()), None) if logs.exists() else None
            time.sleep(0.05)
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError("the crash run's generator never executed 3 calls")
            recs = raw_records(pool)
            gen = [r for r in recs if r.get("msg", "").startswith("Running agent")
                   and "GeneratorAgent" in r.get("message", "")]
            states = [r.get("academy.action_state") for r in recs
                      if r.get("academy.action") == "next_item"]
            done = states.count("execute_success")
            if gen and done >= 3 and states.count("execute_start") > done:
                break
            time.sleep(0.02)
        t_kill = time.time()
        os.kill(int(gen[0]["process"]), signal.SIGKILL)
        wf.wait(timeout=120)
    finally:
        if wf.poll() is None:
            wf.kill()
            wf.wait()
    old = time.time() - 3600  # read later, as a finished run
    for f in pool.glob("*.jsonlog"):
        os.utime(f, (old, old))
    return pool, t_kill


def _steered(home: Path) -> Path:
    from steering.agent import SteeringOptions
    from steering.demo.straggler import StragglerOptions, run_straggler

    # Poll often, judge quickly (as the tests do).
    fast = SteeringOptions(poll_s=0.05, max_pause_s=0.2, cpu_budget=1.0, check_calls=3,
                           check_timeout_s=10.0, call_timeout_s=5.0, cooldown_s=30.0,
                           observe_every_s=1.0)
    res = run_straggler(StragglerOptions(workers=3, rounds=14, task_s=0.03, slow_after=5,
                                         slow_factor=6.0, academy_home=home, steer="apply",
                                         llm=None, steer_options=fast))
    if not res.ok:
        raise RuntimeError(f"the steered run failed: {res.error}")
    return Path(res.pool_dir)


def _parsl(home: Path) -> Path:
    cwd = home / "parsl-cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(cwd)  # Parsl writes its runinfo/ under the working directory
    try:
        return _demo(home, iterations=4, sleep=0.05, executor="parsl", exchange="http",
                     step_timeout=120, parsl_poll_s=0.5)
    finally:
        os.chdir(old)


RUNS: dict[str, Callable[[Path], Path]] = {
    "clean": lambda h: _demo(h, iterations=16, sleep=0.05),
    "slow": lambda h: _demo(h, iterations=24, sleep=0.02, slow_at=8, slow_len=2,
                            slow_factor=6.0),
    "shift": lambda h: _demo(h, iterations=36, sleep=0.02, slow_at=20, slow_len=16,
                             slow_factor=4.0),
    "drift": lambda h: _demo(h, iterations=40, sleep=0.02, drift=8.0),
    "speedup": lambda h: _demo(h, iterations=30, sleep=0.1, set_sleep_at=10,
                               set_sleep_to=0.02),
    "hung_call": lambda h: _demo(h, True, iterations=14, sleep=0.05, slow_at=12, slow_factor=50.0,
                                 step_timeout=1.5),
    "shutdown": lambda h: asyncio.run(stuck_shutdown(h)),
    "failed": lambda h: _demo(h, True, iterations=10, sleep=0.05, fail_at=5),
    "crash": lambda h: crash_run(h)[0],
    "steered": _steered,
    "parsl": _parsl,
    "processes": lambda h: _demo(h, iterations=8, sleep=0.05, executor="process",
                                 exchange="http", pairs=2),
}


def make_runs(root: Path, only: set[str] | None = None,
              progress: Callable[[str], None] = lambda s: None) -> dict[str, Path]:
    """Make every run (or those in ``only``), each in its own Academy home under ``root``."""
    out = {}
    for label, make in RUNS.items():
        if only and label not in only:
            continue
        progress(f"making the {label} run…")
        out[label] = make(root / label)
    return out
