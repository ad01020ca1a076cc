"""The steering agent's eyes: tail a run's pool, keep a live slowdown detector, hand back
new incidents and the calls that tell whether a change helped.

Pure data work (features only, no academy), run in a worker thread by the agent: one
:meth:`Watch.step` per poll. What it hands back is plain values; everything in it that came
from log records (classes, actions, agent ids) is data to show and match, never instructions.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.anomaly import SlowdownDetector
from features.detect import Incident, LiveDetector
from features.run import Run
from features.things import MSG_LAUNCHED, launch_claims, msg_rows

CHANGES = ("level_shift", "drift")
"""Detector kinds the steering agent acts on as slowdowns (a lasting one)."""


@dataclass
class SteerIncident:
    """An incident as the steering agent tracks it."""

    id: str
    """The agent's own id (``i1``, ``i2``...), stable while the incident grows."""
    kind: str
    agent_class: str
    action: str
    agents: list[str]
    """Display ids of the agents whose calls were slow."""
    agent_uuids: dict[str, str]
    """Display id -> full uuid as the run's first ``Launched agent`` record claims it (for
    showing only: who a call goes to is decided by :class:`steering.targets.Targets`)."""
    start: float
    end: float
    count: int
    max_ratio: float
    excess_s: float
    severity: str
    description: str
    tags: list[str]
    evidence: list[str]
    """``FILE:LINE`` of a few of its records."""
    baseline_s: float | None
    """What a normal call of the group took before the incident (median)."""
    median_ratio: float
    """Median of its calls' ratios to ``baseline_s`` (NaN when unknown)."""
    per_agent: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Display id -> (slow calls, largest ratio) of each agent."""
    change: str | None = None
    """The detector's kind when the calls changed level (``level_shift``, ``drift``): the
    steering agent treats it as a slowdown (``kind``), against the level before it."""
    cause: list[str] = field(default_factory=list)
    """What happened around the change (``features.around``), for the summary."""

    @property
    def group(self) -> str:
        return f"{self.agent_class}.{self.action}"

    def as_fields(self) -> dict[str, Any]:
        """The audit fields of the incident."""
        return {"incident": self.id, "incident_kind": self.kind, "group": self.group,
                "change": self.change, "cause": self.cause or None,
                "agents": self.agents, "count": self.count,
                "max_ratio": round(self.max_ratio, 3) if math.isfinite(self.max_ratio) else None,
                "excess_s": round(self.excess_s, 4), "severity": self.severity,
                "since": self.start, "evidence": self.evidence, "baseline_s": self.baseline_s}


@dataclass
class CheckQuery:
    """Which calls tell whether a change helped."""

    key: str
    agent_class: str
    action: str
    agents: list[str]
    """Display ids of the slow agents."""
    t_from: float
    """Start of the incident."""
    t_apply: float
    """When the change was made: calls that started after it count as 'later'."""


@dataclass
class CheckData:
    """The calls of a check's group, before and after the change."""

    later_on: list[float]
    """Durations of later calls on the slow agents."""
    later_others: list[float]
    """Durations of later calls on other agents of the group."""
    before_on: int
    before_all: int
    """Calls on the slow agents / in the group between the incident's start and the change."""
    baseline_s: float | None


@dataclass
class StepResult:
    """What one poll found."""

    records: int
    new_incidents: list[SteerIncident] = field(default_factory=list)
    checks: dict[str, CheckData] = field(default_factory=dict)
    claims: list[dict[str, Any]] | None = None
    """``agent_id``, ``uuid``, ``class``, ``row`` of every ``Launched agent`` record (what
    the pool claims, to be checked against the exchange), when new ones arrived."""
    judged: int = 0
    cpu_s: float = 0.0
    """Thread CPU time this step took."""
    judge_wait_s: float = 0.0
    """How long full judgements wait for each other on this run (its size; see
    :meth:`Watch.step`)."""


JUDGE_BUDGET = 0.04
"""Share of a core the watcher's full judgements take on average, at most (a steering
agent passes its own ``cpu_budget``, the same by default)."""

FREE_JUDGE_S = 0.2
"""A judgement that took less CPU than this never makes the next one wait: runs of up to
a few hundred thousand records are judged on every poll that brings something new, as
before (steering must act within a short run)."""


class Watch:
    """One run's pool, tailed; not thread-safe (one step at a time)."""

    def __init__(self, pool_dir: str | os.PathLike[str], hung_every_s: float = 5.0,
                 stale_s: float = 30.0, budget: float = JUDGE_BUDGET) -> None:
        self.pool_dir = Path(pool_dir)
        self.hung_every_s = hung_every_s
        self.budget = budget
        """Share of a core the full judgements may take on average (see :meth:`step`)."""
        self._judge_cpu = 0.0
        """CPU seconds the last full judgement took."""
        self._last_judged = -math.inf
        self._pending = False
        self._pending_change = False
        self.stale_s = stale_s
        """Incidents that ended longer ago than this (attaching late) are history."""
        self.run: Run | None = None
        # Baselines only: they decide what is slow; the multivariate forest only ranks
        # and adds context, and scoring it on every poll (and once per call judged late)
        # costs several times the CPU a watcher may spend.
        self.live = LiveDetector(SlowdownDetector(multivariate=False))
        self._tag_owner: dict[tuple[str, str], str] = {}
        """(family, call tag) -> the first incident of ours it was part of: calls (slow or
        hung) and changes (level shifts, drift) are two families, so a level shift whose
        first calls were a slowdown is still said once."""
        self._reported: dict[str, set[str]] = {}
        """Our incident -> the agents it was about."""
        self._n_incidents = 0
        self._last_hung = 0.0
        self._n_claims = -1

    def step(self, ignore_classes: set[str], ignore_actions: set[str],
             checks: list[CheckQuery]) -> StepResult:
        """Read what is new, judge it, and answer the ``checks``."""
        cpu0 = time.thread_time()
        if self.run is None:
            if not self.pool_dir.is_dir():
                raise FileNotFoundError(f"no pool directory at {self.pool_dir}")
            self.run = Run(self.pool_dir)
            self.run.load(workers=1)
        else:
            self.run.refresh()
        run = self.run
        out = StepResult(records=len(run.store))
        newly = self.live.update(run)
        now = time.time()
        self._pending_change |= self.live.new_changes > 0
        self._pending |= bool(newly) or self._pending_change
        hung_due = now - self._last_hung >= self.hung_every_s
        # A full judgement (every call's flags, every series' change points, and for hangs
        # a pass over the run) costs CPU that grows with the run: 13 s a time on 10M
        # records, which every few seconds was 93 % of a core. It waits until the last
        # one's CPU is at most ``budget`` of the time since; what arrived meanwhile is
        # judged then (on small runs, no wait at all).
        out.judge_wait_s = self._judge_cpu / self.budget \
            if self.budget > 0 and self._judge_cpu > FREE_JUDGE_S else 0.0
        if (self._pending or hung_due) and now - self._last_judged >= out.judge_wait_s:
            if hung_due:
                self._last_hung = now
            cpu1 = time.thread_time()
            # The run for what happened around a change and for hangs; in-flight calls are
            # featurised (a pass over the run) only every hung_every_s.
            res = self.live.result(run if hung_due or self._pending_change else None,
                                   hangs=hung_due)
            self._judge_cpu = time.thread_time() - cpu1
            self._last_judged = now
            self._pending = self._pending_change = False
            for inc in res.incidents:
                if inc.agent_class in ignore_classes or inc.action in ignore_actions:
                    continue
                if inc.kind in ("speedup", "drift") and inc.max_ratio < 1:
                    continue  # faster: nothing to fix
                mine = self._incident(inc, run, now)
                if mine is not None:
                    out.new_incidents.append(mine)
        out.claims = self._claims(run)
        out.checks = {q.key: self._check(run, q) for q in checks}
        out.judged = self.live.completed
        out.cpu_s = time.thread_time() - cpu0
        return out

    def _incident(self, inc: Incident, run: Run, now: float) -> SteerIncident | None:
        """Ours, if ``inc`` is new (no tag of it was seen in an earlier incident) or grew to
        agents no earlier incident was about (then about those agents only), and not stale;
        its tags are remembered either way."""
        family = "change" if inc.kind in CHANGES else "calls"
        keys = [(family, t) for t in inc.tags] or [(family, f"{inc.group}@{inc.start}")]
        owners = {self._tag_owner[k] for k in keys if k in self._tag_owner}
        known: set[str] = set().union(*(self._reported[o] for o in owners))
        fresh = [a for a in inc.agents if a not in known]
        if owners and not fresh:
            return None
        self._n_incidents += 1
        ident = f"i{self._n_incidents}"
        for k in keys:
            self._tag_owner.setdefault(k, ident)
        self._reported[ident] = set(fresh)
        if now - inc.end > self.stale_s:
            return None
        ag = run.agents()
        uuids = {str(a): str(u) for a, u in zip(ag["agent_id"].tolist(), ag["uuid"].tolist(),
                                                strict=True) if u}
        ev = run.events()
        evidence = [f"{ev.file_names[int(ev.file[r])]}:{ev.line_text(r)}"
                    for r in inc.evidence_rows[:6]]
        med = None
        if inc.kind in CHANGES:  # the level before the change
            m = float(inc.detail.get("before_s") or math.nan)
            med = m if math.isfinite(m) else None
        base = getattr(self.live.detector, "baselines_", {}).get((inc.agent_class, inc.action))
        if med is None and base is not None:
            m = base.median.get("exec_s", math.nan)
            if not math.isfinite(m):
                m = base.median.get("total_s", math.nan)
            med = float(m) if math.isfinite(m) else None
        return SteerIncident(
            id=ident, kind="slowdown" if inc.kind in CHANGES else inc.kind,
            agent_class=inc.agent_class, action=inc.action,
            agents=fresh, agent_uuids={a: uuids[a] for a in fresh if a in uuids},
            start=inc.start, end=inc.end, count=inc.count, max_ratio=inc.max_ratio,
            excess_s=inc.excess_s, severity=inc.severity, description=inc.describe(),
            tags=list(inc.tags), evidence=evidence, baseline_s=med,
            median_ratio=_median([t.get("ratio") for t in inc.things]),
            per_agent=_per_agent(inc.things),
            change=inc.kind if inc.kind in CHANGES else None, cause=list(inc.cause))

    def _claims(self, run: Run) -> list[dict[str, Any]] | None:
        ev = run.events()
        n = len(msg_rows(ev, MSG_LAUNCHED))
        if n == self._n_claims:
            return None
        self._n_claims = n
        return launch_claims(ev).records()

    def _check(self, run: Run, q: CheckQuery) -> CheckData:
        acts = run.actions()
        dur = np.where(np.isfinite(acts["exec_s"]), acts["exec_s"], acts["total_s"])
        grp = (acts["agent_class"] == q.agent_class) & (acts["action"] == q.action)
        on = np.isin(acts["agent_id"].astype(object), np.array(q.agents, dtype=object))
        done = acts["status"] == "ok"
        later = grp & done & (acts["t_start"] >= q.t_apply) & np.isfinite(dur)
        before = grp & (acts["t_start"] >= q.t_from) & (acts["t_start"] < q.t_apply)
        med = pre_incident(dur, grp & done & np.isfinite(dur), on, acts["t_start"], q.t_from)
        base = getattr(self.live.detector, "baselines_", {}).get((q.agent_class, q.action))
        if med is None and base is not None and base.enough:
            m = base.median.get("exec_s", math.nan)
            med = float(m) if math.isfinite(m) else None
        return CheckData(later_on=dur[later & on].tolist(),
                         later_others=dur[later & ~on].tolist(),
                         before_on=int((before & on).sum()), before_all=int(before.sum()),
                         baseline_s=med)


PRE_CALLS = 50
"""Calls before an incident whose median is what "back to normal" means."""


def pre_incident(dur: np.ndarray, usable: np.ndarray, on: np.ndarray, t_start: np.ndarray,
                 t_from: float) -> float | None:
    """The median of the last :data:`PRE_CALLS` usable calls that started before
    ``t_from`` on the slow agents (on the whole group when those have fewer than 3): what
    a call took before the incident, whatever the live baseline learnt since (it
    re-baselines a lasting change, and would call a change that halved a 4x slowdown
    back to normal)."""
    before = usable & (t_start < t_from)
    for mask in (before & on, before):
        idx = np.flatnonzero(mask)
        if len(idx) >= 3:
            idx = idx[np.argsort(t_start[idx], kind="stable")][-PRE_CALLS:]
            return float(np.median(dur[idx]))
    return None


def _median(values: list[Any]) -> float:
    xs = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.median(xs)) if xs else math.nan


def _per_agent(things: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    out: dict[str, tuple[int, float]] = {}
    for t in things:
        a = t.get("agent_id")
        if a is None:
            continue
        r = t.get("ratio")
        r = float(r) if isinstance(r, int | float) and math.isfinite(r) else 0.0
        n, m = out.get(str(a), (0, 0.0))
        out[str(a)] = (n + 1, max(m, r))
    return out


def severity(max_ratio: float, count: int) -> str:
    """As ``features.detect`` grades incidents: high (5x or 5+ calls), medium (3.5x or
    3+ calls), low."""
    if max_ratio >= 5 or count >= 5:
        return "high"
    if max_ratio >= 3.5 or count >= 3:
        return "medium"
    return "low"
