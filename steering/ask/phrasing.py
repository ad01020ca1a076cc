"""How the built-in analyst writes times, durations, counts, citations and calls (shared by
its modules). Times, durations and counts are facts: written through the answer's
:class:`~features.facts.FactSheet` (see :func:`features.facts.sheet_scope`), so a model
phrasing the answer refers to them and every number of the answer traces to one."""

from __future__ import annotations

from typing import Any

from features.facts import current
from steering.ask.tools import ToolResult

__all__ = ["act", "at", "cite", "dur", "failed", "n", "phases"]


def at(x: float | None, what: str = "a time since the run's start") -> str:
    """A time point since the run's start: ``+3.200 s``."""
    return current().at(x, what)


def dur(x: float | None, what: str = "a duration") -> str:
    """A duration: ``12.0 ms``, ``0.512 s``."""
    return current().dur(x, what)


def n(count: int, noun: str, plural: str | None = None, what: str = "") -> str:
    """A count with its noun: ``1 agent``, ``4 agents``."""
    return current().count(int(count), noun, plural, what=what)


def cite(*refs: Any) -> str:
    return " ".join(f"[{r}]" for r in refs if r)


def act(item: dict[str, Any]) -> str:
    """``next_item 18268d60 on AgentId<2c1ec60a>``."""
    tag = str(item["act"]).removeprefix("act:")
    agent = str(item.get("agent") or "").removeprefix("agent:")
    return f"{item['action']} {tag}" + (f" on {agent}" if agent else "")


def phases(item: dict[str, Any]) -> str:
    call = str(item.get("act", "")).removeprefix("act:")
    parts = [f"{name} {dur(item[k], f'{name} of call {call}')}" for name, k in
             (("queue", "queue_s"), ("execution", "exec_s"), ("reply", "reply_s"))
             if item.get(k) is not None]
    return f" ({', '.join(parts)})" if parts else ""


def failed(res: ToolResult) -> str:
    return f"I could not look that up: {res.error}"
