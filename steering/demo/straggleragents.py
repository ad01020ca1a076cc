"""Agents of the straggler workload: a coordinator spreads each round's tasks over worker
agents by weight and waits for all of them; one worker slows down mid-run.

The weights are steerable (``CoordinatorAgent.set_weight``): a steering agent that sees one
worker's ``work`` calls turn slow can move tasks away from it, and the rounds (bounded by
their slowest worker) shorten again.

Importable on its own: spawned worker processes import these classes by module name.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from academy.agent import Agent, action
from academy.handle import Handle

from steering.steerable import AgentRef, Range, steerable

logger = logging.getLogger(__name__)

STEER_WEIGHT = Range(0.0, 1.0, on_slow="decrease", factor=0.25)
"""What a steering agent may do to a worker's weight: 0..1; on a slowdown, quarter it."""


class WorkerAgent(Agent):
    """Do one task per ``work`` call, taking ``task_s`` seconds; after ``slow_after`` tasks,
    ``slow_factor`` times as long."""

    def __init__(self, index: int, task_s: float = 0.1, slow_after: int | None = None,
                 slow_factor: float = 4.0) -> None:
        super().__init__()
        if not (math.isfinite(task_s) and task_s >= 0):
            raise ValueError(f"task_s must be >= 0, got {task_s!r}")
        self.index = index
        self.task_s = float(task_s)
        self.slow_after = slow_after
        self.slow_factor = float(slow_factor)
        self.done = 0
        """Tasks finished so far."""

    def delay(self) -> float:
        """Seconds the next task takes."""
        slow = self.slow_after is not None and self.done >= self.slow_after
        return self.task_s * self.slow_factor if slow else self.task_s

    @action
    async def work(self, task: int) -> int:
        """Do task number ``task``; return it."""
        delay = self.delay()
        await asyncio.sleep(delay)
        self.done += 1
        logger.info("task %d on worker %d took %.3fs", task, self.index, delay,
                    extra={"academy.agent_id": self.agent_id, "straggler.task": task,
                           "straggler.worker": self.index, "straggler.delay_s": delay})
        return task


def split(n: int, weights: list[float]) -> list[int]:
    """``n`` tasks in proportion to ``weights`` (largest remainder; equal when all are 0)."""
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(weights), float(len(weights))
    exact = [n * w / total for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


class CoordinatorAgent(Agent):
    """Run rounds of tasks over ``workers``, each getting a share by its weight (all 1.0 at
    the start)."""

    def __init__(self, workers: list[Handle[WorkerAgent]]) -> None:
        super().__init__()
        self.workers = list(workers)
        self.weights = {str(h.agent_id.uid): 1.0 for h in self.workers}
        """Worker uuid -> weight."""

    def _uid(self, agent: Any) -> str:
        key = str(agent).lower()
        if key not in self.weights:
            raise ValueError(f"{str(agent)[:40]!r} is not one of this coordinator's workers")
        return key

    @action
    @steerable(agent=AgentRef(), weight=STEER_WEIGHT, current="get_weight",
               returns_previous=True, max_per_minute=6)
    async def set_weight(self, agent: str, weight: float) -> float:
        """Set the weight of the worker whose uuid is ``agent``; return the previous one.

        Raises:
            ValueError: If ``agent`` is not a worker of this coordinator, or the weight is not
                a number within 0..1.
        """
        uid = self._uid(agent)
        if not STEER_WEIGHT.contains(weight):
            raise ValueError(f"weight must be a number within 0..1, got {weight!r}")
        old, self.weights[uid] = self.weights[uid], float(weight)
        logger.info("weight of %s changed %.3f -> %.3f", uid[:8], old, weight,
                    extra={"academy.agent_id": self.agent_id, "straggler.worker_uuid": uid,
                           "straggler.weight_old": old, "straggler.weight": float(weight)})
        return old

    @action
    async def get_weight(self, agent: str) -> float:
        """The weight of the worker whose uuid is ``agent``."""
        return self.weights[self._uid(agent)]

    @action
    async def get_weights(self) -> dict[str, float]:
        """Every worker's weight, by uuid."""
        return dict(self.weights)

    @action
    async def run_round(self, tasks: list[int]) -> list[int]:
        """Spread ``tasks`` over the workers by weight, run them, wait for all; return how
        many each worker did."""
        counts = split(len(tasks), [self.weights[str(h.agent_id.uid)] for h in self.workers])
        it = iter(tasks)
        shares = [[next(it) for _ in range(k)] for k in counts]

        async def one_by_one(worker: Handle[WorkerAgent], mine: list[int]) -> None:
            # A worker does its share in order, as one busy machine would.
            for task in mine:
                await worker.work(task)

        await asyncio.gather(*(one_by_one(h, mine)
                               for h, mine in zip(self.workers, shares, strict=True)))
        return counts
