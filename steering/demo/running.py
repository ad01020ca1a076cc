"""How a demo workload runs: its agents' executor (threads, spawned processes or a Parsl
HTEX) and a command-line entry that SIGTERM stops cleanly. Shared by the fibonacci and
straggler workloads."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PARSL_DIR = "parsl"
"""Parsl's run directory, inside the pool directory (readers take only ``*.jsonlog`` files)."""


@contextlib.asynccontextmanager
async def agent_executor(kind: str, workers: int, pool_dir: Path, make: Callable[[], Executor],
                         parsl_poll_s: float = 5.0) -> AsyncIterator[Executor]:
    """The agents' executor: ``make()`` for threads and processes (the manager shuts it
    down), a Parsl HTEX for ``parsl`` with its files in ``pool_dir/parsl``, stopped when the
    block exits, however it exits."""
    if kind != "parsl":
        yield make()
        return
    from steering.demo.htex import parsl_executor

    async with parsl_executor(pool_dir / PARSL_DIR, workers,
                              strategy_period=parsl_poll_s) as executor:
        yield executor


def run_terminable(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` where SIGTERM (the app stopping its live demo) cancels ``main``,
    so the agents, the exchange and a Parsl HTEX are shut down rather than left running
    without their driver.

    Raises:
        asyncio.CancelledError: If SIGTERM arrived.
    """
    async def guarded() -> T:
        task = asyncio.current_task()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main

    return asyncio.run(guarded())
