"""Incidents of a run, finished or live: slowdowns from :class:`SlowdownDetector` flags,
level shifts, speed-ups and drift (:mod:`features.shifts`), and hangs
(:mod:`features.hangs`); see :mod:`features.incident` for the kinds and their words.

>>> from features.detect import detect
>>> result = detect(run)                 # fit on the whole run, judge every action
>>> for inc in result.incidents: print(inc.describe())
>>> result.as_dict()                     # JSON-ready

Live: ``live = LiveDetector()``; after each ``run.refresh()`` call ``live.update(run)``:
the actions that completed since are judged at once against the baseline learnt so far
(then join it if not slow), and the series they joined are searched for change points;
``live.result(run)`` gives every incident now, hung calls included.

A slowdown incident is a run of slow calls of one group, allowing ``max_gap``
(:data:`MAX_GAP`, 1) normal call between two slow ones (see
:mod:`features.incident_groups`). Where a group's calls changed level, each call is judged
against its own stretch of calls, not against the whole run's (a run made faster half way
is not a slowdown of its first half).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features import hangs, shifts
from features.anomaly import EMPTY_ACTIONS, SlowdownDetector
from features.baseline import group_name, jsonable
from features.featurize import DONE, Features, action_features
from features.featurize_live import ActionFeaturizer
from features.hangs import HUNG_FLAG
from features.incident import HUNG, KINDS, Incident
from features.incident_groups import MAX_GAP, incidents
from features.table import Table

if TYPE_CHECKING:
    from features.baseline import GroupBaseline
    from features.run import Run
    from features.shifts import Shift

LIVE_WINDOW = 1000
"""Latest calls of a group searched for change points on each live update."""


@dataclass
class DetectionResult:
    """What :func:`detect` (or :meth:`LiveDetector.result`) found."""

    incidents: list[Incident]
    baselines: list[GroupBaseline]
    flags: Table
    """Per action: flag (slow, ok, warm-up, not enough data, in flight, possibly hung,
    no duration), ratio, z, excess, per-duration ratios, mv_score, incident id."""
    notes: list[str]
    live: bool
    now: float
    t0: float = math.nan
    """Start of the run (what ``+12.3 s`` in the words counts from)."""

    @property
    def too_little_data(self) -> list[str]:
        """Groups that have no baseline yet (nothing in them is judged)."""
        return [b.group for b in self.baselines if not b.enough]

    def lines(self) -> list[str]:
        """A plain summary."""
        if not self.incidents:
            out = ["No slowdowns, level shifts, drift or hangs found."]
        else:
            out = [f"{len(self.incidents)} incident(s):"]
            out += ["  " + i.describe() for i in self.incidents]
        return out + [f"Note: {n}" for n in self.notes]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``orjson.dumps(result.as_dict())``)."""
        return {
            "incidents": [i.as_dict() for i in self.incidents],
            "baselines": [b.as_dict() for b in self.baselines],
            "flags": jsonable(self.flags.records()),
            "notes": list(self.notes),
            "too_little_data": self.too_little_data,
            "live": self.live,
            "now": jsonable(self.now),
            "t0": jsonable(self.t0),
        }


def _finish(det: SlowdownDetector, flags: Table, inflight: Features | None, now: float,
            live: bool, max_gap: int, run: Run | None = None,
            causes: dict[Any, tuple[list[str], list[int]]] | None = None) -> DetectionResult:
    """Judge the ``inflight`` calls for hanging at ``now``, add them to ``flags``, judge
    the calls of groups that changed level against their own stretch, group the incidents
    (with what happened around each change, when ``run`` is given; ``causes`` keeps them
    from one call to the next) and write the notes."""
    notes: list[str] = []
    flags = hangs.mark(_with_inflight(det, flags, inflight, now, notes), det, run)
    t0 = _t0(run, flags)
    analyses = shifts.analyse_flags(flags)
    flags = shifts.rejudge(flags, det, analyses)
    found = incidents(flags, max_gap, t0)
    changes = shifts.incidents(flags, shifts.shifts(analyses), t0)
    if run is not None:
        _add_causes(run, flags, changes, causes)
        found += hangs.shutdowns(run, now, live, det.hung_min_s)
    found += [inc for inc, _ in changes]
    found.sort(key=lambda i: (i.start, KINDS.index(i.kind)))
    flags = flags.with_column("incident", _numbered(found, flags))
    # By group, not by the order groups were rebuilt in (a set's, which changes with
    # the process's string hashing: the report's notes came out in either order).
    baselines = sorted(getattr(det, "baselines_", {}).values(), key=lambda b: str(b.group))
    notes += [f"{b.group}: not enough data (n={b.n}: {b.n_baseline} usable past warm-up "
              f"and errors, {det.min_n} needed)" for b in baselines if not b.enough]
    notes.extend(getattr(det, "notes_", []))
    return DetectionResult(found, baselines, flags, notes, live, now, t0)


def _with_inflight(det: SlowdownDetector, flags: Table, inflight: Features | None,
                   now: float, notes: list[str]) -> Table:
    """``flags`` (completed calls) with the columns only a call in flight fills, and the
    ``inflight`` calls judged for hanging appended: one table for the incidents."""
    n_done = len(flags)
    extra = _judge_inflight(det, inflight, now, notes) \
        if inflight is not None and len(inflight.table) else None
    flags = flags.with_column("elapsed_s", np.full(n_done, np.nan)) \
        .with_column("hung_threshold_s", np.full(n_done, np.nan)) \
        .with_column("hung_how", np.full(n_done, None, dtype=object))
    if extra is None:
        return flags
    return Table({c: np.concatenate([flags[c], extra[c]]) for c in flags.columns},
                 name=flags.name)


def _judge_inflight(det: SlowdownDetector, inflight: Features, now: float,
                    notes: list[str]) -> Table:
    """The flags of the calls in flight at ``now``, those past their group's limit hung,
    with how long each has run against its group's typical call (a note says how many
    could not be judged: their group has no baseline yet)."""
    extra = det.assess(inflight)
    hung, thr = det.hung(inflight, now)
    flag = np.array(extra["flag"], dtype=object)
    flag[hung] = HUNG_FLAG
    elapsed = now - np.asarray(inflight.table["t_start"], dtype=np.float64)
    # How long it has been in flight, against the group's typical call.
    base = getattr(det, "baselines_", {})
    med = np.array([base[g].median.get("total_s", math.nan) if g in base else math.nan
                    for g in zip(extra["agent_class"], extra["action"], strict=True)])
    how = np.full(len(flag), None, dtype=object)
    how[hung] = "in flight"
    if np.isnan(thr).any():
        notes.append(f"{int(np.isnan(thr).sum())} call(s) in flight in groups without "
                     "a baseline cannot be judged for hanging")
    return extra.with_column("flag", flag).with_column("elapsed_s", elapsed) \
        .with_column("hung_threshold_s", thr).with_column("hung_how", how) \
        .with_column("ratio", np.where(hung, elapsed / med, np.nan)) \
        .with_column("excess_s", np.where(hung, elapsed - med, np.nan)) \
        .with_column("baseline_s", np.where(hung, med, np.nan))


def _add_causes(run: Run, flags: Table, changes: list[tuple[Incident, list[Shift]]],
                causes: dict[Any, tuple[list[str], list[int]]] | None) -> None:
    """Give each change incident what happened around it (its cause and evidence rows),
    worked out once per change when ``causes`` remembers them between calls."""
    from features.around import causes as around

    for inc, grp in changes:
        key = (tuple(s.key for s in grp), inc.kind, inc.tags[0])
        got = causes.get(key) if causes is not None else None
        if got is None:
            got = around(run, flags, grp)
            if causes is not None:
                causes[key] = got
        inc.cause, more = list(got[0]), got[1]
        inc.evidence_rows += [r for r in more if r not in inc.evidence_rows]


def _numbered(found: list[Incident], flags: Table) -> np.ndarray:
    """Number ``found`` in order and say, per row of ``flags``, its call's incident (0:
    none). A call in a slowdown or a hang as well as in a change is marked with the
    former (they are numbered last, so they win)."""
    inc_of = np.zeros(len(flags), dtype=np.int64)
    pos = {t: i for i, t in enumerate(flags["tag"].tolist())}
    for k, inc in sorted(enumerate(found, start=1),
                         key=lambda ki: ki[1].kind in ("slowdown", HUNG)):
        inc.id = k
        for t in inc.tags:
            if t in pos:
                inc_of[pos[t]] = k
    return inc_of


def _t0(run: Run | None, flags: Table) -> float:
    """The run's first record, else the first call's start."""
    if run is not None and run.events().n:
        return float(run.events().t0)
    t = flags["t_start"] if len(flags) else np.zeros(0)
    return float(np.nanmin(t)) if np.isfinite(t).any() else math.nan


def _split(feats: Features) -> tuple[Features, Features]:
    """(completed, in flight) rows of ``feats``."""
    st = feats.table["status"]
    done = np.flatnonzero(np.isin(st, DONE)) if len(st) else np.zeros(0, np.int64)
    fly = np.flatnonzero(st == "in flight") if len(st) else np.zeros(0, np.int64)
    if len(done) == len(st):  # a finished run: no copy of every call's features
        return feats, Features(feats.table.take(fly), feats.X[fly], feats.names)
    return (Features(feats.table.take(done), feats.X[done], feats.names),
            Features(feats.table.take(fly), feats.X[fly], feats.names))


def _now(run: Run, now: float | None) -> tuple[float, bool]:
    live = run.live
    if now is not None:
        return now, live
    t1 = run.events().t1
    # A hung run writes nothing, so its last event stops moving: judge a live run by the
    # clock. A finished run is judged as of its last event.
    return (max(t1, time.time()) if live else t1), live


def detection(run: Run) -> DetectionResult:
    """:func:`detect` of ``run`` with the default detector, kept with the run until it
    grows (shared by the report, the app and ``ask``)."""
    result: DetectionResult = run.cached("detection", lambda: detect(run))
    return result


def detect(run: Run, detector: SlowdownDetector | None = None, now: float | None = None,
           max_gap: int = MAX_GAP) -> DetectionResult:
    """Fit a detector (a clone of ``detector``, default settings otherwise) on all the
    completed actions of ``run`` and judge every action; in-flight calls are judged for
    hanging at ``now`` (default: the clock for a live run, the last event otherwise)."""
    done, inflight = _split(action_features(run))
    # Its parameters, not its state (sklearn.base.clone, without importing scikit-learn).
    det = type(detector)(**detector.get_params(deep=False)) if detector is not None \
        else SlowdownDetector()
    det.fit(done)
    now, live = _now(run, now)
    return _finish(det, det.assess(done), inflight, now, live, max_gap, run)


class LiveDetector:
    """Judge actions as they complete, against a baseline that keeps learning.

    ``detector`` may be fitted already (warm start from an earlier run of the same
    workflow); otherwise each group's baseline forms once it has ``min_n`` calls, and the
    calls seen before that are judged then, retroactively."""

    def __init__(self, detector: SlowdownDetector | None = None,
                 max_gap: int = MAX_GAP) -> None:
        self.detector = detector if detector is not None else SlowdownDetector()
        self.max_gap = max_gap
        self.featurizer = ActionFeaturizer()
        self.completed = 0
        """Calls judged so far."""
        self.position: dict[str, int] = {}
        """Tag -> how many calls had completed when it completed (itself included)."""
        self.flagged_at: dict[str, int] = {}
        """Tag -> how many calls had completed when it was first judged slow."""
        self.changed_at: dict[tuple[Any, ...], int] = {}
        """(series, kind, tag of its first call) -> how many calls had completed when
        that change point was first found."""
        self.new_changes = 0
        """Change points found since the last :meth:`result`."""
        self._chunks: list[Table] = []
        """The flag tables judged so far, as ``assess`` gave them (one per update, one
        per group judged late): a call's row is kept where it was judged, not copied
        into a dict of its own (10M records: 715k calls, 130 s in a first update)."""
        self._rows: dict[str, tuple[int, int]] = {}
        """Tag -> (chunk, row) of its latest judgement, in the order first judged."""
        self._by_group: dict[str, list[str]] = {}
        self._pending: dict[str, list[Features]] = {}
        self._causes: dict[Any, tuple[list[str], list[int]]] = {}

    def update(self, run: Run) -> list[str]:
        """Judge the actions of ``run`` (refreshed by the caller) that completed since the
        last call; return the tags newly judged slow."""
        return self.update_features(self.featurizer.update(run))

    def update_features(self, feats: Features) -> list[str]:
        """Judge these completed calls (in completion order); return the tags newly
        judged slow (including earlier calls judged now that their group has a
        baseline)."""
        t = feats.table
        if not len(t):
            return []
        det = self.detector
        ready = {g for g, b in getattr(det, "baselines_", {}).items() if b.enough}
        flags = det.assess(feats)
        det.partial_fit(feats, flags=flags["flag"])
        newly: list[str] = []
        base = self.completed
        for i, tag in enumerate(t["tag"].tolist()):
            self.position[tag] = base + i + 1
        self.completed = base + len(t)
        self._keep(flags, newly, at=base)
        # Calls of groups with no baseline yet wait, a group's together (in completion
        # order), to be judged at once when it has one: judged alone they were one
        # ``assess`` each, 71k calls taking 19 s in the first update of a 1M-record run.
        waiting = flags["flag"] == "not enough data"
        if waiting.any():
            groups = flags["group"]
            for g in dict.fromkeys(groups[waiting].tolist()):
                idx = np.flatnonzero(waiting & (groups == g))
                self._pending.setdefault(g, []).append(
                    Features(t.take(idx), feats.X[idx], feats.names))
        now_ready = {g for g, b in det.baselines_.items() if b.enough} - ready
        for g in now_ready:
            for part in self._pending.pop(group_name(g), []):
                self._keep(det.assess(part), newly)
        self._changes({str(g) for g in flags["group"].tolist()})
        return newly

    _SERIES_COLS = ("tag", "agent_class", "action", "agent_id", "status", "t_start",
                    "duration_s", "call_index")

    def _changes(self, groups: set[str]) -> None:
        """Search the latest calls of ``groups`` for change points; count the new ones."""
        for g in groups:
            tags = self._by_group.get(g, [])[-LIVE_WINDOW:]
            if len(tags) < 2 * shifts.MIN_SEG:
                continue
            where = [self._rows[t] for t in tags]
            chunks = self._chunks
            t = Table({c: np.array([chunks[k][c][i] for k, i in where],
                                   dtype=object if c in ("tag", "agent_class", "action",
                                                         "agent_id", "status") else None)
                       for c in self._SERIES_COLS}, name="series")
            for s in shifts.shifts(shifts.analyse_flags(t)):
                key = (s.key, s.change.kind, str(t["tag"][s.rows[s.change.at]]))
                if key not in self.changed_at:
                    self.changed_at[key] = self.completed
                    self.new_changes += 1

    def _keep(self, flags: Table, newly: list[str], at: int | None = None) -> None:
        """Keep the judgements ``flags``; a call judged slow for the first time is said
        (in ``newly``) with how many calls had completed then: its own place when ``at``
        (the count before this table's first call), else the count now (judged late)."""
        c = len(self._chunks)
        self._chunks.append(flags)
        rows, by_group = self._rows, self._by_group
        slow = (flags["flag"] == "slow").tolist()
        for i, (tag, g) in enumerate(zip(flags["tag"].tolist(), flags["group"].tolist(),
                                         strict=True)):
            if tag not in rows:
                by_group.setdefault(str(g), []).append(tag)
            rows[tag] = (c, i)
            if slow[i] and tag not in self.flagged_at:
                self.flagged_at[tag] = self.completed if at is None else at + i + 1
                newly.append(tag)

    def flags(self) -> Table:
        """Every judged call so far, in completion order (its latest judgement)."""
        if not self._chunks:
            return self.detector.assess(Features(EMPTY_ACTIONS, np.empty((0, 0)), []))
        where = np.array(list(self._rows.values()), dtype=np.int64).reshape(-1, 2)
        chunk, row = where[:, 0], where[:, 1]
        by_chunk = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[by_chunk], np.arange(len(self._chunks) + 1))
        tpl = self._chunks[0]
        cols: dict[str, np.ndarray] = {}
        for name in tpl.columns:
            arr = np.empty(len(chunk), dtype=tpl[name].dtype)
            for k, part in enumerate(self._chunks):
                pos = by_chunk[bounds[k]:bounds[k + 1]]
                if len(pos):
                    arr[pos] = part[name][row[pos]]
            cols[name] = arr
        out = Table(cols, name="action_flags")
        # One table from now on: the next call gathers from it and what came since.
        self._chunks = [out]
        self._rows = dict(zip(self._rows, zip(itertools.repeat(0),
                                              range(len(out)), strict=False), strict=True))
        return out

    def result(self, run: Run | None = None, now: float | None = None,
               hangs: bool = True) -> DetectionResult:
        """Incidents so far; with ``run``, what happened around each change, hung
        shutdowns and (``hangs``) its in-flight calls judged for hanging."""
        inflight = None
        live = False
        when = time.time() if now is None else now
        if run is not None:
            when, live = _now(run, now)
            if hangs:
                inflight = self._inflight(run)
        self.new_changes = 0
        return _finish(self.detector, self.flags(), inflight, when, live, self.max_gap,
                       run, self._causes)

    def _inflight(self, run: Run) -> Features:
        """The features of the calls of ``run`` still in flight, alone: the features of
        every call (its arguments and results read back from the files) were 2.3 s of
        CPU at 1M records for the few in flight, at every look for hangs. Coded with the
        featurizer's own vocabulary, as the calls it judged were."""
        fly = np.flatnonzero(run.actions()["status"] == "in flight")
        return action_features(run, self.featurizer.vocab, only=fly)


__all__ = ["HUNG", "HUNG_FLAG", "KINDS", "MAX_GAP", "DetectionResult", "Incident",
           "LiveDetector", "detect", "incidents"]
