"""What the steering agent may do about an incident, how often, and whether it helped.

Only declared steerable actions (:mod:`steering.steerable`) of known target agents are ever
proposed, with values computed here from the declaration and the knob's current value, and
checked against the declared bounds; nothing comes from log text or from a model's reply
except the choice among these proposals.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from steering.steerable import SteerableSpec
from steering.watch import CheckData


@dataclass
class Target:
    """A workflow agent that declared steerable actions."""

    uuid: str
    agent_id: str
    """Display id (``AgentId<5b2acff4>``)."""
    cls: str
    specs: dict[str, SteerableSpec]
    source: str
    """Where the declarations came from: ``class`` (a class loaded in the steering agent's
    process, whose agents the exchange listed)."""


@dataclass
class Remedy:
    """One proposed call."""

    id: str
    target: Target
    spec: SteerableSpec
    args: dict[str, Any]
    previous: float | None
    """The knob's value before (None when unknown: then it cannot be reverted)."""
    ref_agent: str | None = None
    """Display id of the agent the call is about (the AgentRef argument's agent)."""
    knob: str = ""
    """Which of the declaration's knobs it moves (default: its first)."""
    step: int = 1
    """1 for the first change of this knob for an incident, 2 for the next step, ..."""

    def __post_init__(self) -> None:
        self.knob = self.knob or self.spec.knob

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """What the one-change-at-a-time rule is per: one knob (of one agent)."""
        return (*self.rate_key, self.knob)

    @property
    def rate_key(self) -> tuple[str, str, str | None]:
        """What the rate limit is per: the action (and the agent it is about), as the
        action itself counts its calls (:func:`steering.steerable.refusal`)."""
        ref = self.args.get(self.spec.ref) if self.spec.ref else None
        return (self.target.uuid, self.spec.action, ref)

    @property
    def value(self) -> Any:
        return self.spec.value_in(self.args, self.knob)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        was = f" ({self.knob} now {self.previous:g})" if self.previous is not None else ""
        return f"{self.spec.action}({args}) on {self.target.agent_id}{was}"

    def as_fields(self) -> dict[str, Any]:
        return {"action": self.spec.action, "args": self.args, "target": self.target.agent_id,
                "target_uuid": self.target.uuid, "target_class": self.target.cls,
                "previous": self.previous, "about": self.ref_agent, "knob": self.knob,
                "step": self.step, "bounds": self.spec.range_of(self.knob).as_dict()}


def plans(agent: str, agent_uuid: str | None, targets: list[Target]
          ) -> Iterator[tuple[Target, SteerableSpec, str, str | None, str | None]]:
    """(target, declaration, knob, AgentRef uuid, AgentRef display id) that could act on
    the slow ``agent`` (display id; ``agent_uuid`` its uuid as the exchange confirmed it, or
    None): a declaration with an AgentRef on another target, about the agent; one without,
    on the agent itself; each of its knobs."""
    for t in targets:
        for spec in t.specs.values():
            for knob in spec.knobs:
                if spec.ref is not None:
                    if agent_uuid is not None and agent_uuid.lower() != t.uuid.lower():
                        yield t, spec, knob, agent_uuid, agent
                elif t.agent_id == agent:
                    yield t, spec, knob, None, None


def remedy_args(spec: SteerableSpec, current: Any, ref: str | None, knob: str | None = None,
                others: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The arguments of the call that moves ``knob`` (default the first) from ``current``
    as declared (the action's other Range knobs at ``others``), or ``None`` when nothing
    would change or the result would break the declaration."""
    knob = knob or spec.knob
    new = spec.range_of(knob).propose(current)
    if new is None:
        return None
    return spec.args_for(knob, new, ref, others)


@dataclass
class RateLimiter:
    """Calls per key within the last minute."""

    _calls: dict[Any, deque[float]] = field(default_factory=dict)

    def allowed(self, key: Any, per_minute: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self._calls.setdefault(key, deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        return len(q) < per_minute

    def record(self, key: Any, now: float | None = None) -> None:
        self._calls.setdefault(key, deque()).append(time.monotonic() if now is None else now)


RESOLVED_WITHIN = 1.5
"""A change resolved an incident when the later calls' median is back within this factor of
what a call took before the incident. Clean calls' medians stay within 1.2x of it (jitter:
3+ calls, ``features.anomaly``); 2.5x, the detector's threshold for one slow call, is
still a slowdown when it lasts: a change that brought a 4x slowdown down to 2.4x helped,
but it did not resolve it."""


def judge(data: CheckData, ref_remedy: bool, ratio_threshold: float,
          incident_ratio: float = math.nan, min_calls: int = 3,
          resolved_within: float = RESOLVED_WITHIN) -> tuple[str | None, str]:
    """``resolved``, ``improved`` or ``not_improved`` with a reason, or ``None`` (wait).

    ``data.baseline_s`` is what a call took before the incident. Resolved: the later calls
    on the slow agents are back near it (median within ``resolved_within``, 1.5x).
    Improved (kept, but a person should look): still slower than that, but at most 3/4 of
    the incident's median ratio (without one: below the detector's ``ratio_threshold``).
    For a change that moves work away from an agent, judged by that agent's share of the
    group's later calls against its share during the incident: resolved at 3/4 or less,
    improved below 95%."""
    base = data.baseline_s
    on = data.later_on
    if base and len(on) >= min_calls:
        ratio = statistics.median(on) / base
        said = f"{len(on)} later call(s) on the slow agent(s): median {ratio:.1f}x the " \
               f"{base:.3f}s before the incident"
        if ratio <= resolved_within:
            return "resolved", said
        if not ref_remedy:
            if math.isfinite(incident_ratio) and ratio <= 0.75 * incident_ratio:
                return "improved", f"{said}, down from {incident_ratio:.1f}x"
            if not math.isfinite(incident_ratio) and ratio < ratio_threshold:
                return "improved", f"{said}: below {ratio_threshold:g}x, not back to normal"
            return "not_improved", said
    if ref_remedy:
        n_after = len(on) + len(data.later_others)
        if n_after >= 4 * min_calls:
            before = data.before_on / data.before_all if data.before_all else 1.0
            after = len(on) / n_after
            # Calls dispatched before the change still land on the slow agent for a while.
            verdict = "resolved" if after <= 0.75 * before else \
                "improved" if after < 0.95 * before else "not_improved"
            return verdict, (f"the slow agent(s) took {after:.0%} of {n_after} later calls, "
                             f"{before:.0%} during the incident")
    return None, f"{len(on)} later call(s) on the slow agent(s) so far"
