"""Shared pieces of the steering tests: a workflow agent with a steerable knob that counts
every call it gets, a real threads + local-exchange run writing a pool, and waiting helpers.

Nothing of ours is replaced: the steering agent, Academy, the exchange and the pool are real;
the test only decides how slow the workflow is and reads what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from academy.agent import Agent, action
from academy.exchange import LocalExchangeFactory
from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from steering.agent import SteeringOptions
from steering.runenv import academy_home_env, pool_logging
from steering.steerable import Range, steerable

CALLS: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
"""Agent uuid -> every action call it received: (action, arguments)."""
KNOB = Range(0.1, 1.0, on_slow="decrease", factor=0.5)

FAST = SteeringOptions(poll_s=0.05, max_pause_s=0.2, cpu_budget=1.0, check_calls=3,
                       check_timeout_s=10.0, call_timeout_s=5.0, cooldown_s=30.0,
                       observe_every_s=1.0)
"""Options for tests: poll often, judge quickly."""


class Knobbed(Agent):
    """``step()`` sleeps ``base`` seconds, ``slow_factor`` times longer from call ``slow_from``
    on; with ``knob_helps`` the sleep is scaled by the knob (so turning it down helps)."""

    def __init__(self, base: float = 0.02, slow_from: int | None = None,
                 slow_factor: float = 8.0, knob_helps: bool = False) -> None:
        super().__init__()
        self.base = base
        self.slow_from = slow_from
        self.slow_factor = slow_factor
        self.knob_helps = knob_helps
        self.knob = 1.0
        self.n = 0

    def _count(self, name: str, **kw: Any) -> None:
        CALLS[str(self.agent_id.uid)].append((name, kw))

    @action
    async def step(self) -> int:
        """One unit of work (Academy's agent_describe needs a docstring on every action)."""
        self._count("step")
        slow = self.slow_from is not None and self.n >= self.slow_from
        delay = self.base * (self.slow_factor if slow else 1.0)
        if self.knob_helps:
            delay *= self.knob
        await asyncio.sleep(delay)
        self.n += 1
        return self.n

    @action
    @steerable(knob=KNOB, current="get_knob", returns_previous=True, max_per_minute=2)
    async def set_knob(self, knob: float) -> float:
        """Set the knob (0.1..1.0 when steered); return the previous value."""
        self._count("set_knob", knob=knob)
        old, self.knob = self.knob, float(knob)
        return old

    @action
    async def get_knob(self) -> float:
        """The knob."""
        self._count("get_knob")
        return self.knob

    @action
    async def shutdown_all(self) -> str:
        """Not declared steerable: a steering agent must never call it."""
        self._count("shutdown_all")
        return "done"


def steering_calls(uid: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls an agent got other than ``step`` (the workflow's own)."""
    return [c for c in CALLS[uid] if c[0] != "step"]


@contextlib.asynccontextmanager
async def local_run(home: Path, workers: int = 8
                    ) -> AsyncIterator[tuple[Manager[Any], JSONPoolLogging, Path]]:
    """A manager on threads and the local exchange, logging into a pool under ``home``."""
    cfg = JSONPoolLogging()
    with academy_home_env(home), pool_logging(cfg):
        pool = get_academy_home() / "logs" / cfg.uuid
        manager = await Manager.from_exchange_factory(
            LocalExchangeFactory(), executors=ThreadPoolExecutor(workers), log_config=cfg)
        async with manager:
            yield manager, cfg, pool


async def drive_until(handle: Any, done: Callable[[], Awaitable[bool]], most: int = 400,
                      every: int = 1) -> int:
    """Call ``handle.step()`` until ``await done()`` (checked every ``every`` calls) or
    ``most`` calls; the number of calls made."""
    for i in range(1, most + 1):
        await handle.step()
        if i % every == 0 and await done():
            return i
    return most


async def wait_for(done: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    """Poll ``await done()`` every 50 ms until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await done():
            return True
        await asyncio.sleep(0.05)
    return False


def kinds(events: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    """Audit events of ``kind`` whose fields equal ``match``."""
    return [e for e in events if e["kind"] == kind
            and all(e.get(k) == v for k, v in match.items())]


def pool_records(pool: Path) -> list[dict[str, Any]]:
    """Every record of the pool (all files), as written."""
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def assert_calls_audited(pool: Path) -> list[dict[str, Any]]:
    """Every applied or reverted call has a ``before`` and an ``after`` record in the pool,
    in that order; returns the steering records."""
    recs = [r for r in pool_records(pool) if "steering.kind" in r]
    for kind in ("apply", "revert"):
        calls = [r for r in recs if r["steering.kind"] == kind]
        ids = {r["steering.id"] for r in calls}
        for sid in ids:
            phases = [r["steering.phase"] for r in calls if r["steering.id"] == sid]
            assert phases == ["before", "after"], (kind, sid, phases)
    return recs


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port (skips when not installed)."""
    import shutil
    import socket
    import subprocess

    import pytest

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (e.g. apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, "redis-server exited at start-up"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start listening"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
