"""What a steering agent does after a change: the next step when it helped without
resolving the slowdown (within the declared range and rate, until the calls are back to
normal or the range is exhausted), and adopting the unchecked changes an earlier, killed
steering agent left (:mod:`steering.recovery`). Functions of a
:class:`~steering.steerer.Steerer` (``self``), kept apart to keep that class's file whole;
they know it as :class:`Steering`, what they use of it, so this module does not import the
steerer that imports it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from steering.policy import Remedy, remedy_args
from steering.recovery import Orphan, incident_fields
from steering.suggestion import Suggestion
from steering.summary import Decision
from steering.watch import SteerIncident

if TYPE_CHECKING:
    from steering.audit import Audit
    from steering.steerable import SteerableSpec
    from steering.suggestion import Mode
    from steering.targets import Targets

__all__ = ["Steering", "adopt", "step_again", "tried"]


class Steering(Protocol):
    """What the follow-ups use of a :class:`~steering.steerer.Steerer`."""

    audit: Audit
    targets_: Targets
    mode: Mode
    suggestions_: dict[str, Suggestion]
    checks: dict[str, Suggestion]
    active: set[tuple[str, str, str | None, str]]
    by_key: dict[tuple[str, str], Suggestion]

    async def _current(self, uid: str, spec: SteerableSpec, knob: str, ref: str | None
                       ) -> tuple[Any, dict[str, Any]]: ...

    async def _apply(self, sugg: Suggestion, by: str | None) -> None: ...

    def _escalate(self, sugg: Suggestion, why: str) -> None: ...


async def step_again(self: Steering, sugg: Suggestion, why: str) -> None:
    """The next step of a knob whose last change helped without resolving: from its
    value now (its getter, else what was set), further the declared way; escalate with
    what was tried when the range is exhausted."""
    r = sugg.remedy
    assert r is not None
    ref = r.args.get(r.spec.ref) if r.spec.ref else None
    current, others = await self._current(r.target.uuid, r.spec, r.knob, ref)
    if current is None:
        current, others = r.value, {k: r.args.get(k) for k in r.spec.knobs}
    args = remedy_args(r.spec, current, ref, r.knob, others or dict(r.args))
    done = tried(self, sugg)
    if args is None:
        self._escalate(sugg, f"the calls are still slow ({why}) and {r.knob} is at the end "
                       f"of its declared range ({current!r}); tried {done}")
        return
    prev = float(current) if isinstance(current, int | float) else None
    nxt = Remedy(r.id, r.target, r.spec, args, prev, r.ref_agent, r.knob, r.step + 1)
    sid = f"s{len(self.suggestions_) + 1}"
    decision = Decision(f"step {nxt.step} for incident {sugg.incident.id}: the last change "
                        f"helped but the calls are still slow ({why}); tried {done}.",
                        nxt.id, "the declared range allows a further step", "policy")
    new = Suggestion(sid, sugg.incident, sugg.agent, nxt, decision, "suggested",
                     session=self.audit.session, previous=sugg.id)
    self.suggestions_[sid] = new
    self.by_key[(sugg.incident.group, sugg.agent)] = new
    self.audit.emit("suggestion", "suggestion %s for incident %s on %s: %s (step %d)",
                    sid, sugg.incident.id, sugg.agent, nxt.describe(), nxt.step, id=sid,
                    incident=sugg.incident.id, agent_slow=sugg.agent,
                    summary=decision.summary, why=decision.why, source=decision.source,
                    continues=[sugg.id], alternatives=1, **nxt.as_fields())
    if self.mode == "confirm":
        new.status = "pending"
    elif self.mode == "apply":
        await self._apply(new, None)

def adopt(self: Steering, o: Orphan) -> bool:
    """Check an earlier steering agent's applied, never checked change as if it were
    this one's (reverting it when it did not help); ``False`` while its target is not
    known yet (ask again after the next poll)."""
    t = self.targets_.found.get(o.target_uuid)
    if t is None:
        return False
    spec = t.specs.get(o.action)
    if spec is None:
        self.audit.emit("escalation", "cannot check %s's change %s: %s declares no %s "
                        "now", o.session[:8], o.id, t.agent_id, o.action,
                        level=logging.WARNING, recovered=o.key, target=t.agent_id,
                        reason=f"{o.action} is not declared now")
        return True
    knob = o.knob if o.knob in spec.knobs else spec.knob_of(o.args)
    r = Remedy("r1", t, spec, dict(o.args), o.previous, o.about, knob)
    inc = SteerIncident(**incident_fields(o))
    agent = inc.agents[0] if inc.agents else t.agent_id
    sid = f"s{len(self.suggestions_) + 1}"
    decision = Decision(f"{o.key} ({o.session[:8]}'s suggestion {o.id}) applied "
                        f"{r.describe()} and stopped before checking it.", r.id,
                        "an earlier steering agent's change, never checked", "recovery")
    sugg = Suggestion(sid, inc, agent, r, decision, "applied",
                      session=self.audit.session)
    sugg.t_apply = o.t_apply
    self.suggestions_[sid] = sugg
    self.checks[sid] = sugg
    self.active.add(r.key)
    self.by_key[(inc.group, agent)] = sugg
    self.audit.emit("recovery", "checking %s: %s, applied by steering agent %s and never "
                    "checked", sid, r.describe(), o.session[:8], id=sid, recovered=o.key,
                    incident=inc.id, summary=decision.summary, **r.as_fields())
    return True

def tried(self: Steering, sugg: Suggestion) -> str:
    """The changes made for this knob and incident so far, oldest first."""
    chain: list[Suggestion] = []
    s: Suggestion | None = sugg
    while s is not None:
        chain.append(s)
        s = self.suggestions_.get(s.previous) if s.previous else None
    return ", ".join(f"{c.remedy.knob}={c.remedy.value!r} ({c.status})"
                     for c in reversed(chain) if c.remedy is not None)
