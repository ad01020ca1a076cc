"""One run: events, timeline, where the time went, anomalies and steering, live.

Reading happens in an exclusive thread worker that posts one message per batch; the
analyses and the slowdown detector run in their own exclusive workers; the screen only
paints.

The screen is made of its workers (:class:`tui.screens.run_work.RunWork`) and its view
switching (:class:`tui.screens.run_views.RunViews`); the status line, the view tabs and
the filter bar are :mod:`tui.screens.run_widgets`. Here: the keys, the layout, the
messages, the filter bar's handling and the status.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from features.run import NOT_USED, Run
from features.safe import clean
from tui.messages import (
    AnomaliesDetected,
    EventsIngested,
    FilterApplied,
    LoadProgressed,
    RunNoted,
    ShowCatalog,
    ThingsUpdated,
)
from tui.model import RunModel
from tui.screens.run_views import VIEW_TABS, RunViews
from tui.screens.run_widgets import FilterBar, StatusBar, ViewTabs, status_line
from tui.screens.run_work import ANALYSE_EVERY_S, RunWork
from tui.typeahead import expect, typing
from tui.widgets.event_log import EventLog

if TYPE_CHECKING:
    from tui.widgets.anomalies import AnomaliesView
    from tui.widgets.ask import AskPane
    from tui.widgets.steering import SteeringView
    from tui.widgets.timeline import Timeline
    from tui.widgets.where import WhereView

__all__ = ["FilterBar", "RunScreen"]


FOOTER_FIRST = ("question_mark", "slash")
"""Keys the footer shows before the view's own."""
FOOTER_LEFT_OUT = ("q",)
"""Keys everyone knows, left out of the footer so that the view's own fit in 80 columns
(``?`` lists them)."""
TEXT_IN_A_BOX = frozenset({"open_filter", "view", "expect"})
"""Actions whose keys are characters when a box has focus."""
STATE_EVERY_S = 1.0
"""How often the header looks whether a quiet run has stopped."""
VIEWS_AFTER_S = 0.5
"""When the views after the events' are mounted if no record has been drawn by then."""


class RunScreen(RunViews, RunWork):
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
                 from_catalog: bool = False, sources: tuple[Any, ...] = (),
                 run: Run | None = None) -> None:
        """``run``: the run at ``path`` already opened (begun: :meth:`Run.begin`), so that
        the first frame has its first rows."""
        super().__init__()
        self.path = Path(path)
        self.model = RunModel(run if run is not None else Run(self.path, sources=sources),
                              expected_s)
        self.from_catalog = from_catalog
        self.filter_mode = "filter"
        self._last_growth = time.monotonic()
        self._typed_filter: str | None = None
        """The last filter the user typed (its notes are shown as a notification)."""
        self._pending_focus: int | None = None
        self._state = ("", "")
        """The run's state as the header last said it (:meth:`RunModel.state`)."""

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
            # The other views are mounted after the first frame (mount_views).
            for tab, label in VIEW_TABS:
                yield TabPane(label, id=tab)
        yield FilterBar(id="filter-bar")
        # The palette is ctrl+p or ':' ('?' says so): its key docked at the right took the
        # room of the view's own keys at 80 columns.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"academy-tui · {self.path.name}"
        if len(self.model.run.store):  # begun: its first rows in the first frame
            self.on_events_ingested(EventsIngested(len(self.model.run.store), 0, True))
        self._paint_status()
        self.ingest()
        self.set_interval(ANALYSE_EVERY_S, self._maybe_analyse)
        self.set_interval(ANALYSE_EVERY_S, self._maybe_detect)
        self.set_interval(STATE_EVERY_S, self._tick_state)
        log = self.query_one(EventLog)
        log.focus()
        # The other views once the first records are drawn (or soon, when there are none).
        log.after_first_rows = self.mount_views
        self.set_timer(VIEWS_AFTER_S, self.mount_views)

    # -- messages ----------------------------------------------------------------------

    def on_load_progressed(self, msg: LoadProgressed) -> None:
        self.model.load_done, self.model.load_total = msg.done, msg.total
        self._paint_status()

    def on_events_ingested(self, msg: EventsIngested) -> None:
        self.model.loading = msg.loading
        log = self.query_one(EventLog)
        held = log.held_place()  # records may arrive before the one read
        self.model.refresh_snapshot()
        self.model.update()
        log.rows_changed(held)
        self._analysis_due = True
        if not msg.loading and self.model.analysis is None:
            self._maybe_analyse()
        self._paint_status()

    def on_run_noted(self, msg: RunNoted) -> None:
        self.model.notes.append(msg.note)
        if msg.note.startswith(NOT_USED):  # why this open read every file
            self.notify(clean(msg.note), title="read from the files")
        else:
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
        from tui.widgets.detail import DetailScreen

        self.app.push_screen(DetailScreen(self.model, msg.row), done)

    # The views' messages are handled by name (on_<view>_<message>), so that this module
    # does not import the views (mount_views does, after the first frame).

    def on_timeline_bar_selected(self, msg: Timeline.BarSelected) -> None:
        self.set_filter_text(f"academy.action_tag={msg.tag}", focus_row=msg.row)
        self.action_show_tab("events")

    def on_timeline_mark_selected(self, msg: Timeline.MarkSelected) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    def on_where_view_drill_down(self, msg: WhereView.DrillDown) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    def on_anomalies_view_drill_down(self, msg: AnomaliesView.DrillDown) -> None:
        if msg.note:
            self.notify(msg.note)
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    def on_steering_view_drill_down(self, msg: SteeringView.DrillDown) -> None:
        self.set_filter_text(msg.expr, focus_row=msg.row)
        self.action_show_tab("events")

    def on_anomalies_view_time_chosen(self, msg: AnomaliesView.TimeChosen) -> None:
        self.action_show_tab("timeline")
        # After the tab is laid out: the timeline zooms to its own width.
        self.call_after_refresh(self.view("timeline").show_span, msg.start, msg.end,
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
        from features.query import QueryError

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
        from features.query import QueryError

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

    def on_ask_pane_citation_selected(self, msg: AskPane.CitationSelected) -> None:
        """A cited event or thing: show its events."""
        self.set_filter_text(msg.expr, focus_row=msg.rows[0] if msg.rows else None)
        self.action_show_tab("events")

    # -- status ------------------------------------------------------------------------

    def _tick_state(self) -> None:
        """A run that stops writing says so with no message from the ingest worker."""
        if self.model.state() != self._state:
            self._paint_status()

    def _paint_status(self) -> None:
        follow = self.query_one(EventLog).follow
        text, self._state = status_line(self.model, self.path.name, follow)
        self.query_one(StatusBar).update(text, layout=False)
