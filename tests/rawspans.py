"""Ground truth for the slowdown tests, read from a demo run's raw .jsonlog lines with
json (never with our reader): each ``next_item`` call's execution span, which calls the
agent slowed on purpose (its own ``fib.delay_s`` record, written inside the execution)
and which calls were slow anyway because the machine was busy."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def raw_executions(pool_dir: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The raw records, and each next_item call's execute_start / execute_success times
    by action tag."""
    recs = [json.loads(line) for f in sorted(pool_dir.glob("*.jsonlog"))
            for line in f.read_text().splitlines()]
    spans: dict[str, dict[str, float]] = defaultdict(dict)
    for r in recs:
        if r.get("academy.action") == "next_item" and \
                r.get("academy.action_state") in ("execute_start", "execute_success"):
            spans[r["academy.action_tag"]][r["academy.action_state"]] = float(r["created"])
    return recs, spans


def raw_slow_tags(pool_dir: Path, sleep: float) -> set[str]:
    """Tags of the next_item calls whose own step slept longer than ``sleep``."""
    recs, spans = raw_executions(pool_dir)
    slow = set()
    for r in recs:
        if "fib.delay_s" in r and float(r["fib.delay_s"]) > sleep * 1.01:
            t = float(r["created"])
            slow |= {tag for tag, s in spans.items()
                     if s.get("execute_start", np.inf) <= t <= s.get("execute_success", -np.inf)}
    return slow


def raw_really_slow_tags(pool_dir: Path, sleep: float, factor: float = 2.0) -> set[str]:
    """Tags of next_item calls the agent did not slow down whose execution still took
    more than ``factor`` times the median of such calls: on a loaded machine this
    happens, and then a detector is right to flag them."""
    _, spans = raw_executions(pool_dir)
    injected = raw_slow_tags(pool_dir, sleep)
    dur = {tag: s["execute_success"] - s["execute_start"] for tag, s in spans.items()
           if len(s) == 2 and tag not in injected}
    if not dur:
        return set()
    med = float(np.median(list(dur.values())))
    return {tag for tag, d in dur.items() if d > factor * med}
