"""How the built-in analyst writes times, durations, citations and calls (shared by its
modules)."""

from __future__ import annotations

from typing import Any

from features.report import fmt_s
from steering.ask.tools import ToolResult

__all__ = ["act", "at", "cite", "dur", "failed", "phases"]


def at(x: float | None) -> str:
    """A time point since the run's start."""
    return "+?" if x is None else f"+{x:.3f} s"


def dur(x: float | None) -> str:
    return fmt_s(x)


def cite(*refs: Any) -> str:
    return " ".join(f"[{r}]" for r in refs if r)


def act(item: dict[str, Any]) -> str:
    """``next_item 18268d60 on AgentId<2c1ec60a>``."""
    tag = str(item["act"]).removeprefix("act:")
    agent = str(item.get("agent") or "").removeprefix("agent:")
    return f"{item['action']} {tag}" + (f" on {agent}" if agent else "")


def phases(item: dict[str, Any]) -> str:
    parts = [f"{name} {dur(item[k])}" for name, k in
             (("queue", "queue_s"), ("execution", "exec_s"), ("reply", "reply_s"))
             if item.get(k) is not None]
    return f" ({', '.join(parts)})" if parts else ""


def failed(res: ToolResult) -> str:
    return f"I could not look that up: {res.error}"
