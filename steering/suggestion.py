"""A steering agent's options and its suggestions, as data (shared by
:mod:`steering.steerer` and :mod:`steering.followup`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from steering.policy import Remedy
from steering.summary import Decision
from steering.watch import SteerIncident

MODES = ("suggest", "confirm", "apply")
Mode = Literal["suggest", "confirm", "apply"]
SEVERITY = ("low", "medium", "high")
Decide = Callable[[SteerIncident, list[Remedy]], Awaitable[Decision]]


@dataclass
class SteeringOptions:
    """Timing and limits of a steering agent."""

    poll_s: float = 0.25
    """Shortest pause between two polls of the pool."""
    cpu_budget: float = 0.04
    """Share of one core the polling may use: a poll that took c CPU seconds is followed by
    a pause of at least c / cpu_budget (up to ``max_pause_s``), and a full judgement of the
    run waits until its last one's CPU is this share of the time since
    (:class:`steering.watch.Watch`)."""
    max_pause_s: float = 1.0
    """Longest pause between polls: bounds how late an incident is seen."""
    llm_timeout_s: float = 3.0
    approval_timeout_s: float = 300.0
    check_calls: int = 3
    """Later calls needed to judge a change."""
    check_timeout_s: float = 60.0
    call_timeout_s: float = 10.0
    max_agents: int = 4
    """Suggestions per incident at most (one per slow agent)."""
    min_severity: str = "medium"
    min_calls: int = 3
    """An incident is acted on at ``min_severity`` (see ``features.detect``) or when the same
    agents' slow calls add up to ``min_calls`` within ``cooldown_s``; one call a little
    slow is recorded only."""
    cooldown_s: float = 30.0
    """A suggestion that was not applied covers the same slowdown's later incidents this
    long; an applied one, until its check is done."""
    revert_cooldown_s: float = 300.0
    """A change that was reverted is not proposed again for this long."""
    stale_s: float = 30.0
    hung_every_s: float = 5.0
    observe_every_s: float = 10.0
    max_errors: int = 20
    """Consecutive failed polls after which the agent stops itself (the workflow goes on)."""


@dataclass
class Suggestion:
    id: str
    incident: SteerIncident
    agent: str
    """The slow agent it is about (display id)."""
    remedy: Remedy | None
    decision: Decision
    status: str
    """suggested, pending, applied, failed, refused, rejected, expired, resolved, reverted,
    not_improved, inconclusive."""
    created: float = dataclasses.field(default_factory=time.monotonic)
    t_apply: float = 0.0
    session: str = ""
    """The steering agent's session (its uuid)."""
    previous: str = ""
    """The suggestion whose change this one takes a step further."""

    def as_dict(self) -> dict[str, Any]:
        r = self.remedy
        return {"id": self.id, "incident": self.incident.id, "group": self.incident.group,
                "agent": self.agent,
                "status": self.status, "summary": self.decision.summary,
                "source": self.decision.source, "action": r.spec.action if r else None,
                "args": r.args if r else None, "target": r.target.agent_id if r else None,
                "target_uuid": r.target.uuid if r else None,
                "previous": r.previous if r else None, "session": self.session,
                "knob": r.knob if r else None, "step": r.step if r else None,
                "continues": self.previous or None}
