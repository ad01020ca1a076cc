"""One run, from a notebook or the CLI: open it, keep it fresh, ask it things.

>>> from features import open_run
>>> run = open_run("latest")            # or a pool path, uuid or unique prefix
>>> run.actions().sort("total_s", descending=True).head(5)
>>> run.where_time_went(expected_s=16).seconds
>>> run.select('levelno>=30 or exc_text!=None')   # rows, in time order
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features import analyses, liveness, saved_reading, things
from features.columns import intern_codes
from features.events import Events
from features.events_table import default_event_keys as default_event_keys
from features.events_table import events_table
from features.loader import load as bulk_load
from features.loader import load_first
from features.pools import resolve
from features.reader import PollResult, PoolReader
from features.source_kinds import discover, open_source
from features.sources import Source, SourceFiles
from features.table import Table

BEGIN_SAVED_MAX = 320 * 2**20
"""The biggest saved reading :meth:`Run.begin` restores (~2M records, ~0.3 s): a 30M-record
one took 3.4-4.5 s to check, too long to wait for before a first screen."""

BEGIN_FILES_MAX = 2048
"""The most files :meth:`Run.begin` looks at (a stat each) to choose those written last:
a 16k-file pool's took longer than the screen they would fill."""


NOT_USED = "its saved reading was not used"
"""How the note of a run whose saved reading could not be used starts (the reason and
"read from the files" follow)."""


class Run:
    """A pool being read: events, things and analyses, refreshed on demand."""

    def __init__(self, path: str | os.PathLike[str], sources: Sequence[Any] = (),
                 discover: bool = True, cache: bool | None = None) -> None:
        """``sources``: other sources to join (paths or :class:`features.sources.Source`s:
        Parsl's ``monitoring.db``...); ``discover``: also those the pool names itself;
        ``cache``: open from the pool's saved reading and save it (:mod:`features.cache`;
        ``None``: when one exists, saving pools of ``cache.MIN_RECORDS`` records or more,
        unless ``ACADEMY_TUI_NO_CACHE`` is set; ``True``: save whatever the size)."""
        self.path = Path(path)
        self.reader = PoolReader(str(self.path))
        self.store = self.reader.store
        self._events: Events | None = None
        self._cache: dict[str, Any] = {}
        self._pins: dict[int, tuple[Events, dict[str, Any]]] = {}
        """Thread -> the snapshot it pinned and that snapshot's cache (:meth:`pinned`)."""
        self._snap_lock = threading.RLock()
        self._action_index = things.ActionIndex()
        """The action join, folded forward as records arrive (see :meth:`actions`)."""
        self._process_index = things.ProcessIndex()
        """The process table, folded forward likewise (see :meth:`processes`)."""
        self.notes: list[str] = []
        """Things the reader noticed (files replaced, deleted, unreadable)."""
        self.file_growth: dict[int, float] = {}
        """File index -> wall time it was last seen growing (for liveness)."""
        self._time_note: str | None = None
        """The note on records left out of the run's bounds, as last said."""
        self._sources: Any = None
        """Their events files (:class:`features.sources.SourceFiles`), once one is added."""
        self._pending_sources = list(sources)
        self._discover = discover
        self._cache_flag = cache
        self.cache_status = "not used"
        """What the saved reading did for the last :meth:`load` ("restored N records",
        why it could not be used, "saved"...)."""
        self._begun: tuple[int, PollResult] | None = None
        """What :meth:`begin` read (records restored, the first look's result), for
        :meth:`load` to go on from."""

    @property
    def uuid(self) -> str:
        return self.path.name

    # -- reading -----------------------------------------------------------------------

    def load(self, progress: Callable[[int, int], None] | None = None,
             workers: int | None = None, local_first: bool = True) -> PollResult:
        """Read everything there is now (in parallel for big pools; see
        :func:`features.loader.load` for ``local_first``): from the pool's saved reading
        and what was written since, when there is one (see ``cache``)."""
        begun, self._begun = self._begun, None
        restored = self._restore() if begun is None else begun[0]
        refused = self.cache_status.removeprefix("not used: ") \
            if self.cache_status.startswith("not used: ") else None
        # After a first look, no heads again (unless it could not take one).
        looked = begun is not None and bool(begun[0] or begun[1].records)
        res = bulk_load(self.reader, progress=progress, workers=workers,
                        local_first=local_first, heads_first=not looked)
        if begun is not None:  # what the first look read, then what the load did
            begun[1].add(res)
            res = begun[1]
        if refused is not None:  # why this open read every file (and what changed)
            res.notes.insert(0, f"{NOT_USED} ({refused}): read from the files")
        self._settle(res)
        self._save(restored)
        self._join_sources(res)
        self.notes.extend(res.notes)
        self._mark_growth()
        return res

    def begin(self) -> int:
        """A first look at a run not read yet, quick enough to wait for before drawing a
        first screen: its saved reading when one can be used and is small (~0.15 s for
        1M records), else the start of the files that start first and the end of those
        written last (~10-20 ms: :func:`features.loader.load_first`; what the run did
        last, as a first screen following the run shows it) when there are not too many
        files to choose from. Returns the records stored (0 when the first look would
        not be quick: a big saved reading, whose checks take seconds, is left to
        :meth:`load`, with the screen up). :meth:`load` reads on from there and counts
        them in its result. A no-op on a run read already."""
        if self._begun is not None or len(self.store) or self.reader.tails:
            return 0
        saved = saved_reading.saved_bytes(self.path, self._cache_flag)
        if saved is not None and saved > BEGIN_SAVED_MAX:
            return 0
        restored = self._restore()
        res = PollResult() if restored else load_first(self.reader, BEGIN_FILES_MAX)
        self._begun = (restored, res)
        return restored or res.records

    # -- the saved reading -------------------------------------------------------------

    def _restore(self) -> int:
        """Take the saved reading when it can be used (only into a run not read yet);
        the records it held."""
        fresh = not (len(self.store) or self.reader.tails)
        got, self.cache_status = saved_reading.saved(self.path, self._cache_flag, fresh)
        if got is None:
            return 0
        with self.store.lock:
            saved_reading.adopt(got, self.store, self.reader)
            self._action_index = got.actions
            self._process_index = got.processes
        self.cache_status = f"restored {got.records:,} records"
        return got.records

    def _save(self, restored: int) -> None:
        """Save the reading when it is worth it (:func:`features.saved_reading.worth_saving`),
        the run's action and process joins folded up to now with it."""
        from features import cache

        if not saved_reading.worth_saving(self._cache_flag, self.store, restored):
            if self.cache_status.startswith("not used: ") and cache.discard(self.path):
                # Not replaced (a small pool): every later open would refuse it again.
                self.cache_status += "; removed"
            return
        n = len(self.store)
        ev = self.events()
        self._action_index.fold(ev)
        self._process_index.fold(ev)
        try:
            cache.save(self.path, self.store, self.reader, self._action_index,
                       self._process_index)
        except OSError as e:  # a full disk or a read-only home: the run is read all the same
            self.cache_status = f"not saved: {e.strerror or e}"
            return
        self.cache_status = saved_reading.saved_status(self.cache_status, restored, n)

    # -- other sources -----------------------------------------------------------------

    def add_source(self, source: Any) -> str:
        """Join another source onto the run (a path, its kind found from the content, or a
        :class:`features.sources.Source`) and read it; its events file's name. Raises
        :class:`features.sources.SourceError` for a path that is no source (the kinds:
        :mod:`features.source_kinds`)."""
        src = source if isinstance(source, Source) else open_source(source)
        if self._sources is None:
            self._sources = SourceFiles(self)
        out = self._sources.add(src)
        if out is not None:
            self.reader.add_extra(str(out), src.label, src.kind)
            self.notes.extend(self._sources.sync(self))
            self.refresh()
        return src.label

    def sources(self) -> list[Any]:
        """The sources joined onto the run."""
        return [s for s, _ in self._sources.sources] if self._sources is not None else []

    def _join_sources(self, res: PollResult) -> None:
        pending, self._pending_sources = self._pending_sources, []
        for s in pending:
            self.add_source(s)
        if self._discover:
            self._discover = False
            try:
                found = discover(self)
            except Exception as exc:  # discovery is a convenience: never lose the run
                found = []
                res.notes.append(f"looking for the run's other sources failed: {exc}"[:300])
            for s in found:
                if all(s.path.resolve() != o.path.resolve() for o in self.sources()):
                    self.add_source(s)
                    res.notes.append(f"joined {s.kind} source {s.path} (named by the pool)")

    def refresh(self) -> PollResult:
        """Read what was appended since the last call (new files included)."""
        before = [f.size for f in self.store.files]
        store = self.store
        store.defer_order = True  # merged once, below, after the stale snapshot is let go
        try:
            if self._sources is not None:
                self.notes.extend(self._sources.sync(self))
            res = self.reader.poll()
        finally:
            store.defer_order = False
        with self._snap_lock:
            # Records arrived: the kept snapshot is stale (the next ``events()`` replaces
            # it), so drop it before the merge. Holding it would hold a view of the time
            # order and make the merge copy the whole order (``features.time_order``).
            if self._events is not None and self._events.n != len(store):
                self._events, self._cache = None, {}
        store.sync_order()
        self._settle(res)
        self.notes.extend(res.notes)
        now = time.time()
        for i, f in enumerate(self.store.files):
            if i >= len(before) or f.size != before[i]:
                self.file_growth[i] = now
        return res

    def _settle(self, res: PollResult) -> None:
        """After a read: once the run is over (no file written within the live window),
        take the unterminated last lines that no writer will complete (a crash, or a
        write cut short); while it is live they are held and retried. Then say which
        records' times are left out of the run's bounds, when that changed."""
        if self.reader.pending_bytes() and not self.live:
            res.add(self.reader.finish())
        note = self.store.time_note()
        if note != self._time_note:
            if self._time_note in self.notes:
                self.notes.remove(self._time_note)
            self._time_note = note
            if note is not None:
                res.notes.append(note)

    def _mark_growth(self) -> None:
        for i, f in enumerate(self.store.files):
            with contextlib.suppress(OSError):
                self.file_growth[i] = os.stat(f.path).st_mtime

    def last_write(self) -> float:
        """The latest modification time of any pool file."""
        return liveness.last_write(self.store.files)

    def files_as_read(self) -> set[int]:
        """The files unchanged since their records were read
        (:func:`features.liveness.files_as_read`)."""
        with self.store.lock:
            return liveness.files_as_read(self.store.files, self.reader.tails)

    def live_files(self, now: float | None = None) -> list[bool]:
        """Per file: written within the live window (:func:`features.liveness.live_files`)."""
        return liveness.live_files(self.store.files, self.reader.tails, now)

    @property
    def live(self) -> bool:
        """True while some file of the pool was written within the live window."""
        return liveness.is_live(self.store.files, self.reader.tails)

    # -- snapshots ---------------------------------------------------------------------

    def events(self) -> Events:
        """A snapshot of all events read so far (cached until more arrive; inside
        :meth:`pinned`, the thread's pinned one)."""
        pin = self._pins.get(threading.get_ident())
        if pin is not None:
            return pin[0]
        with self._snap_lock:
            n = len(self.store)
            if self._events is None or self._events.n != n or \
                    len(self._events.file_names) != len(self.store.files):
                self._events = Events(self.store)
                self._cache = {}  # a new dict: a pinned thread keeps the old one
            return self._events

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, remembered under ``key`` until the run grows: analyses built on the
        run (:func:`features.detect.detection`...) keep their result with it, shared by
        everyone who asks of the same snapshot."""
        cache = self._snapshot_cache()
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    def _snapshot_cache(self) -> dict[str, Any]:
        """The cache of the snapshot this thread sees: its pinned one, else the latest
        (taken first: a run that grew gets a new snapshot and a new cache)."""
        pin = self._pins.get(threading.get_ident())
        if pin is not None:
            return pin[1]
        self.events()
        return self._cache

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Events]:
        """One snapshot for everything this thread asks of the run inside (events, things,
        analyses, selections), while other threads read it as it grows: an analysis that
        took ``run.events()`` and then ``run.actions()`` could otherwise get the actions of
        a later snapshot, whose rows lie past the end of its events."""
        me = threading.get_ident()
        outer = self._pins.get(me)
        if outer is not None:  # nested: the outer pin holds
            yield outer[0]
            return
        with self._snap_lock:  # the snapshot and its own cache, together
            ev = self.events()
            self._pins[me] = (ev, self._cache)
        try:
            yield ev
        finally:
            del self._pins[me]

    # -- things ------------------------------------------------------------------------

    def agents(self) -> Table:
        """One row per agent (see :func:`features.things.agents`), with what its process's
        file says: an agent of a process killed mid-run is ``crashed``, one that never ran
        in a finished run ``never started`` (:func:`features.things.mark_process_ends`)."""
        return self.cached("agents", lambda: things.mark_process_ends(
            things.agents(self.events()), self.processes(), self.live))

    def actions(self) -> Table:
        return self.cached("actions", lambda: self._action_index.table(
            self.events(), live=self.live, agents_table=self.agents()))

    def processes(self) -> Table:
        return self.cached("processes", lambda: self._process_index.table(
            self.events(), self.live_files()))

    def messages(self) -> Table:
        return self.cached("messages", lambda: things.messages(self.events()))

    def loops(self) -> Table:
        return self.cached("loops", lambda: things.loops(self.events()))

    def things(self, keys: Sequence[str], where: str | None = None) -> Table:
        """The generic thing: group events by any set of keys (optionally filtered)."""
        rows = self.select(where) if where else None
        return things.things(self.events(), keys, rows)

    def event_agents(self) -> np.ndarray:
        """Per event, the agent it is about: its ``academy.agent_id``; else, for records
        of an action (the agent side logs no agent id), the action's target agent; else
        the loop owner ``academy.self``. A widening by join, cached."""
        return self.cached("event_agents", self._event_agents)

    def _event_agents(self) -> np.ndarray:
        codes, table = self.event_agent_codes()
        return table[codes]

    def event_agent_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`event_agents` as codes into a table of agents whose last entry is
        None (code -1): what an app keeps per event (10M records: 40 MB, where the
        objects' pointers take 80 MB). Cached."""
        return self.cached("event_agent_codes", self._event_agent_codes)

    def _event_agent_codes(self) -> tuple[np.ndarray, np.ndarray]:
        return self._agent_codes(None)

    def event_agents_at(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`event_agents` of ``rows`` only: the same agents, without attributing
        every event of the run (``events --limit 1000`` of a 30M-record run spent 8 s
        on all 30M); taken from the whole column when it is made already."""
        rows = np.asarray(rows, dtype=np.int64)
        cache = self._snapshot_cache()
        if "event_agent_codes" in cache:
            codes, table = cache["event_agent_codes"]
            return table[codes[rows]]
        codes, table = self._agent_codes(rows)
        return table[codes]

    def _agent_codes(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Agent codes of ``rows`` (every event when None) and their table."""
        # Agents as codes, decoded by whoever needs objects: two object columns as long
        # as the run (and a comparison of every object to None) made 240 MB at 10M.
        ev = self.events()
        aid_codes, aids = ev.cat("academy.agent_id")
        values: list[Any] = list(aids)
        index = {v: i for i, v in enumerate(values)}  # intern_codes adds the others
        tag_codes = ev.cat("academy.action_tag")[0]
        if rows is not None:
            aid_codes, tag_codes = aid_codes[rows], tag_codes[rows]
        code = aid_codes.astype(np.int32)
        need = (code < 0) & (tag_codes >= 0)
        if need.any():
            code[need] = self._target_codes(ev, index, values)[tag_codes[need]]
        missing = np.flatnonzero(code < 0)
        if len(missing) and "academy.self" in ev.store.key_shapes:
            # Typed values: scalars, a nested one as its text (hashable, as interning needs).
            own = (ev.column("academy.self")[missing] if rows is None else
                   ev.values_at("academy.self", rows[missing])).tolist()
            code[missing] = intern_codes(index, own, values)
        table = np.empty(len(values) + 1, dtype=object)
        table[:-1] = values  # code -1 lands on the last slot: None
        return code, table

    def _target_codes(self, ev: Events, index: dict[Any, int], values: list[Any]
                      ) -> np.ndarray:
        """Per tag code, the code of the action's target agent (the actions table's
        ``agent_id``: the agent id of its start record, else the ``academy.dest`` it
        was sent to; -1 for none), read from the action join's index: making the whole
        table (with its agents and their classes) took 5 of 8 s at 30M records. Targets
        known only as a destination are added to ``values`` in tag order."""
        row_start, sending, seen = self._action_index.target_rows(ev)
        aid = ev.cat("academy.agent_id")[0]
        dest, dest_vals = ev.cat("academy.dest")
        lut = np.where(row_start >= 0, aid[np.maximum(row_start, 0)], -1).astype(np.int32)
        d = np.where(sending >= 0, dest[np.maximum(sending, 0)], -1)
        lut[~seen] = -1
        by_dest = np.flatnonzero(seen & (lut < 0) & (d >= 0))
        if len(by_dest):
            lut[by_dest] = intern_codes(index, [dest_vals[k] for k in d[by_dest].tolist()],
                                        values)
        return lut

    def msg_rows(self, *templates: str) -> np.ndarray:
        return things.msg_rows(self.events(), *templates)

    # -- filtering ---------------------------------------------------------------------

    def select(self, where: str | dict[str, Any] | None = None) -> np.ndarray:
        """Rows matching a query (text or JSON AST), in merged time order."""
        ev = self.events()
        if where is None or where == "":
            return ev.order
        from features import query  # the query module is optional here

        node = query.from_json(where) if isinstance(where, dict) else query.parse(where)
        return query.select(ev, node)

    def events_table(self, rows: np.ndarray | None = None,
                     keys: Sequence[str] | None = None) -> Table:
        """Events as a table: by default every key any of the rows has, plus location
        (:func:`features.events_table.events_table`)."""
        return events_table(self.events(), rows, keys)

    # -- analyses ----------------------------------------------------------------------

    def where_time_went(self, expected_s: float | None = None) -> analyses.TimeBreakdown:
        ev = self.events()
        return analyses.where_time_went(self.actions(), ev.t0, ev.t1, expected_s,
                                        agents=self.agents(), processes=self.processes())

    def action_stats(self) -> Table:
        return analyses.group_stats(self.actions())

    def concurrency(self, what: str = "executing") -> tuple[np.ndarray, np.ndarray]:
        """How many at once: ``executing`` actions, actions ``in flight`` (caller side)
        or ``agents`` alive."""
        ev = self.events()
        t_end = ev.t1
        if what == "agents":
            ag = self.agents()
            start = np.where(np.isnan(ag["t_running"]), ag["t_launched"], ag["t_running"])
            return analyses.concurrency(start, ag["t_gone"], t_end)
        acts = self.actions()
        if what == "in flight":
            return analyses.concurrency(acts["t_start"], acts["t_end"], t_end)
        # An execution still open when its agent crashed (or its process died) ended there.
        ag = self.agents()
        gone = dict(zip(ag["agent_id"].tolist(), ag["t_gone"].tolist(), strict=True))
        died = np.array([gone.get(a, np.nan) for a in acts["agent_id"].tolist()],
                        dtype=np.float64)
        ends = np.where(np.isnan(acts["t_exec_end"]) & ~np.isnan(died), died,
                        acts["t_exec_end"])
        return analyses.concurrency(acts["t_exec_start"], ends, t_end)


def open_run(arg: str | os.PathLike[str], home: Path | None = None,
             progress: Callable[[int, int], None] | None = None) -> Run:
    """Resolve a RUN argument (path, uuid, unique prefix, ``latest``) and read it."""
    run = Run(resolve(arg, home))
    run.load(progress=progress)
    return run
