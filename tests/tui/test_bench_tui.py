"""``make bench``'s app stages (bench/bench_tui.py) drive the real app through Textual's
pilot and wrap its hooks, so a change to the app can break them without breaking any other
test (one did: the event view's refresh hook took an argument the wrapper did not pass).
Each stage is run here on a small run; no time is asserted, only that it ran through and
saw every record."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import bench_tui  # type: ignore[import-not-found]  # bench/ is on the path (conftest)
import pytest


async def test_the_live_tail_stage_shows_every_record_written(
        capsys: pytest.CaptureFixture[str]) -> None:
    await bench_tui.live_tail(200, 1.0)
    out = capsys.readouterr().out
    m = re.search(r"\(([\d,]+) of ([\d,]+) records shown", out)
    assert m, out
    assert m.group(1) == m.group(2) and int(m.group(2).replace(",", "")) > 0, out
    assert "write -> painted row latency p95" in out


async def test_the_stall_stage_runs_each_phase(sample: Callable[[str], Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    await bench_tui.stalls(sample("pairs"))
    out = capsys.readouterr().out
    for phase in ("load", "filter", "scroll", "timeline"):
        assert re.search(rf"while {phase} +worst", out), (phase, out)
