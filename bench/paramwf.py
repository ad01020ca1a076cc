"""A workflow written as its author would, not shaped for steering (issue 15's proof).

Workers in spawned processes on Academy's HTTP exchange compute sums of squares; from call
``slow_from`` on, every call of the slow worker does ``slow_factor`` times the work (a
cache went cold, say). The workers already have what an author writes for tuning: a
``set_param(name, value)`` setter over a list of tunable names and ``get_param(name)``;
``scale`` shrinks the work per call. Nothing here imports academy-tui: there is no
``@steerable``, and ``compute`` and ``get_param`` have no docstring. A steering agent is
attached from outside with a knobs file (:data:`KNOBS`)::

    python bench/paramwf.py --home H --port 8123 --calls 60 &
    academy-tui --home H steer RUN --exchange http://127.0.0.1:8123 --mode apply \\
        --knobs KNOBS.toml

It prints ``pool: PATH`` first and ``makespan: S`` at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from academy.agent import Agent, action
from academy.exchange.cloud import spawn_http_exchange
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.logging.helpers import log_context
from academy.manager import Manager

log = logging.getLogger("paramwf")

KNOBS = """\
[[knob]]
agent = "paramwf.Worker"
action = "set_param"
named = "name"
value = "value"
current = "get_param"
max_per_minute = 12
knobs.scale = { lo = 0.05, hi = 1.0, on_slow = "decrease", factor = 0.5 }
"""
"""The knobs file the steering agent is given (the author's own setter, declared from
outside the workflow's code)."""


class Worker(Agent):
    """Sums of squares; slower from call ``slow_from`` on when ``slow``."""

    TUNABLE = ("scale", "batch")

    def __init__(self, call_s: float, slow: bool, slow_from: int, slow_factor: float) -> None:
        super().__init__()
        self.call_s, self.slow, self.slow_from = call_s, slow, slow_from
        self.slow_factor = slow_factor
        self.params: dict[str, float] = {"scale": 1.0, "batch": 16.0}
        self.calls = 0

    @action
    async def compute(self, n: int) -> int:
        self.calls += 1
        cost = self.call_s
        if self.slow and self.calls > self.slow_from:
            cost *= self.slow_factor * self.params["scale"]
        await asyncio.sleep(cost)
        return sum(i * i for i in range(n))

    @action
    async def set_param(self, name: str, value: float) -> float:
        """Set a tunable parameter; returns its previous value."""
        if name not in self.TUNABLE:
            raise ValueError(f"unknown parameter {name!r}")
        old, self.params[name] = self.params[name], float(value)
        log.info("param %s: %s -> %s", name, old, value,
                 extra={"paramwf.param": name, "paramwf.value": float(value)})
        return old

    @action
    async def get_param(self, name: str) -> float:
        return self.params[name]


async def run(home: Path, port: int, calls: int, call_s: float, slow_from: int,
              slow_factor: float, on_pool: Any = print) -> float:
    """The workflow: two workers, ``calls`` rounds of one call each, the second worker slow
    from ``slow_from`` on; returns the makespan of the rounds."""
    os.environ["ACADEMY_HOME"] = str(home)
    cfg = JSONPoolLogging()
    with log_context(cfg), spawn_http_exchange("127.0.0.1", port, timeout=30) as factory:
        logging.getLogger().setLevel(logging.getLogger().level)
        on_pool(f"pool: {home / 'logs' / cfg.uuid}")
        pool = ProcessPoolExecutor(max_workers=2,
                                   mp_context=multiprocessing.get_context("spawn"))
        async with await Manager.from_exchange_factory(factory, pool, log_config=cfg) as m:
            workers = [await m.launch(Worker, args=(call_s, i == 1, slow_from, slow_factor),
                                      log_config=cfg) for i in range(2)]
            t0 = time.monotonic()
            for i in range(calls):
                await asyncio.gather(*(w.compute(1000 + i) for w in workers))
                log.info("round %d done", i, extra={"paramwf.round": i})
            makespan = time.monotonic() - t0
            log.info("makespan %.3f s", makespan, extra={"paramwf.makespan": makespan})
            # Time for an attached steering agent to see the end before the exchange goes.
            await asyncio.sleep(0.5)
    return makespan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--calls", type=int, default=60)
    p.add_argument("--call-s", type=float, default=0.05)
    p.add_argument("--slow-from", type=int, default=20)
    p.add_argument("--slow-factor", type=float, default=5.0)
    a = p.parse_args(argv)

    def show(line: str) -> None:
        print(line, flush=True)

    makespan = asyncio.run(run(a.home, a.port, a.calls, a.call_s, a.slow_from,
                               a.slow_factor, show))
    print(f"makespan: {makespan:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    # The workers run in spawned processes: they must find Worker in an importable module,
    # not in __main__.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import paramwf

    sys.exit(paramwf.main())
