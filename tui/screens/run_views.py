"""Which of a run's views is shown: switching to one (by its key, the palette or a
drill-down), giving its widget the focus so its keys work at once, and repainting the
shown one (only it) when the analysis changes.

Apart from the screen (:mod:`tui.screens.run`, whose :class:`RunScreen` is made of
:class:`RunViews` and :class:`tui.screens.run_work.RunWork`) because it is one concern
of its own: the views are tabs, and where the focus goes as they switch is subtle.
"""

from __future__ import annotations

from textual import on
from textual.actions import SkipAction
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, TabbedContent, TabPane, Tabs

from tui.model import RunModel
from tui.typeahead import expect, typing
from tui.widgets.anomalies import AnomaliesView
from tui.widgets.ask import AskPane
from tui.widgets.steering import SteeringView
from tui.widgets.timeline import Timeline
from tui.widgets.where import WhereView

VIEW_FOCUS = {"events": "#event-log", "timeline": "#timeline-view", "where": "#where-cats",
              "anomalies": "#anomalies-table", "steering": "#steering-table"}
"""The widget that takes a view's keys (the Ask view's is :meth:`AskPane.resting_widget`)."""


class RunViews(Screen[None]):
    """The switching between a run's views, and the repainting of the one shown."""

    model: RunModel
    """The run and what the views show of it (set by the screen when it is made)."""

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
