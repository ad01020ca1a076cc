"""Which of a run's views is shown: switching to one (by its key, the palette or a
drill-down), giving its widget the focus so its keys work at once, and repainting the
shown one (only it) when the analysis changes.

Apart from the screen (:mod:`tui.screens.run`, whose :class:`RunScreen` is made of
:class:`RunViews` and :class:`tui.screens.run_work.RunWork`) because it is one concern
of its own: the views are tabs, and where the focus goes as they switch is subtle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from textual import on
from textual.actions import SkipAction
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Input, TabbedContent, TabPane, Tabs

from tui.model import RunModel
from tui.typeahead import expect, typing

if TYPE_CHECKING:
    from tui.widgets.anomalies import AnomaliesView
    from tui.widgets.ask import AskPane
    from tui.widgets.steering import SteeringView
    from tui.widgets.timeline import Timeline
    from tui.widgets.where import WhereView

VIEW_TABS = (("timeline", "Timeline"), ("where", "Where the time went"),
             ("anomalies", "Anomalies"), ("steering", "Steering"), ("ask", "Ask"))
"""The views after the events' (tab id, label), in their order, mounted by
:meth:`RunViews.mount_views`."""
VIEW_IDS = {"timeline": "timeline-view", "where": "where-view", "anomalies": "anomalies-view",
            "steering": "steering-view", "ask": "ask-pane"}

VIEW_FOCUS = {"events": "#event-log", "timeline": "#timeline-view", "where": "#where-cats",
              "anomalies": "#anomalies-table", "steering": "#steering-table"}
"""The widget that takes a view's keys (the Ask view's is :meth:`AskPane.resting_widget`)."""


class RunViews(Screen[None]):
    """The switching between a run's views, and the repainting of the one shown."""

    model: RunModel
    """The run and what the views show of it (set by the screen when it is made)."""
    _views: dict[str, Widget] | None = None
    _views_mounted: Sequence[AwaitMount] = ()

    def mount_views(self) -> Sequence[AwaitMount]:
        """Mount the views after the events' into their tabs, once: after the first
        frame, which does not wait for them (importing and laying them out was ~70 ms of
        the first screen's ~0.6 s), or as soon as one is asked for."""
        if self._views is None:
            from tui.widgets.anomalies import AnomaliesView
            from tui.widgets.ask import AskPane
            from tui.widgets.steering import SteeringView
            from tui.widgets.timeline import Timeline
            from tui.widgets.where import WhereView

            m = self.model
            self._views = views = {
                "timeline": Timeline(m, id="timeline-view"),
                "where": WhereView(m, id="where-view"),
                "anomalies": AnomaliesView(m, id="anomalies-view"),
                "steering": SteeringView(m, id="steering-view"),
                "ask": AskPane(m.run, expected_s=m.expected_s, lock=m.things_lock,
                               id="ask-pane"),
            }
            # Each paints what there is when it mounts.
            self._views_mounted = [self.query_one(f"#{tab}", TabPane).mount(w)
                                   for tab, w in views.items()]
        return self._views_mounted

    async def views_ready(self) -> None:
        """Wait until every view is mounted with its parts."""
        for mounted in self.mount_views():
            await mounted

    @overload
    def view(self, tab: Literal["timeline"]) -> Timeline: ...
    @overload
    def view(self, tab: Literal["where"]) -> WhereView: ...
    @overload
    def view(self, tab: Literal["anomalies"]) -> AnomaliesView: ...
    @overload
    def view(self, tab: Literal["steering"]) -> SteeringView: ...
    @overload
    def view(self, tab: Literal["ask"]) -> AskPane: ...
    def view(self, tab: str) -> Any:
        """The view of ``tab`` (mounted now if it was not yet)."""
        self.mount_views()
        return self.query_one(f"#{VIEW_IDS[tab]}")

    def _repaint_tab(self) -> None:
        """Repaint the analysis views only while shown: rebuilding hidden tables on every
        live update would cost the UI thread for nothing. A view not mounted yet is left:
        it paints what there is when it mounts."""
        active = self.query_one(TabbedContent).active
        if active == "where" and self._mounted("where"):
            self.view("where").refresh_view()
        elif active == "timeline" and self._mounted("timeline"):
            self.view("timeline").data_changed()
        elif active == "anomalies" and self._mounted("anomalies"):
            self.view("anomalies").refresh_view()
        elif active == "steering" and self._mounted("steering"):
            self.view("steering").refresh_view()
        if active != "steering" and self._mounted("steering") and \
                "steering.kind" in self.model.events().store.key_shapes:
            # Hidden, but a suggestion waiting for a person must be announced (throttled).
            self.view("steering").refresh_view(hidden=True)

    def _mounted(self, tab: str) -> bool:
        return self._views is not None and self._views[tab].is_mounted

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
            self.view("ask").expected_s = self.model.expected_s
        self.query_one(TabbedContent).active = tab
        self._focus_view(tab)

    def _focus_view(self, tab: str) -> None:
        """Focus follows the view shown (by key, palette, drill-down or a click on its
        tab), so its keys work at once: a focused widget left in a hidden pane (or the
        tab bar, after a click) would take them. Set now, not after a refresh: the keys
        typed behind a view's key are forwarded to what has focus as they arrive. A view
        asked for before the views were mounted gets the focus once they are."""
        if tab != "events" and not self._views_done():
            if tab == "ask":  # the keys typed behind its key wait for its box
                expect(self.app, lambda: self.query_one("#ask-input", Input))
            self.call_next(self._focus_when_ready, tab)
            return
        if tab == "ask":
            box = self.query_one("#ask-input", Input)
            self.set_focus(box)
            expect(self.app, lambda: box)  # its box, with the keys typed behind 'a'
            return
        self.set_focus(self._view_widget(tab))

    def _view_widget(self, tab: str) -> Widget:
        """The widget of ``tab`` that takes its keys."""
        if tab != "events" and not self._views_done():
            return self.query_one(f"#{tab}", TabPane)  # its view is on its way
        if tab == "ask":
            return self.view("ask").resting_widget()
        return self.query_one(VIEW_FOCUS[tab])

    def _views_done(self) -> bool:
        return all(self._mounted(tab) for tab in VIEW_IDS)

    async def _focus_when_ready(self, tab: str) -> None:
        await self.views_ready()
        if self.query_one(TabbedContent).active == tab:
            self._focus_view(tab)
