"""The run screen's workers: reading the pool, analysing it, judging it and filtering
its events, each in an exclusive thread worker that posts its result as a message; and
the throttles that space the analyses and judgements of a growing run.

Apart from the screen (:mod:`tui.screens.run`, whose :class:`RunScreen` is made of
:class:`RunWork`) because none of this paints: it keeps the run's model current and
says so with messages, which the screen handles.
"""

from __future__ import annotations

import gc
import time

from textual import work
from textual.screen import Screen

from features.loader import LoadStopped
from tui.messages import (
    AnomaliesDetected,
    EventsIngested,
    FilterApplied,
    LoadProgressed,
    RunNoted,
    ThingsUpdated,
)
from tui.model import RunModel
from tui.threads import finishing

POLL_BUSY_S = 0.05
"""Poll interval while the run grows."""
POLL_IDLE_S = 0.25
"""Poll interval after a quiet second."""
ANALYSE_EVERY_S = 1.0
"""Shortest interval between two analyses of a growing run; the last analysis's cost
over :data:`ANALYSE_SHARE` when that is longer."""
ANALYSE_SHARE = 0.25
"""Most of a core the analyses of a growing run take: on a run of millions of records
one analysis takes a second or more, and back to back they would hold the interpreter
the UI thread needs. What the user asks for (an expected time) is not held back."""
DETECT_EVERY_S = 3.0
"""Shortest interval between two judgements of a live run; the last judgement's cost
over :data:`DETECT_SHARE` when that is longer."""
DETECT_SHARE = 0.1
"""Most of a core the detector takes while a run is live: it holds the interpreter, so
more made a live tail's newest rows appear later (p95 write-to-screen 224-375 ms at a
fifth of a core on a 4,000 records/s tail, 127-175 ms without detection)."""


class RunWork(Screen[None]):
    """The workers of a run's screen and the state of their throttles."""

    model: RunModel
    """The run and what the views show of it (set by the screen when it is made)."""

    def __init__(self) -> None:
        super().__init__()
        self._analysing = False
        self._analysis_due = True
        self._analysed_at = 0.0
        self._analysis_asked = False
        """The user asked for it (an expected time): not held back by the throttle."""
        self._detecting = False
        self._detect_at = 0.0
        """Monotonic time the last judgement finished."""
        self._detect_cost = 0.0
        self._detect_tried = -1
        """Events analysed when detection was last tried (a failure is not retried on
        the same events)."""
        self._frozen: set[str] = set()
        """Workers whose first run has been followed by ``gc.freeze()``."""

    @work(thread=True, exclusive=True, group="ingest")
    def ingest(self) -> None:
        """Read the pool: the first load (with progress), then tail it until closed.
        The app's exit waits for it to stop (:func:`tui.threads.finishing`): at the next
        stored group of a load (its parse processes shut down), after a save in
        progress, or within a poll of the tail."""
        with finishing():
            self._ingest()

    def _ingest(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        run = self.model.run
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:  # the app is closing: it does not wait for the load
                raise LoadStopped
            now = time.monotonic()
            # A few repaints a second while loading: each costs the UI thread a frame.
            if now - last[0] > 0.25 or done >= total or last[0] == 0.0:
                last[0] = now
                run.store.sync_order()  # merge here, not on the UI thread
                self.post_message(LoadProgressed(done, total))
                self.post_message(EventsIngested(len(run.store), 0, True))

        # Opened from the catalog (not begun by the CLI before the screen): the first look
        # here, so that the run's end shows before the rest streams in behind it.
        if run.begin():
            self.post_message(EventsIngested(len(run.store), 0, True))
        try:
            res = run.load(progress=progress, local_first=False)
        except LoadStopped:
            return
        # No gc.freeze() for the store: its columns are arrays and its texts packed, so a
        # 1M-record load leaves ~3,700 objects the collector tracks (a full collection of
        # the whole process 7-15 ms). A freeze here (and 4 times a second while loading)
        # froze the lines Textual had drawn by then, which are reference cycles: never
        # freed once dropped (~5k objects a load).
        for note in res.notes:
            self.post_message(RunNoted(note))
        self.post_message(EventsIngested(len(run.store), res.records, False))
        quiet_since = time.monotonic()
        while not worker.is_cancelled:
            res = run.refresh()
            for note in res.notes:
                self.post_message(RunNoted(note))
            now = time.monotonic()
            if res.records or res.bad:
                quiet_since = now
                self.post_message(EventsIngested(len(run.store), res.records, False))
            time.sleep(POLL_BUSY_S if now - quiet_since < 1.0 else POLL_IDLE_S)

    @work(thread=True, exclusive=True, group="analyse")
    def analyse(self) -> None:
        try:
            a = self.model.analyse()
        finally:
            self._analysed_at = time.monotonic()
            self._analysing = False
        self._freeze_once("analyse")
        self.post_message(ThingsUpdated(a.events))

    @work(thread=True, exclusive=True, group="detect")
    def detect(self) -> None:
        """Judge every call for slowness (and in-flight ones for hanging)."""
        t = time.monotonic()
        try:
            self.model.detect()
        except Exception as e:  # the detector must not take the app down
            self.app.call_from_thread(self.notify, f"anomaly detection failed: {e}",
                                      severity="error")
            return
        finally:
            self._detect_cost = time.monotonic() - t
            self._detect_at = time.monotonic()
            self._detecting = False
        self._freeze_once("detect")
        self.post_message(AnomaliesDetected(self.model.detected_events))

    def _freeze_once(self, what: str) -> None:
        """``gc.freeze()`` after the first analysis and the first judgement: the modules
        they import (scikit-learn's: 77k objects) stay for good, out of the cyclic
        collector's full scans. Not after each one: an analysis of a 1M-record run leaves
        ~15 objects the collector tracks (its columns are arrays), and a freeze also
        froze Textual's rendered lines cached at that moment, which refer to themselves
        (``Strip`` caches): dropped later, a frozen cycle is never freed. An app on a run
        growing by 1,000 records/s grew by ~150 MB a minute that way (460k objects)."""
        if what not in self._frozen:
            self._frozen.add(what)
            gc.freeze()

    def _maybe_detect(self) -> None:
        """Judge once the first analysis is in, then again as a live run grows (or, while
        it is live, as its clock runs: a hung call writes nothing)."""
        m = self.model
        if self._detecting or m.loading or m.analysis is None:
            return
        if self._detect_tried >= 0:  # after the first try: on growth (or live), throttled
            live = m.detection is not None and m.detection.live
            if m.analysis.events <= self._detect_tried and not live:
                return
            if time.monotonic() - self._detect_at < max(DETECT_EVERY_S,
                                                          self._detect_cost / DETECT_SHARE):
                return
        self._detect_tried = m.analysis.events
        self._detecting = True
        self.detect()

    @work(thread=True, exclusive=True, group="filter")
    def apply_filter(self, mode: str, text: str) -> None:
        t = time.perf_counter()
        if mode == "find":
            self.model.set_find(text)
            n = len(self.model.view.matches)
        else:
            self.model.set_filter(text)
            n = len(self.model.view.rows)
        dt = time.perf_counter() - t
        self.post_message(FilterApplied(text, n, dt, self.model.filter_notes(text)))

    def _maybe_analyse(self) -> None:
        # Not during the first load: a big run's analysis would compete with reading
        # (and with the UI thread) for the interpreter; it runs once the load is done.
        a = self.model.analysis
        if not self._analysis_asked and a is not None and \
                time.monotonic() - self._analysed_at < max(ANALYSE_EVERY_S,
                                                           a.computed_s / ANALYSE_SHARE):
            return  # still due: a later tick runs it
        if self._analysis_due and not self._analysing and not self.model.loading:
            self._analysis_due = self._analysis_asked = False
            self._analysing = True
            self.analyse()
