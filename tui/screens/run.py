"""One run: events, timeline, where the time went, anomalies and steering, live.

Reading happens in an exclusive thread worker that posts one message per batch; the
analyses and the slowdown detector run in their own exclusive workers; the screen only
paints.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane, Tabs

from features.fmt import count
from features.query import QueryError
from features.run import Run
from features.safe import clean
from tui.messages import (
    EventsIngested,
    FilterApplied,
    LoadProgressed,
    RunNoted,
    ShowCatalog,
    ThingsUpdated,
)
from tui.model import LEVELS, RunModel
from tui.typeahead import expect, typing
from tui.widgets.anomalies import AnomaliesDetected, AnomaliesView
from tui.widgets.ask import AskPane
from tui.widgets.detail import DetailScreen
from tui.widgets.event_log import EventLog
from tui.widgets.steering import SteeringView
from tui.widgets.timeline import Timeline
from tui.widgets.where import WhereView

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


VIEW_FOCUS = {"events": "#event-log", "timeline": "#timeline-view", "where": "#where-cats",
              "anomalies": "#anomalies-table", "steering": "#steering-table"}
"""The widget that takes a view's keys (the Ask view's is :meth:`AskPane.resting_widget`)."""


FOOTER_FIRST = ("question_mark", "slash")
"""Keys the footer shows before the view's own."""
FOOTER_LEFT_OUT = ("q",)
"""Keys everyone knows, left out of the footer so that the view's own fit in 80 columns
(``?`` lists them)."""
TEXT_IN_A_BOX = frozenset({"open_filter", "view", "expect"})
"""Actions whose keys are characters when a box has focus."""
STATE_EVERY_S = 1.0
"""How often the header looks whether a quiet run has stopped."""


class StatusBar(Static):
    """One line: run, records, files, bad lines, live/follow state, load progress."""

    DEFAULT_CSS = "StatusBar { height: 1; background: $accent 25%; padding: 0 1; }"


class ViewTabs(TabbedContent):
    """The run's views."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        # A pane reports that a widget in it took focus after the fact: with keys typed
        # fast ('a', then 'esc e') it reports the Ask pane once the events have focus,
        # and Textual's TabbedContent would switch back to it. A report from a pane the
        # focus has left is dropped; otherwise TabbedContent's own handler (next in the
        # MRO) runs.
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()
            event.stop()


class FilterBar(Vertical):
    """The `/` filter and `ctrl+f` find input, with the parse error shown while typing."""

    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; }
    FilterBar.-open { display: block; }
    FilterBar #filter-error { color: $error; height: auto; }
    FilterBar #filter-help { color: $text-muted; height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Input(placeholder="levelno>=30  academy.action=next_item  message~\"time ?out\""
                                "  exc_text!=None  (enter applies, esc closes)", id="filter-input")
        yield Static("", id="filter-error")
        yield Static("", id="filter-help")


class RunScreen(Screen[None]):
    """Everything about one run."""

    DEFAULT_CSS = """
    RunScreen Footer.-compact FooterLabel { margin: 0 1 0 0; }
    """

    BINDINGS = [
        # The keys that open a box or switch the view are priority bindings: handled as
        # they arrive, so the keys typed behind them go where they meant (tui.typeahead);
        # in a box they are text (the actions raise SkipAction). The footer shows the
        # view's own keys and these few; '?' shows every key, by view (tui.help).
        Binding("slash", "open_filter('filter')", "filter", priority=True),
        Binding("ctrl+f", "open_filter('find')", "find", show=False, priority=True),
        Binding("escape", "back", "back: leave a box, then clear the filter, then the run",
                show=False, priority=True),
        Binding("1", "toggle_level(10)", "hide/show DEBUG", show=False),
        Binding("2", "toggle_level(20)", "hide/show INFO", show=False),
        Binding("3", "toggle_level(30)", "hide/show WARNING", show=False),
        Binding("4", "toggle_level(40)", "hide/show ERROR and above", show=False),
        Binding("e", "view('events')", "events", show=False, priority=True),
        Binding("l", "view('timeline')", "timeline", show=False, priority=True),
        Binding("w", "view('where')", "where the time went", show=False, priority=True),
        Binding("A", "view('anomalies')", "anomalies", show=False, priority=True),
        Binding("s", "view('steering')", "steering", show=False, priority=True),
        Binding("a", "view('ask')", "ask a question", show=False, priority=True),
        Binding("d", "compare", "compare with another run", show=False),
        Binding("c", "clear_filter", "clear the filter", show=False),
        Binding("x", "expect", "expected run time", show=False, priority=True),
    ]

    def __init__(self, path: Path, expected_s: float | None = None,
                 from_catalog: bool = False, sources: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.path = Path(path)
        self.model = RunModel(Run(self.path, sources=sources), expected_s)
        self.from_catalog = from_catalog
        self.filter_mode = "filter"
        self._last_growth = time.monotonic()
        self._analysing = False
        self._analysis_due = True
        self._analysed_at = 0.0
        self._analysis_asked = False
        """The user asked for it (an expected time): not held back by the throttle."""
        self._typed_filter: str | None = None
        """The last filter the user typed (its notes are shown as a notification)."""
        self._pending_focus: int | None = None
        self._state = ("", "")
        """The run's state as the header last said it (:meth:`RunModel.state`)."""
        self._detecting = False
        self._detect_at = 0.0
        """Monotonic time the last judgement finished."""
        self._detect_cost = 0.0
        self._detect_tried = -1
        """Events analysed when detection was last tried (a failure is not retried on
        the same events)."""

    # -- keys --------------------------------------------------------------------------

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The footer's keys, in its order: ``?`` (the key to every other) and ``/`` first,
        then the view's own; what a narrow footer cuts is at the end. Only the footer reads
        this (the keys act through the binding chain), so a key left out still works."""
        active = super().active_bindings
        first = {k: active[k] for k in FOOTER_FIRST if k in active}
        return {k: b for k, b in {**first, **active}.items() if k not in FOOTER_LEFT_OUT}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # In a box the keys that open a box or switch the view are text (SkipAction):
        # the footer does not offer them there.
        return not (action in TEXT_IN_A_BOX and self.is_current and typing(self.app))

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with ViewTabs(id="tabs", initial="events"):
            with TabPane("Events", id="events"):
                yield EventLog(self.model, id="event-log")
            with TabPane("Timeline", id="timeline"):
                yield Timeline(self.model, id="timeline-view")
            with TabPane("Where the time went", id="where"):
                yield WhereView(self.model, id="where-view")
            with TabPane("Anomalies", id="anomalies"):
                yield AnomaliesView(self.model, id="anomalies-view")
            with TabPane("Steering", id="steering"):
                yield SteeringView(self.model, id="steering-view")
            with TabPane("Ask", id="ask"):
                yield AskPane(self.model.run, expected_s=self.model.expected_s,
                              lock=self.model.things_lock, id="ask-pane")
        yield FilterBar(id="filter-bar")
        # The palette is ctrl+p or ':' ('?' says so): its key docked at the right took the
        # room of the view's own keys at 80 columns.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"academy-tui · {self.path.name}"
        self._paint_status()
        self.ingest()
        self.set_interval(ANALYSE_EVERY_S, self._maybe_analyse)
        self.set_interval(ANALYSE_EVERY_S, self._maybe_detect)
        self.set_interval(STATE_EVERY_S, self._tick_state)
        self.query_one(EventLog).focus()

    # -- workers -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="ingest")
    def ingest(self) -> None:
        """Read the pool: the first load (with progress), then tail it until closed."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        run = self.model.run
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            # A few repaints a second while loading: each costs the UI thread a frame.
            if now - last[0] > 0.25 or done >= total or last[0] == 0.0:
                last[0] = now
                run.store.sync_order()  # merge here, not on the UI thread
                gc.freeze()  # see below: the growing store is not garbage
                self.post_message(LoadProgressed(done, total))
                self.post_message(EventsIngested(len(run.store), 0, True))

        res = run.load(progress=progress, local_first=False)
        # The store's big lists and tables live as long as the app: keep the cyclic
        # collector from rescanning them (full collections took ~100 ms at 1M events).
        gc.freeze()
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
        # What an analysis keeps (tables, their caches, the widgets' data) lives until
        # the next one: out of the cyclic collector's full scans, which took ~55 ms with
        # it at 1M events and stalled scrolling by more than 100 ms.
        gc.freeze()
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
        gc.freeze()  # as after an analysis
        self.post_message(AnomaliesDetected(self.model.detected_events))

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

    # -- messages ----------------------------------------------------------------------

    def on_load_progressed(self, msg: LoadProgressed) -> None:
        self.model.load_done, self.model.load_total = msg.done, msg.total
        self._paint_status()

    def on_events_ingested(self, msg: EventsIngested) -> None:
        self.model.loading = msg.loading
        self.model.refresh_snapshot()
        self.model.update()
        self.query_one(EventLog).rows_changed()
        self._analysis_due = True
        if not msg.loading and self.model.analysis is None:
            self._maybe_analyse()
        self._paint_status()

    def on_run_noted(self, msg: RunNoted) -> None:
        self.model.notes.append(msg.note)
        self.notify(clean(msg.note), title="pool changed", severity="warning")

    def on_things_updated(self, msg: ThingsUpdated) -> None:
        self.query_one(EventLog).invalidate()  # the agent column comes from the analysis
        self._tick_state()  # finished, once its processes closed
        if self._analysis_asked:  # asked for while this one ran
            self._maybe_analyse()
        self._repaint_tab()
        self._maybe_detect()

    def on_anomalies_detected(self, msg: AnomaliesDetected) -> None:
        self._repaint_tab()

    def _repaint_tab(self) -> None:
        """Repaint the analysis views only while shown: rebuilding hidden tables on every
        live update would cost the UI thread for nothing."""
        active = self.query_one(TabbedContent).active
        if active == "where":
            self.query_one(WhereView).refresh_view()
        elif active == "timeline":
            self.query_one(Timeline).data_changed()
        elif active == "anomalies":
            self.query_one(AnomaliesView).refresh_view()
        elif active == "steering":
            self.query_one(SteeringView).refresh_view()
        if active != "steering" and "steering.kind" in self.model.events().store.key_shapes:
            # Hidden, but a suggestion waiting for a person must be announced (throttled).
            self.query_one(SteeringView).refresh_view(hidden=True)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self._repaint_tab()
        tab = self.query_one(TabbedContent).active
        if event.pane.id != tab or not self.is_current:
            return  # a tab switched past already (keys typed fast), or a screen above
        focused = self.focused
        # After a click on the tab bar (or focus left in the pane hidden): the view's keys.
        if focused is None or isinstance(focused, Tabs) or any(
                isinstance(n, TabPane) and n is not event.pane for n in focused.ancestors):
            self._focus_view(tab)

    def on_filter_applied(self, msg: FilterApplied) -> None:
        log = self.query_one(EventLog)
        log.rows_changed()
        log.invalidate()
        if self._pending_focus is not None:
            if not log.go_to_row(self._pending_focus):
                log.cursor = 0
            self._pending_focus = None
        what = "matches" if self.filter_mode == "find" else "events shown"
        help_text = Text(f"{msg.matches:,} {what} ({msg.seconds * 1000:.0f} ms)")
        if msg.notes:  # a mistyped key is why nothing matches, more often than not
            said = clean("; ".join(msg.notes), 300)
            help_text.append(" · " + said, style="yellow")
            # The bar closes on enter: a typed filter's note (or any that matches
            # nothing) must also be seen where the rows are.
            if msg.expr == self._typed_filter or not msg.matches:
                self.notify(said, title=f"filter: {msg.matches:,} {what}", markup=False,
                            severity="warning" if not msg.matches else "information")
        self.query_one("#filter-help", Static).update(help_text)
        self._paint_status()

    @on(EventLog.FollowChanged)
    def _follow_changed(self) -> None:
        self._paint_status()

    @on(EventLog.Opened)
    def _open_detail(self, msg: EventLog.Opened) -> None:
        def done(expr: str | None) -> None:
            if expr:
                self.set_filter_text(expr, focus_row=msg.row)
        self.app.push_screen(DetailScreen(self.model, msg.row), done)

    @on(Timeline.BarSelected)
    def _bar(self, msg: Timeline.BarSelected) -> None:
        self.set_filter_text(f"academy.action_tag={msg.tag}", focus_row=msg.row)
        self.action_show_tab("events")

    @on(Timeline.MarkSelected)
    def _mark(self, msg: Timeline.MarkSelected) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    @on(WhereView.DrillDown)
    def _drill(self, msg: WhereView.DrillDown) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    @on(AnomaliesView.DrillDown)
    def _drill_incident(self, msg: AnomaliesView.DrillDown) -> None:
        if msg.note:
            self.notify(msg.note)
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    @on(SteeringView.DrillDown)
    def _drill_steering(self, msg: SteeringView.DrillDown) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    @on(AnomaliesView.TimeChosen)
    def _incident_time(self, msg: AnomaliesView.TimeChosen) -> None:
        self.action_show_tab("timeline")
        # After the tab is laid out: the timeline zooms to its own width.
        self.call_after_refresh(self.query_one(Timeline).show_span, msg.start, msg.end,
                                msg.agent)

    # -- filter bar --------------------------------------------------------------------

    def action_open_filter(self, mode: str) -> None:
        if typing(self.app):
            raise SkipAction()  # '/' typed into a box
        self.filter_mode = mode
        bar = self.query_one(FilterBar)
        bar.add_class("-open")
        inp = self.query_one("#filter-input", Input)
        inp.value = self.model.find_text if mode == "find" else self.model.filter_text
        inp.border_title = "find (n/N jump)" if mode == "find" else "filter"
        inp.focus()
        expect(self.app, lambda: inp)

    @on(Input.Changed, "#filter-input")
    def _validate(self, event: Input.Changed) -> None:
        err = self.query_one("#filter-error", Static)
        try:
            self.model.parse(event.value)
        except QueryError as e:
            err.update(Text(str(e)))
            event.input.add_class("-invalid")
        else:
            err.update("")
            event.input.remove_class("-invalid")

    @on(Input.Submitted, "#filter-input")
    def _submit(self, event: Input.Submitted) -> None:
        try:
            self.model.parse(event.value)
        except QueryError:
            self.notify("fix the filter first (the error is shown under it)",
                        severity="error")
            return
        self.query_one("#filter-help", Static).update("filtering…")
        self._typed_filter = event.value
        self.apply_filter(self.filter_mode, event.value)
        self.query_one(FilterBar).remove_class("-open")
        self.query_one(EventLog).focus()

    def set_filter_text(self, expr: str, focus_row: int | None = None) -> None:
        """Filter the event view (from a related jump or a drill-down)."""
        self.filter_mode = "filter"
        self.query_one(EventLog).follow = False
        self._pending_focus = focus_row
        self.apply_filter("filter", expr)

    def action_clear_filter(self) -> None:
        self.set_filter_text("")

    def action_back(self) -> None:
        """``esc``: close the filter box, else leave a box, else clear the filter, else
        leave the run: a step at a time, the nearest first."""
        bar = self.query_one(FilterBar)
        tab = self.query_one(TabbedContent).active
        if bar.has_class("-open"):
            bar.remove_class("-open")
            self.set_focus(self._view_widget(tab))
            return
        if typing(self.app):
            self.set_focus(self._view_widget(tab))
            return
        if self.model.filter_text:
            self.action_clear_filter()
            return
        if self.from_catalog:
            self.app.pop_screen()
        else:
            self.post_message(ShowCatalog())

    def action_expect(self) -> None:
        """Ask for the time the user expected; the breakdown then explains the excess."""
        from tui.widgets.prompt import PromptScreen

        if typing(self.app):
            raise SkipAction()

        def done(text: str | None) -> None:
            if text is None:
                return
            from tui.cli.common import CliError, parse_duration

            try:
                self.model.expected_s = parse_duration(text) if text.strip() else None
            except CliError as e:
                self.notify(str(e), severity="error")
                return
            self._analysis_due = self._analysis_asked = True
            self._maybe_analyse()
            self.action_show_tab("where")

        current = "" if self.model.expected_s is None else f"{self.model.expected_s:g}s"
        prompt = PromptScreen("Expected run time (16s, 1m30s; empty: none)", current)
        self.app.push_screen(prompt, done)
        expect(self.app, lambda: prompt.query_one(Input))

    def action_compare(self) -> None:
        """Pick another run and show how this one differs from it."""
        from tui.screens.diff import compare

        compare(self)

    def action_toggle_level(self, levelno: int) -> None:
        self.model.toggle_level(levelno)
        log = self.query_one(EventLog)
        log.rows_changed()
        log.invalidate()
        self._paint_status()

    @on(AskPane.CitationSelected)
    def _cited(self, msg: AskPane.CitationSelected) -> None:
        """A cited event or thing: show its events."""
        self.set_filter_text(msg.expr, focus_row=msg.rows[0] if msg.rows else None)
        self.action_show_tab("events")

    def action_view(self, tab: str) -> None:
        """A view's key (``e``, ``l``, ``w``, ``A``, ``s``, ``a``): a letter in a box."""
        if typing(self.app):
            raise SkipAction()
        self.action_show_tab(tab)

    def action_show_tab(self, tab: str) -> None:
        if tab == "ask":
            self.query_one(AskPane).expected_s = self.model.expected_s
        self.query_one(TabbedContent).active = tab
        self._focus_view(tab)

    def _focus_view(self, tab: str) -> None:
        """Focus follows the view shown (by key, palette, drill-down or a click on its
        tab), so its keys work at once: a focused widget left in a hidden pane (or the
        tab bar, after a click) would take them. Set now, not after a refresh: the keys
        typed behind a view's key are forwarded to what has focus as they arrive."""
        if tab == "ask":
            box = self.query_one("#ask-input", Input)
            self.set_focus(box)
            expect(self.app, lambda: box)  # its box, with the keys typed behind 'a'
            return
        self.set_focus(self._view_widget(tab))

    def _view_widget(self, tab: str) -> Widget:
        """The widget of ``tab`` that takes its keys."""
        if tab == "ask":
            return self.query_one(AskPane).resting_widget()
        return self.query_one(VIEW_FOCUS[tab])

    # -- status ------------------------------------------------------------------------

    def _tick_state(self) -> None:
        """A run that stops writing says so with no message from the ingest worker."""
        if self.model.state() != self._state:
            self._paint_status()

    def _paint_status(self) -> None:
        m = self.model
        ev = m.events()
        st = m.run.store.stats
        parts: list[tuple[str, str]] = [(self.path.name[:8], "bold"), (" · ", "")]
        if m.loading and m.load_total:
            parts.append((f"loading {m.load_done / m.load_total * 100:3.0f}% · ", "yellow bold"))
        nf = len(ev.file_names)
        parts.append((f"{ev.n:,} events · {count(nf, 'file')} ", ""))
        shown = len(m.view.rows)
        if m.filter_text or m.hidden_levels:
            parts.append((f"· {shown:,} shown ", "cyan"))
        if m.filter_text:
            parts.append((f"[{clean(m.filter_text, 60)}] ", "cyan"))
        if m.hidden_levels:
            hidden = ",".join(n for n, v in LEVELS if v in m.hidden_levels)
            parts.append((f"hidden: {hidden} ", "magenta"))
        if st.bad_lines:
            parts.append((f"· {count(st.bad_lines, 'bad line')} ", "red"))
        log = self.query_one(EventLog)
        state, why = self._state = m.state()
        if state == "finished":  # nothing more will come: no following
            parts.append(("· finished ", "bold"))
        elif state == "stopped":
            parts.append((f"· stopped: {why} ", "yellow"))
        elif state == "live":
            parts.append(("· live, following " if log.follow else "· live, paused (f follows) ",
                          "green" if log.follow else "yellow"))
        elif not m.loading:  # read, not judged yet
            parts.append(("· following " if log.follow else "· paused (f follows) ", "dim"))
        if ev.n:
            parts.append((f"· {ev.t1 - ev.t0:.2f} s span", "dim"))
        self.query_one(StatusBar).update(Text.assemble(*parts), layout=False)
