"""Agents of the fibonacci demo workflow.

A ``FibonacciLauncher`` launches a ``GeneratorAgent`` alongside itself (in its own event loop,
so in its own worker process) and hands the generator's handle back to the driver, which then
calls ``next_item()`` repeatedly. The generator's per-item sleep lives in ``self.sleep`` so a
steering agent can read and change it through ``get_sleep``/``set_sleep`` while the run goes on.

This module must stay importable on its own: agents run in ``spawn`` worker processes, which
import it by name (an agent class defined in ``__main__`` would not unpickle there).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from academy.agent import Agent, action
from academy.handle import Handle

from steering.steerable import Range, steerable

logger = logging.getLogger(__name__)

MIN_SLEEP_S = 0.0
"""Smallest per-item sleep a generator accepts."""
MAX_SLEEP_S = 60.0
"""Largest per-item sleep a generator accepts: a steering mistake must not stall a run for hours."""
STEER_SLEEP = Range(0.0, 2.0, on_slow="decrease", factor=0.5)
"""What a steering agent may do to the sleep: values 0..2 s; on a slowdown, halve it."""


def validate_sleep(seconds: Any) -> float:
    """Return ``seconds`` as a float if it is a finite number within 0..60 s.

    Raises:
        ValueError: If ``seconds`` is not a real number (bools are refused too) or is out of range.
    """
    # bool is an int subclass; `set_sleep(True)` is almost certainly a bug, not "1 second".
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f'sleep must be a number of seconds, got {seconds!r}')
    value = float(seconds)
    if not math.isfinite(value) or not MIN_SLEEP_S <= value <= MAX_SLEEP_S:
        raise ValueError(
            f'sleep must be within {MIN_SLEEP_S:g}..{MAX_SLEEP_S:g} s, got {seconds!r}',
        )
    return value


class GeneratorAgent(Agent):
    """Produce the fibonacci sequence one item per ``next_item`` call, slowly.

    Args:
        sleep: Seconds each ``next_item`` sleeps before answering (steerable, 0..60).
        slow_at: Iteration index at which a slowdown starts, or ``None``.
        slow_factor: Multiplier applied to the sleep during the slowdown.
        slow_len: Number of consecutive iterations the slowdown lasts.
        fail_at: Iteration index at which ``next_item`` raises ``RuntimeError``, or ``None``.
        drift: The sleep grows steadily (geometrically) from 1x at the first iteration to
            ``drift`` times at iteration ``drift_len - 1`` (and stays there), or ``None``.
        drift_len: Iterations the drift takes.
    """

    def __init__(
        self,
        sleep: float = 0.5,
        *,
        slow_at: int | None = None,
        slow_factor: float = 3.0,
        slow_len: int = 1,
        fail_at: int | None = None,
        drift: float | None = None,
        drift_len: int = 1,
    ) -> None:
        super().__init__()
        self.sleep = validate_sleep(sleep)
        """Seconds each item sleeps (before any slowdown factor); changed by ``set_sleep``."""
        if slow_len < 1:
            raise ValueError(f'slow_len must be >= 1, got {slow_len!r}')
        if slow_factor < 0:
            raise ValueError(f'slow_factor must be >= 0, got {slow_factor!r}')
        self.slow_at = slow_at
        self.slow_factor = float(slow_factor)
        self.slow_len = slow_len
        self.fail_at = fail_at
        if drift is not None and not (math.isfinite(drift) and drift > 0):
            raise ValueError(f'drift must be a positive number, got {drift!r}')
        self.drift = drift
        self.drift_len = max(int(drift_len), 1)
        self.iteration = 0
        """Index of the next item to produce."""
        self._prev, self._cur = 0, 1

    def delay_for(self, iteration: int) -> float:
        """Seconds ``next_item`` sleeps at ``iteration`` with the current sleep and slowdown."""
        slow = self.slow_at is not None and self.slow_at <= iteration < self.slow_at + self.slow_len
        base = self.sleep
        if self.drift is not None and self.drift_len > 1:
            base *= self.drift ** (min(iteration, self.drift_len - 1) / (self.drift_len - 1))
        return base * self.slow_factor if slow else base

    @action
    async def next_item(self) -> int:
        """Sleep, then return the next fibonacci number (1, 1, 2, 3, 5, ...).

        Raises:
            RuntimeError: At iteration ``fail_at`` (after sleeping, so the failing call has a
                duration like a real one). The iteration is not consumed: calling again fails again.
        """
        i = self.iteration
        delay = self.delay_for(i)
        await asyncio.sleep(delay)
        if self.fail_at is not None and i == self.fail_at:
            raise RuntimeError(f'injected failure at iteration {i}')
        value = self._cur
        self._prev, self._cur = self._cur, self._prev + self._cur
        self.iteration = i + 1
        logger.info(
            'fib step %d -> %d (slept %.3fs)',
            i,
            value,
            delay,
            extra={
                'academy.agent_id': self.agent_id,
                'fib.iteration': i,
                'fib.value': value,
                'fib.delay_s': delay,
            },
        )
        return value

    @action
    @steerable(seconds=STEER_SLEEP, current="get_sleep", returns_previous=True,
               max_per_minute=6)
    async def set_sleep(self, seconds: float) -> float:
        """Set the per-item sleep for the following items; return the previous value.

        Raises:
            ValueError: If ``seconds`` is not a finite number within 0..60 s.
        """
        new = validate_sleep(seconds)
        old, self.sleep = self.sleep, new
        # One record per change so a reader of the pool can line the steering up with the timings.
        logger.info(
            'sleep changed %.3fs -> %.3fs',
            old,
            new,
            extra={
                'academy.agent_id': self.agent_id,
                'fib.iteration': self.iteration,
                'fib.sleep_old_s': old,
                'fib.sleep_s': new,
            },
        )
        return old

    @action
    async def get_sleep(self) -> float:
        """Return the current per-item sleep in seconds."""
        return self.sleep


class FibonacciLauncher(Agent):
    """Launch a ``GeneratorAgent`` next to itself on request."""

    @action
    async def calc_fibs(
        self,
        sleep: float = 0.5,
        *,
        slow_at: int | None = None,
        slow_factor: float = 3.0,
        slow_len: int = 1,
        fail_at: int | None = None,
        drift: float | None = None,
        drift_len: int = 1,
    ) -> Handle[GeneratorAgent]:
        """Launch a generator with these options in this agent's event loop; return its handle.

        The generator lives as long as this launcher: the launcher's own manager shuts it down
        when the launcher shuts down.
        """
        # Build the instance here so a bad option fails this call (visible to the driver) rather
        # than the generator's startup, which would only surface when the launcher shuts down.
        generator = GeneratorAgent(
            sleep,
            slow_at=slow_at,
            slow_factor=slow_factor,
            slow_len=slow_len,
            fail_at=fail_at,
            drift=drift,
            drift_len=drift_len,
        )
        logger.info(
            'launching generator (sleep=%s, slow_at=%s, slow_factor=%s, slow_len=%s, fail_at=%s, '
            'drift=%s)',
            sleep,
            slow_at,
            slow_factor,
            slow_len,
            fail_at,
            drift,
            extra={'academy.agent_id': self.agent_id},
        )
        return await self.agent_launch_alongside(generator)
