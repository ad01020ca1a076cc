"""Declared bounds hold at the action, for every caller (SECURITY.md R5): the README's own
example agent, called through real Academy handles with values a steering agent would never
send, and faster than it may."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from academy.agent import Agent, action
from steerkit import local_run, pool_records

from steering.steerable import AgentRef, Range, SteeringRefused, steerable


class Generator(Agent):
    """The README's example, as a user writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.sleep = 0.5
        self.calls = 0

    @action
    @steerable(seconds=Range(0, 2), current="get_sleep", max_per_minute=6)
    async def set_sleep(self, seconds: float) -> None:
        """Set the per-item sleep."""
        self.calls += 1
        self.sleep = seconds

    @action
    async def get_sleep(self) -> float:
        """The per-item sleep."""
        return self.sleep


class Outer(Agent):
    """The decorators in the other order, and an agent parameter with its own rate."""

    @steerable(weight=Range(0.0, 1.0), agent=AgentRef(), max_per_minute=2)
    @action
    async def set_weight(self, agent: str, weight: float) -> float:
        """Set a weight."""
        return weight


BAD = [1000.0, -5.0, math.nan, math.inf, "a string", True, None, [1.0], {"seconds": 1}]


@pytest.mark.parametrize("value", BAD, ids=[repr(v) for v in BAD])
async def test_out_of_bounds_and_wrong_types_are_refused(tmp_path: Path, value: Any) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        h = await m.launch(Generator, log_config=cfg)
        with pytest.raises(SteeringRefused, match="set_sleep refused"):
            await h.set_sleep(value)
        assert await h.get_sleep() == 0.5  # untouched
        await h.set_sleep(1.5)  # an in-bounds call still works
        assert await h.get_sleep() == 1.5
    refused = [r for r in pool_records(pool) if r["name"] == "academy_tui.steerable"]
    assert len(refused) == 1 and refused[0]["levelname"] == "WARNING"
    assert "outside" in refused[0]["steerable.reason"]


async def test_bad_calls_are_refused_not_run(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, _):
        h = await m.launch(Generator, log_config=cfg)
        for args, kwargs in [((), {}), ((1.0,), {"extra": 2}), ((1.0, 2.0), {}),
                             ((), {"secs": 1.0})]:
            with pytest.raises(SteeringRefused):
                await h.action("set_sleep", *args, **kwargs)
        assert await h.get_sleep() == 0.5


async def test_a_flood_meets_the_declared_rate(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        h = await m.launch(Generator, log_config=cfg)
        results = await asyncio.gather(*(h.set_sleep(0.1 * (i % 10)) for i in range(20)),
                                       return_exceptions=True)
        ok = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, SteeringRefused)]
        assert (len(ok), len(refused)) == (6, 14)
        assert all("rate limit" in str(r) for r in refused)
        # Per agent: another instance has its own budget.
        h2 = await m.launch(Generator, log_config=cfg)
        await h2.set_sleep(1.0)
    reasons = [r["steerable.reason"] for r in pool_records(pool)
               if r["name"] == "academy_tui.steerable"]
    assert len(reasons) == 14


async def test_either_decorator_order_and_per_agent_parameter_rates(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, _):
        h = await m.launch(Outer, log_config=cfg)
        a, b = "6a00a76f-2b12-48d2-a810-ee5784d37053", "3e5c368f-a4cb-4bb5-a66b-fc830dc29558"
        with pytest.raises(SteeringRefused):
            await h.set_weight(a, 2.0)
        with pytest.raises(SteeringRefused):
            await h.set_weight("not a uuid", 0.5)
        assert await h.set_weight(a, 0.5) == 0.5
        assert await h.set_weight(a, 0.5) == 0.5
        with pytest.raises(SteeringRefused, match="rate limit"):
            await h.set_weight(a, 0.5)
        assert await h.set_weight(b, 0.5) == 0.5  # about another agent: its own budget
