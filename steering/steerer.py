"""What the steering agent does about incidents: suggestions, approvals, calls, checks,
reverts and escalations, each an audit event. No Academy agent here: :class:`Steerer` is
driven by :class:`steering.agent.SteeringAgent`'s loop and actions, on its event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from features.trust import ApprovalCheck, args_json, suggestion_digest
from steering import followup
from steering.audit import Audit
from steering.policy import RateLimiter, Remedy, judge, plans, remedy_args
from steering.recovery import Orphan
from steering.steerable import SteerableSpec
from steering.suggestion import (
    MODES,
    SEVERITY,
    Decide,
    Mode,
    SteeringOptions,
    Suggestion,
)
from steering.targets import Targets
from steering.watch import CheckData, CheckQuery, SteerIncident, severity

__all__ = ["MODES", "Decide", "Mode", "Steerer", "SteeringOptions", "Suggestion"]

class Steerer:
    """The suggestions of one steering agent and what became of them."""

    def __init__(self, audit: Audit, targets: Targets, options: SteeringOptions, mode: Mode,
                 decide: Decide, approvals: ApprovalCheck | None = None) -> None:
        self.audit = audit
        self.approvals = approvals
        """Checks the proof an approval or rejection carries (None: none are accepted)."""
        self.targets_ = targets
        self.options = options
        self.mode = mode
        self.decide = decide
        self.ratio_threshold = 2.5
        """The detector's: a later call this much slower than the baseline is still slow."""
        self.limiter = RateLimiter()
        self.suggestions_: dict[str, Suggestion] = {}
        self.checks: dict[str, Suggestion] = {}
        """Applied suggestions whose effect is being checked."""
        self.active: set[tuple[str, str, str | None, str]] = set()
        """Remedy keys with a change being checked (one change at a time per knob)."""
        self.reverted: dict[tuple[str, str, str | None, str], float] = {}
        self.again: dict[str, tuple[Suggestion, str]] = {}
        """Suggestions that helped but did not resolve, waiting for the rate limit to allow
        the next step (id -> (suggestion, the check's reason))."""
        self.by_key: dict[tuple[str, str], Suggestion] = {}
        """(group, slow agent) -> the latest suggestion about it."""
        self.minor: dict[tuple[str, str], list[tuple[float, int]]] = {}
        """(group, slow agent) -> recent slow calls too few to act on."""
        self.incidents = 0

    def queries(self) -> list[CheckQuery]:
        """What the next poll must answer for the open checks."""
        return [CheckQuery(sid, s.incident.agent_class, s.incident.action, [s.agent],
                           s.incident.start, s.t_apply) for sid, s in self.checks.items()]

    async def on_incident(self, inc: SteerIncident) -> None:
        """Record the incident; then, per slow agent (at most ``max_agents``), a suggestion
        unless one already covers that agent (the detector splits a slowdown into several
        incidents when normal calls come in between)."""
        self.incidents += 1
        covered = {a: p for a in inc.agents
                   if (p := self.by_key.get((inc.group, a))) is not None and self._open(p)}
        self.audit.emit("incident", "incident %s: %s", inc.id, inc.description,
                        level=logging.WARNING, description=inc.description,
                        continues=sorted({p.id for p in covered.values()}) or None,
                        **inc.as_fields())
        fresh = [a for a in inc.agents if a not in covered and self._serious(inc, a)]
        if not fresh:
            return  # covered, or one call a little slow: often the machine, not the workflow
        if inc.kind != "slowdown":
            self.audit.emit("escalation", "incident %s: %s; no remedy is declared for it",
                            inc.id, inc.kind, level=logging.WARNING, incident=inc.id,
                            reason=inc.kind)
            return
        for agent in fresh[: self.options.max_agents]:
            await self._suggest(inc, agent)

    async def _suggest(self, inc: SteerIncident, agent: str) -> None:
        remedies, notes = await self._remedies(inc, agent)
        decision = await self.decide(inc, remedies)
        remedy = next((r for r in remedies if r.id == decision.remedy), None)
        sid = f"s{len(self.suggestions_) + 1}"
        sugg = Suggestion(sid, inc, agent, remedy, decision, "suggested",
                          session=self.audit.session)
        self.suggestions_[sid] = sugg
        self.by_key[(inc.group, agent)] = sugg
        fields = remedy.as_fields() if remedy else {"action": "none"}
        self.audit.emit("suggestion", "suggestion %s for incident %s on %s: %s", sid, inc.id,
                        agent, remedy.describe() if remedy else "no remedy", id=sid,
                        incident=inc.id, agent_slow=agent, summary=decision.summary,
                        why=decision.why, source=decision.source, llm_error=decision.error,
                        alternatives=len(remedies), reason="; ".join(notes) or None, **fields)
        if remedy is None:
            return
        if self.mode == "confirm":
            sugg.status = "pending"
        elif self.mode == "apply":
            await self._apply(sugg, None)

    def _serious(self, inc: SteerIncident, agent: str) -> bool:
        """The agent's part of the incident is at least ``min_severity``, or its slow calls
        add up to ``min_calls`` within ``cooldown_s``."""
        o = self.options
        count, ratio = inc.per_agent.get(agent, (0, 0.0))
        if SEVERITY.index(severity(ratio, count)) >= SEVERITY.index(o.min_severity):
            return True
        now = time.monotonic()
        key = (inc.group, agent)
        seen = [(t, n) for t, n in self.minor.get(key, []) if now - t < o.cooldown_s]
        seen.append((now, count))
        self.minor[key] = seen
        return sum(n for _, n in seen) >= o.min_calls

    def _open(self, sugg: Suggestion) -> bool:
        """Whether later incidents of the same kind are still this suggestion's business."""
        if sugg.status == "pending" or sugg.id in self.checks:
            return True
        return time.monotonic() - sugg.created < self.options.cooldown_s and \
            sugg.status in ("suggested", "refused", "failed", "rejected", "expired")

    async def _remedies(self, inc: SteerIncident, agent: str
                        ) -> tuple[list[Remedy], list[str]]:
        """The allowed calls for ``agent``'s part of ``inc``, and why others were left out."""
        o = self.options
        out: list[Remedy] = []
        notes: list[str] = []
        blocked = self.targets_.blocked(agent)
        if blocked is not None:
            return out, [f"{agent} is not steered: {blocked}"]
        uid, why = await self.targets_.resolve(agent)
        if uid is None:
            notes.append(f"no call can be about {agent}: {why}")
        candidates = list(plans(agent, uid, list(self.targets_.found.values())))
        if not candidates and uid is not None:
            notes.append(f"no declared steerable action of a known agent fits {inc.group} "
                         f"on {agent}")
        for t, spec, knob, ref, ref_disp in candidates:
            where = f"{spec.action} on {t.agent_id}" + (f" for {ref_disp}" if ref_disp else "")
            if len(spec.knobs) > 1:
                where += f" ({knob})"
            blocked = self.targets_.blocked(t.agent_id)
            if blocked is not None:
                notes.append(f"{where}: {t.agent_id} is not steered: {blocked}")
                continue
            if (t.uuid, spec.action, ref, knob) in self.active:
                # One change at a time: the last one is still being checked.
                notes.append(f"{where}: an earlier change is still being checked")
                continue
            reverted = self.reverted.get((t.uuid, spec.action, ref, knob))
            if reverted is not None and time.monotonic() - reverted < o.revert_cooldown_s:
                notes.append(f"{where}: the same change was reverted recently")
                continue
            current, others = await self._current(t.uuid, spec, knob, ref)
            args = remedy_args(spec, current, ref, knob, others)
            if args is None:
                notes.append(f"{where}: nothing to change from {current!r}")
                continue
            prev = float(current) if isinstance(current, int | float) else None
            out.append(Remedy(f"r{len(out) + 1}", t, spec, args, prev, ref_disp, knob))
        return out, notes

    async def _current(self, uid: str, spec: SteerableSpec, knob: str, ref: str | None
                       ) -> tuple[Any, dict[str, Any]]:
        """The knob's value now (``None`` when unknown) and, for an action with several
        Range knobs, every knob's value (its getter returns a mapping)."""
        if spec.current is None:
            return None, {}
        try:
            value: Any = await asyncio.wait_for(
                self.targets_.handle(uid).action(spec.current, **spec.getter_args(knob, ref)),
                self.options.call_timeout_s)
        except Exception:
            return None, {}
        others: dict[str, Any] = {}
        if isinstance(value, dict):
            others = {k: v for k, v in value.items() if k in spec.knobs}
            value = value.get(knob)
        if not (isinstance(value, int | float) and not isinstance(value, bool)):
            return None, others
        return value, others

    async def _apply(self, sugg: Suggestion, by: str | None) -> None:
        r = sugg.remedy
        assert r is not None
        why = r.spec.check(r.args)
        if why is None and r.key in self.active:
            why = "another change of this knob is still being checked"
        if why is None and not self.limiter.allowed(r.rate_key, r.spec.max_per_minute):
            why = f"rate limit ({r.spec.max_per_minute:g} per minute)"
        if why is not None:
            sugg.status = "refused"
            self.audit.emit("escalation", "not applying %s: %s", sugg.id, why,
                            level=logging.WARNING, id=sugg.id, incident=sugg.incident.id,
                            reason=why, **r.as_fields())
            return
        self.limiter.record(r.rate_key)
        self.active.add(r.key)
        ok = await self._call("apply", sugg, r.args, by)
        if not ok:
            self.active.discard(r.key)
            sugg.status = "failed"
            return
        sugg.status = "applied"
        sugg.t_apply = time.time()
        self.checks[sugg.id] = sugg

    async def _call(self, kind: str, sugg: Suggestion, args: dict[str, Any],
                    by: str | None) -> bool:
        """One audited call of the remedy's action: events before and after it."""
        r = sugg.remedy
        assert r is not None
        common = {"id": sugg.id, "incident": sugg.incident.id, "approved_by": by,
                  **r.as_fields(), "args": args}
        call = ", ".join(f"{k}={v!r}" for k, v in args.items())
        self.audit.emit(kind, "%s %s: calling %s(%s) on %s", kind, sugg.id, r.spec.action, call,
                        r.target.agent_id, phase="before", **common)
        try:
            result: Any = await asyncio.wait_for(
                self.targets_.handle(r.target.uuid).action(r.spec.action, **args),
                self.options.call_timeout_s)
        except asyncio.CancelledError:  # shut down mid-call: the trail still closes
            self.audit.emit(kind, "%s %s cancelled", kind, sugg.id, level=logging.WARNING,
                            phase="after", result="cancelled", **common)
            raise
        except Exception as exc:
            self.audit.emit(kind, "%s %s failed: %r", kind, sugg.id, exc, level=logging.ERROR,
                            phase="after", result="error", reason=repr(exc)[:300], **common)
            return False
        if r.spec.returns_previous and r.previous is None and isinstance(result, int | float):
            r.previous = float(result)
        self.audit.emit(kind, "%s %s done: %s(%s) on %s returned %s", kind, sugg.id,
                        r.spec.action, call, r.target.agent_id, repr(result)[:60],
                        phase="after", result="ok", returned=repr(result)[:200], **common)
        return True

    async def on_check(self, sid: str, data: CheckData) -> None:
        sugg = self.checks.get(sid)
        if sugg is None or sugg.remedy is None:
            return
        r = sugg.remedy
        # Against what a call took before the incident (the watch's median of the calls
        # before it, else the level the incident was seen against): the live baseline
        # re-learns a lasting change, and "resolved" means back near normal.
        data.baseline_s = data.baseline_s or sugg.incident.baseline_s
        verdict, why = judge(data, r.spec.ref is not None, self.ratio_threshold,
                             sugg.incident.median_ratio, self.options.check_calls)
        if verdict is None:
            if time.time() - sugg.t_apply < self.options.check_timeout_s:
                return
            verdict = "inconclusive"
        del self.checks[sid]
        sugg.status = verdict
        self.audit.emit("check", "check %s: %s (%s)", sid, verdict, why,
                        level=logging.INFO if verdict == "resolved" else logging.WARNING,
                        id=sid, incident=sugg.incident.id, result=verdict, reason=why,
                        later_calls=len(data.later_on), **r.as_fields())
        self.active.discard(r.key)
        if verdict == "not_improved":
            await self._revert(sugg)
        elif verdict == "improved":
            # Helped, not fixed: the next step within the declared range (when the rate
            # allows: until then it waits, see tick()).
            self.again[sugg.id] = (sugg, why)
            await self.tick()
        elif verdict == "inconclusive":
            self._escalate(sugg, "too few later calls to tell whether the change helped")

    async def _revert(self, sugg: Suggestion) -> None:
        r = sugg.remedy
        assert r is not None
        if r.previous is None:
            self._escalate(sugg, "the change did not help and its previous value is unknown")
            return
        args = r.spec.args_for(r.knob, r.previous, r.args.get(r.spec.ref or ""), r.args)
        why = None if args is not None else \
            f"{r.knob}={r.previous!r} is outside {r.spec.range_of(r.knob).as_dict()}"
        if args is None or why is not None:
            self._escalate(sugg, f"the change did not help and reverting is not allowed: {why}")
            return
        self.reverted[r.key] = time.monotonic()
        if await self._call("revert", sugg, args, None):
            sugg.status = "reverted"
        self._escalate(sugg, "the change did not end the slowdown; reverted"
                       if sugg.status == "reverted" else "the change did not help; revert "
                       "failed")

    def _escalate(self, sugg: Suggestion, why: str) -> None:
        self.audit.emit("escalation", "suggestion %s needs a person: %s", sugg.id, why,
                        level=logging.WARNING, id=sugg.id, incident=sugg.incident.id,
                        reason=why)

    async def tick(self) -> None:
        """Once per poll: take the next step for changes that helped but did not resolve
        (as soon as the action's rate allows), and expire old pending suggestions."""
        for sid, (sugg, why) in list(self.again.items()):
            r = sugg.remedy
            if r is None or r.key in self.active:
                continue
            if not self.limiter.allowed(r.rate_key, r.spec.max_per_minute):
                continue
            del self.again[sid]
            await self._step_again(sugg, why)
        self.expire()

    async def _step_again(self, sugg: Suggestion, why: str) -> None:
        await followup.step_again(self, sugg, why)

    def adopt(self, o: Orphan) -> bool:
        """Check an earlier steering agent's applied, never checked change as one's own
        (:func:`steering.followup.adopt`); ``False`` while its target is not known yet."""
        return followup.adopt(self, o)

    def expire(self) -> None:
        now = time.monotonic()
        for s in self.suggestions_.values():
            if s.status == "pending" and now - s.created > self.options.approval_timeout_s:
                s.status = "expired"
                self.audit.emit("expiry", "suggestion %s expired without approval", s.id,
                                id=s.id, incident=s.incident.id)

    async def approve(self, suggestion_id: Any, by: str, proof: Any = None
                      ) -> dict[str, Any]:
        """Apply a pending suggestion (mode ``confirm``) when ``proof`` shows the session's
        user approved exactly its call; its new state (``denied`` says why not)."""
        sugg = self._pending(suggestion_id)
        if isinstance(sugg, dict):
            return sugg
        why = self._denied("approve", sugg, by, proof)
        if why is not None:
            return {**sugg.as_dict(), "denied": why}
        self.audit.emit("approval", "suggestion %s approved by %s", sugg.id, by, id=sugg.id,
                        incident=sugg.incident.id, approved_by=by)
        await self._apply(sugg, by)
        return sugg.as_dict()

    def reject(self, suggestion_id: Any, by: str, reason: str = "", proof: Any = None
               ) -> dict[str, Any]:
        """Drop a pending suggestion (with the same proof as an approval); its new state."""
        sugg = self._pending(suggestion_id)
        if isinstance(sugg, dict):
            return sugg
        why = self._denied("reject", sugg, by, proof)
        if why is not None:
            return {**sugg.as_dict(), "denied": why}
        sugg.status = "rejected"
        self.audit.emit("rejection", "suggestion %s rejected by %s", sugg.id, by, id=sugg.id,
                        incident=sugg.incident.id, rejected_by=by,
                        reason=str(reason)[:200] or None)
        return sugg.as_dict()

    def _denied(self, verb: str, sugg: Suggestion, by: str, proof: Any) -> str | None:
        """Why ``proof`` does not let ``by`` ``verb`` the suggestion (audited), or None."""
        r = sugg.remedy
        digest = suggestion_digest(r.target.uuid, r.spec.action, args_json(r.args)) \
            if r is not None else ""
        why = (self.approvals.why_not(verb, sugg.id, digest, proof) if self.approvals
               is not None else "approvals are off")
        if why is not None:
            self.audit.emit("denied", "%s of %s by %s refused: %s", verb, sugg.id, by, why,
                            level=logging.WARNING, id=sugg.id, incident=sugg.incident.id,
                            reason=why, caller=by, verb=verb)
        return why

    def _pending(self, suggestion_id: Any) -> Suggestion | dict[str, Any]:
        sugg = self.suggestions_.get(str(suggestion_id)[:32])
        if sugg is None:
            return {"id": str(suggestion_id)[:32], "status": "unknown"}
        if sugg.status != "pending":
            return sugg.as_dict()
        return sugg
