"""The app's state for one run: the features Run, the visible rows of the event view
(filter, level toggles, find matches) kept up to date incrementally as events arrive,
and the things/analyses snapshot the other views paint.

No widget code here: views read this object and workers update it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from features import analyses
from features.causes import Cause, causes
from features.events import Events
from features.fmt import fmt_age
from features.infra import infra_spans, process_series
from features.run import Run
from features.table import Table

if TYPE_CHECKING:
    from features.detect import DetectionResult, Incident
    from features.query import Node

LEVELS = (("DEBUG", 10), ("INFO", 20), ("WARNING", 30), ("ERROR", 40))
CLOSED_ENDS = ("clean", "empty", "source")
"""How a process that is over ends (``processes()["end"]``): a closing record last, no
records, or another source's file (which has no closing record to miss)."""


@dataclass
class Analysis:
    """Things and analyses computed together for one snapshot (in a worker)."""

    events: int
    actions: Table
    agents: Table
    processes: Table
    breakdown: analyses.TimeBreakdown
    stats: Table
    event_agents: tuple[np.ndarray, np.ndarray]
    """Per event, its agent as a code into a table (:meth:`Run.event_agent_codes`)."""
    concurrency: tuple[np.ndarray, np.ndarray]
    computed_s: float = 0.0
    steering: Table | None = None
    """The steering agent's decisions (see :func:`steering_marks`), or None."""
    causes: list[Cause] = field(default_factory=list)
    """What the excess went to (:func:`features.causes.causes`)."""
    infra: Table | None = None
    """Parsl blocks and managers (:func:`features.infra.infra_spans`), when joined on."""
    series: dict[int, Any] = field(default_factory=dict)
    """CPU and memory samples per pid (:func:`features.infra.process_series`)."""


STEERING_MARKED = ("suggestion", "approval", "rejection", "apply", "check", "revert",
                   "escalation", "expiry")
"""Kinds of ``steering.*`` records marked on the timeline (observations are not)."""


def steering_marks(run: Run) -> Table | None:
    """One row per steering decision of the run (``row``, ``t`` seconds since the epoch,
    ``agent_id`` of the steering agent, ``kind``, ``id``, ``session``, ``message``), from the
    steering agents' verified records; None when the run has none."""
    from features.trail import verified_rows

    ev = run.events()
    rows = verified_rows(run)
    if not len(rows):
        return None
    kind = ev.column("steering.kind")[rows]
    keep = np.isin(np.array([str(k) for k in kind], dtype=object), STEERING_MARKED)
    rows, kind = rows[keep], kind[keep]
    ident = (ev.column("steering.id")[rows] if "steering.id" in ev.store.key_shapes
             else np.full(len(rows), None, dtype=object))
    return Table({"row": rows.astype(np.int64), "t": ev.created[rows],
                  "agent_id": ev.column("academy.agent_id")[rows], "kind": kind,
                  "id": ident, "session": ev.column("steering.session")[rows],
                  "message": ev.column("message")[rows]}, name="steering")


@dataclass
class ViewState:
    """What the event view shows: rows in time order after filter and level toggles."""

    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    covered: int = 0
    """Store rows [0, covered) have been considered."""
    matches: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Positions in ``rows`` of find matches (``n``/``N``)."""
    times: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    """Sort times of ``rows`` (kept alongside so merging never gathers a million times)."""


class RunLock:
    """A lock that also pins the run's snapshot for its holder (:meth:`Run.pinned`): the
    rows of every table it gets are rows of the events it got."""

    def __init__(self, run: Run) -> None:
        self._lock = threading.Lock()
        self._run = run
        self._pin: contextlib.AbstractContextManager[Any] | None = None

    def __enter__(self) -> RunLock:
        self._lock.acquire()
        try:
            self._pin = self._run.pinned()
            self._pin.__enter__()
        except BaseException:
            self._pin = None
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        pin, self._pin = self._pin, None
        try:
            if pin is not None:
                pin.__exit__(None, None, None)
        finally:
            self._lock.release()


class RunModel:
    """One run as the app sees it."""

    def __init__(self, run: Run, expected_s: float | None = None) -> None:
        self.run = run
        self.expected_s = expected_s
        self.lock = threading.RLock()
        self.filter_text = ""
        self.filter_node: Node | None = None
        self.find_text = ""
        self.find_node: Node | None = None
        self.hidden_levels: set[int] = set()
        self.view = ViewState()
        self.analysis: Analysis | None = None
        self.detection: DetectionResult | None = None
        """The slowdown detector's latest judgement (``features.detect``), from a worker."""
        self.detected_events = -1
        """Events in the snapshot :attr:`detection` was computed on."""
        self.things_lock = RunLock(run)
        """Held by the workers that compute things of :attr:`run` (analysis, detection,
        explanations, diffs): the run caches them per snapshot, and its cache is not
        meant for two threads at once; the holder sees one snapshot of the run while the
        reader grows it. The UI thread never takes it."""
        self.loading = True
        self.load_done = 0
        self.load_total = 0
        self.notes: list[str] = []
        self.version = 0
        """Bumped whenever the visible rows change shape (filter, levels, reset)."""
        self.snapshot = Events(run.store, sync=False)
        """What the UI paints; replaced by :meth:`refresh_snapshot` (UI thread only).
        Workers take their own snapshots, so the UI never waits for them."""

    # -- snapshot ----------------------------------------------------------------------

    def events(self) -> Events:
        return self.snapshot

    def refresh_snapshot(self) -> Events:
        """Take a new snapshot of the store (cheap: views, no copies)."""
        store = self.run.store
        if store.ordered_rows() != self.snapshot.n or \
                len(store.files) != len(self.snapshot.file_names):
            self.snapshot = Events(store, sync=False)
        return self.snapshot

    # -- filter ------------------------------------------------------------------------

    @staticmethod
    def parse(text: str) -> Node | None:
        """The AST of a filter text (``None`` for empty); raises QueryError."""
        from features.query import parse  # a filter's first: not the first screen's

        return parse(text) if text.strip() else None

    def set_filter(self, text: str) -> None:
        """Apply a filter: recomputes the visible rows over the current snapshot. Safe to
        call from a worker: the new rows are computed aside and swapped in."""
        node = self.parse(text)
        self._rebuild(filter_text=text, filter_node=node)

    def _rebuild(self, **changes: Any) -> None:
        ev = self.snapshot
        with self.lock:
            for k, v in changes.items():
                setattr(self, k, v)
            version = self.version = self.version + 1
        view = self._compute(ev, ViewState())
        with self.lock:
            if version == self.version:  # a newer rebuild supersedes this one
                self.view = view
        self.update()

    def filter_notes(self, text: str) -> list[str]:
        """How a filter text meets the current snapshot (unknown keys with close matches,
        numbers compared with text, ...); empty for an empty or invalid text."""
        from features.query import QueryError, explain

        try:
            node = self.parse(text)
        except QueryError:
            return []
        return explain(node, self.snapshot) if node is not None else []

    def set_find(self, text: str) -> None:
        """Highlight rows matching ``text`` for ``n``/``N`` (the filter stays). Safe to
        call from a worker."""
        node = self.parse(text)
        with self.lock:
            self.find_text, self.find_node = text, node
            view = self.view
        matches = self._find_positions(view.rows)
        with self.lock:
            cur = self.view
            k = len(view.rows)
            if len(cur.rows) >= k and np.array_equal(cur.rows[:k], view.rows):
                tail = self._find_positions(cur.rows[k:]) + k
                self.view = ViewState(cur.rows, cur.covered, np.concatenate([matches, tail]),
                                      cur.times)
            else:  # the rows were rebuilt meanwhile: recompute against them
                self.view = ViewState(cur.rows, cur.covered, self._find_positions(cur.rows),
                                      cur.times)
            self.version += 1

    def toggle_level(self, levelno: int) -> None:
        """Hide or show one level band (DEBUG, INFO, WARNING, ERROR and above)."""
        hidden = set(self.hidden_levels)
        hidden.symmetric_difference_update({levelno})
        self._rebuild(hidden_levels=hidden)

    def _mask(self, ev: Events, rows: np.ndarray) -> np.ndarray:
        keep = np.ones(len(rows), dtype=bool)
        if self.hidden_levels:
            lv = ev.ints["levelno"][rows]
            for lo in self.hidden_levels:
                band = (lv >= lo) & (lv < lo + 10) if lo < 40 else lv >= 40
                keep &= ~band
        if self.filter_node is not None and len(rows):
            from features.query import evaluate

            keep &= evaluate(self.filter_node, ev, rows)
        return keep

    def _find_positions(self, rows: np.ndarray, ev: Events | None = None) -> np.ndarray:
        if self.find_node is None or not len(rows):
            return np.empty(0, dtype=np.int64)
        from features.query import evaluate

        hit = evaluate(self.find_node, ev or self.snapshot, rows)
        return np.flatnonzero(hit)

    def update(self) -> int:
        """Bring the visible rows up to date with the snapshot; returns rows added."""
        with self.lock:
            before = len(self.view.rows)
            self.view = self._compute(self.snapshot, self.view)
            return len(self.view.rows) - before

    def _compute(self, ev: Events, v: ViewState) -> ViewState:
        """``v`` extended with snapshot rows it has not considered yet. Runs on the UI
        thread for every ingested batch, so it must stay cheap at a million rows."""
        if ev.n <= v.covered:
            return v
        if self.filter_node is None and not self.hidden_levels:
            # Everything is shown: the store's merged order is the view, nothing to merge.
            rows = np.asarray(ev.order[: ev.n])
            return ViewState(rows, ev.n, self._find_positions(rows, ev),
                             np.asarray(ev.sorted_t[: ev.n]))
        new = np.arange(v.covered, ev.n, dtype=np.int64)
        new = new[self._mask(ev, new)]
        if not len(new):
            return ViewState(v.rows, ev.n, v.matches, v.times)
        key = ev.sort_key()
        new = new[np.argsort(key[new], kind="stable")]
        new_t = key[new]
        if not len(v.rows) or new_t[0] >= v.times[-1]:
            rows = np.concatenate([v.rows, new])
            times = np.concatenate([v.times, new_t])
            found = self._find_positions(new, ev) + len(v.rows)
            return ViewState(rows, ev.n, np.concatenate([v.matches, found]), times)
        pos = np.searchsorted(v.times, new_t, side="right")
        rows = np.insert(v.rows, pos, new)
        return ViewState(rows, ev.n, self._find_positions(rows, ev),
                         np.insert(v.times, pos, new_t))

    # -- analyses ----------------------------------------------------------------------

    def analyse(self) -> Analysis:
        """Recompute things and analyses for the current snapshot (call in a worker)."""
        t = time.perf_counter()
        run = self.run
        with self.things_lock:
            ev = run.events()
            acts = run.actions()
            tb = run.where_time_went(self.expected_s)
            result = Analysis(
                events=ev.n, actions=acts, agents=run.agents(), processes=run.processes(),
                breakdown=tb, stats=run.action_stats(),
                event_agents=run.event_agent_codes(), concurrency=run.concurrency("executing"),
                steering=steering_marks(run), infra=infra_spans(run),
                series=process_series(run),
                # The detector's incidents when it has judged this snapshot; else each
                # call far beyond its group's median (cheap).
                causes=causes(tb, run, self.detection if self.detected_events == ev.n
                              else None),
            )
        result.computed_s = time.perf_counter() - t
        self.analysis = result
        return result

    def detect(self) -> DetectionResult:
        """Judge every action for slowness (call in a worker): :func:`features.detect.detect`
        on the current snapshot; a live run's in-flight calls are judged for hanging."""
        from features.detect import detect  # scikit-learn: a heavy import, paid once

        with self.things_lock:
            n = self.run.events().n
            result = detect(self.run)
        self.detection, self.detected_events = result, n
        return result

    def explain_incident(self, inc: Incident, top: int = 5) -> list[str]:
        """What differs about the calls of ``inc`` against the other calls of its group,
        as sentences (call in a worker). Calls that never finished have no durations to
        compare: a possibly hung incident is described, not explained."""
        from features.explain import DURATIONS, explain

        if inc.kind != "slowdown":
            # Hangs, level shifts, drift and speed-ups say what happened and around it.
            return [inc.describe()]
        with self.things_lock:
            e = explain(self.run, inc.tags, top=top, symptoms=DURATIONS, label="slow",
                        how=f"incident #{inc.id}")
        return e.lines()

    # -- the run's state ---------------------------------------------------------------

    def last_growth(self) -> float:
        """Wall-clock time any file of the run last grew (its mtime when first read)."""
        try:
            return max(list(self.run.file_growth.values()), default=0.0)
        except RuntimeError:  # the ingest worker added a file meanwhile: next paint
            return 0.0

    def state(self, now: float | None = None) -> tuple[str, str]:
        """What the run is doing, a word and why: ``finished`` (every process closed: a
        closing record last, no error after it), ``live`` (a file grew within the live
        window), ``stopped`` (no writes since, some process never closed); ``("", "")``
        before the first analysis says which."""
        from features.pools import LIVE_WINDOW_S

        a = self.analysis
        if a is None:
            return "", ""
        ends = [str(e) for e in a.processes["end"]] if len(a.processes) else []
        if ends and all(e in CLOSED_ENDS for e in ends):
            return "finished", f"every process closed ({processes(len(ends))})"
        now = time.time() if now is None else now
        age = now - self.last_growth()
        if age < LIVE_WINDOW_S:
            return "live", f"written {age:.0f} s ago"
        open_ = sum(1 for e in ends if e not in CLOSED_ENDS)
        return "stopped", f"no writes for {fmt_age(age)}, {processes(open_)} never closed"

    # -- helpers for views -------------------------------------------------------------

    def row_at(self, index: int) -> int | None:
        rows = self.view.rows
        return int(rows[index]) if 0 <= index < len(rows) else None

    def index_of(self, row: int) -> int | None:
        """Position of a store row in the visible rows (None when filtered out)."""
        hit = np.flatnonzero(self.view.rows == row)
        return int(hit[0]) if len(hit) else None

    def agent_of(self, row: int) -> Any:
        a = self.analysis
        if a is not None and row < len(a.event_agents[0]):
            codes, table = a.event_agents
            return table[codes[row]]
        codes, values = self.events().cat("academy.agent_id")
        c = int(codes[row]) if row < len(codes) else -1
        return values[c] if c >= 0 else None


def processes(n: int) -> str:
    """``1 process``, ``2 processes``."""
    return f"{n} process" if n == 1 else f"{n} processes"
