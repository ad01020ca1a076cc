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

from features import analyses, things
from features.events import Events
from features.loader import load as bulk_load
from features.normalize import is_null, to_int
from features.parse import FLAG_RAW_INT, INT_KEYS
from features.pools import LIVE_WINDOW_S, resolve
from features.reader import PollResult, PoolReader
from features.source_kinds import discover, open_source
from features.sources import Source, SourceFiles
from features.table import Table
from features.typed import typed


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

    @property
    def uuid(self) -> str:
        return self.path.name

    # -- reading -----------------------------------------------------------------------

    def load(self, progress: Callable[[int, int], None] | None = None,
             workers: int | None = None, local_first: bool = True) -> PollResult:
        """Read everything there is now (in parallel for big pools; see
        :func:`features.loader.load` for ``local_first``): from the pool's saved reading
        and what was written since, when there is one (see ``cache``)."""
        restored = self._restore()
        res = bulk_load(self.reader, progress=progress, workers=workers,
                        local_first=local_first)
        self._settle(res)
        self._save(restored)
        self._join_sources(res)
        self.notes.extend(res.notes)
        self._mark_growth()
        return res

    # -- the saved reading -------------------------------------------------------------

    def _restore(self) -> int:
        """Take the saved reading when it can be used (only into a run not read yet);
        the records it held."""
        from features import cache

        self.cache_status = "not used"
        if not cache.enabled(self._cache_flag) or len(self.store) or self.reader.tails:
            return 0
        try:
            got = cache.restore(self.path)
        except cache.CacheError as e:
            self.cache_status = "none saved yet" if e.args == ("no cache",) else \
                f"not used: {e}"
            return 0
        store = self.store
        with store.lock:
            keep = store.lock, store.listeners
            store.__dict__.update(got.store.__dict__)
            store.lock, store.listeners = keep
            for tail in got.reader.tails.values():
                # Re-read from where parsing stopped: a held partial line, and whatever
                # was written since, come from the file as it is now.
                tail.pending, tail.size, tail.mtime_ns = b"", -1, -1
            self.reader.tails = got.reader.tails
            self.reader.other_files = got.reader.other_files
            got.actions.store = got.processes.store = store
            self._action_index = got.actions
            self._process_index = got.processes
        self.cache_status = f"restored {got.records:,} records"
        return got.records

    def _save(self, restored: int) -> None:
        """Save the reading when it is worth it: a big pool read for the first time, or
        one that grew by a twentieth since it was saved. Never one with another source's
        files in it (they are joined after this, from the sources themselves)."""
        from features import cache

        n = len(self.store)
        if not cache.enabled(self._cache_flag) or \
                any(f.source is not None for f in self.store.files):
            return
        if self._cache_flag is not True and n < cache.MIN_RECORDS:
            return
        if restored and n - restored < max(10_000, restored // 20):
            return
        ev = self.events()
        self._action_index.fold(ev)
        self._process_index.fold(ev)
        try:
            cache.save(self.path, self.store, self.reader, self._action_index,
                       self._process_index)
        except OSError as e:  # a full disk or a read-only home: the run is read all the same
            self.cache_status = f"not saved: {e.strerror or e}"
            return
        why = f"{self.cache_status}; " if self.cache_status.startswith("not used:") else ""
        self.cache_status = (f"restored {restored:,} records, saved {n:,}" if restored
                             else f"{why}saved {n:,} records")

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
            more = self.reader.finish()
            res.records += more.records
            res.bad += more.bad
            res.batches += more.batches
            res.notes.extend(more.notes)
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
        times = []
        for f in self.store.files:
            if f.source is not None:
                continue
            try:
                times.append(os.stat(f.path).st_mtime)
            except OSError:
                continue
        return max(times, default=0.0)

    def live_files(self, now: float | None = None) -> list[bool]:
        """Per file: written within the live window, as of the reader's last look at it
        (every read looks; a poll of a live run asked three times for all 8,226 files of
        a 10M-record pool, each a stat: 60 ms a poll)."""
        now = time.time() if now is None else now
        seen = {t.info.index: t.mtime_ns for t in self.reader.tails.values()}
        out = []
        for f in self.store.files:
            if f.source is not None or f.status == "deleted":  # another source's events
                out.append(False)  # (written by this process), or a file gone
                continue
            ns = seen.get(f.index, -1)
            if ns < 0:  # not looked at yet
                try:
                    ns = os.stat(f.path).st_mtime_ns
                except OSError:
                    out.append(False)
                    continue
            out.append(now - ns / 1e9 < LIVE_WINDOW_S)
        return out

    @property
    def live(self) -> bool:
        """True while some file of the pool was written within the live window (as
        :meth:`live_files`, stopping at the first: asked on every poll of a live run)."""
        since = time.time_ns() - int(LIVE_WINDOW_S * 1e9)
        if any(t.mtime_ns > since and t.info.source is None and t.info.status != "deleted"
               for t in self.reader.tails.values()):
            return True
        return any(self.live_files())

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
        pin = self._pins.get(threading.get_ident())
        if pin is None:
            self.events()
        cache = self._cache if pin is None else pin[1]
        if key not in cache:
            cache[key] = fn()
        return cache[key]

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
        ev = self.events()
        out = ev.strings("academy.agent_id")
        missing = ev.codes["academy.agent_id"] < 0
        tag_codes, tags = ev.cat("academy.action_tag")
        need = missing & (tag_codes >= 0)
        if need.any():
            acts = self.actions()
            by_tag = dict(zip(acts["tag"].tolist(), acts["agent_id"].tolist(), strict=True))
            lut = np.array([by_tag.get(t) for t in tags] + [None], dtype=object)
            out = out.copy()
            out[need] = lut[tag_codes[need]]
            missing = np.asarray(out == None)  # noqa: E711 (elementwise on objects)
        if missing.any() and "academy.self" in ev.store.key_shapes:
            own = ev.column("academy.self")
            out = out.copy()
            out[missing] = own[missing]
        return out

    def msg_rows(self, *templates: str) -> np.ndarray:
        return things.msg_rows(self.events(), *templates)

    # -- filtering ---------------------------------------------------------------------

    def select(self, where: str | dict[str, Any] | None = None) -> np.ndarray:
        """Rows matching a query (text or JSON AST), in merged time order."""
        ev = self.events()
        if where is None or where == "":
            return ev.order
        from features import query, query_eval  # the query module is optional here

        node = query.from_json(where) if isinstance(where, dict) else query.parse(where)
        return query_eval.select(ev, node)

    def events_table(self, rows: np.ndarray | None = None,
                     keys: Sequence[str] | None = None) -> Table:
        """Events as a table: by default every key any of the rows has, plus location."""
        ev = self.events()
        rows = ev.order if rows is None else np.asarray(rows, dtype=np.int64)
        if keys is None:
            keys = default_event_keys(ev, rows)
        cols: dict[str, Any] = {}
        for k in keys:
            col = ev.column(k)
            cols[k] = col[rows]
        _raw_ints(ev, rows, cols)
        return Table(cols, name="events")

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


def _raw_ints(ev: Events, rows: np.ndarray, cols: dict[str, Any]) -> None:
    """Put back, as written, the values the integer columns could not hold (-1 there;
    :data:`~features.parse.FLAG_RAW_INT`): the rows keep them, not a made-up -1."""
    keys = [k for k in INT_KEYS if k in cols]
    if not keys or not len(rows):
        return
    pos = np.flatnonzero((ev.flags[rows] & FLAG_RAW_INT) != 0)
    if not len(pos):
        return
    recs = ev.records(rows[pos])
    for k in keys:
        col = cols[k].astype(object)
        for p, rec in zip(pos.tolist(), recs, strict=True):
            v = None if rec is None else rec.get(k)
            if col[p] == -1 and not is_null(v) and to_int(v) != -1:
                col[p] = typed(v)
        cols[k] = col


def default_event_keys(ev: Events, rows: np.ndarray) -> list[str]:
    """Location first, then the standard record keys, then every extra key present."""
    first = ["@file", "@line", "created", "@t", "levelname", "name", "process", "message"]
    shapes = np.unique(ev.shape[rows]) if len(rows) else np.empty(0, dtype=np.int64)
    present: list[str] = []
    seen = set(first)
    for s in shapes:
        for k in ev.store.shape_keys[int(s)]:
            if k not in seen:
                seen.add(k)
                present.append(k)
    return first + present


def open_run(arg: str | os.PathLike[str], home: Path | None = None,
             progress: Callable[[int, int], None] | None = None) -> Run:
    """Resolve a RUN argument (path, uuid, unique prefix, ``latest``) and read it."""
    run = Run(resolve(arg, home))
    run.load(progress=progress)
    return run
