"""The timeline: one lane per agent, its lifecycle and its action executions over time.

Reads at a glance: a ruler, a "how many at once" sparkline, then lanes where start-up,
life, a caller's waiting and every execution (coloured by status, the worst winning a
cell) line up in time. Lanes are rasterised with numpy a chunk at a time per zoom
(:mod:`tui.widgets.timeline_data`); ``render_line`` only slices a row and run-length
encodes it into segments, and strips are cached.

This module holds what the user meets: the keys, the clicks and the messages, and the
styles; the painting is :class:`tui.widgets.timeline_lines.TimelineLines`, which the
widget is made of.
"""

from __future__ import annotations

import math

import numpy as np
from textual import events
from textual.binding import Binding
from textual.message import Message

from tui.widgets import timeline_data as td
from tui.widgets.timeline_lines import LABEL, MIN_SPC, TOP, TimelineLines

__all__ = ["LABEL", "TOP", "Timeline"]


class Timeline(TimelineLines, can_focus=True):
    """Per-agent lanes over time, zoomable, live."""

    COMPONENT_CLASSES = {
        "timeline--ok", "timeline--exception", "timeline--inflight", "timeline--cancelled",
        "timeline--slow", "timeline--hung", "timeline--steer",
        "timeline--startup", "timeline--alive", "timeline--end", "timeline--wait",
        "timeline--cursor", "timeline--label", "timeline--selected", "timeline--group",
        "timeline--axis", "timeline--spark", "timeline--readout",
    }
    DEFAULT_CSS = """
    Timeline { background: $surface; scrollbar-size-vertical: 1; }
    Timeline > .timeline--ok { color: $success; }
    Timeline > .timeline--exception { color: $error; text-style: bold; }
    Timeline > .timeline--inflight { color: $warning; }
    Timeline > .timeline--cancelled { color: magenta; }
    Timeline > .timeline--slow { color: #ff5f00; text-style: bold; }
    Timeline > .timeline--hung { color: #af87ff; text-style: bold; }
    Timeline > .timeline--steer { color: $accent; text-style: bold; }
    Timeline > .timeline--startup { color: $warning 60%; }
    Timeline > .timeline--alive { color: $foreground 40%; }
    Timeline > .timeline--end { color: $foreground 80%; text-style: bold; }
    Timeline > .timeline--wait { color: $primary 70%; }
    Timeline > .timeline--cursor { background: $accent 50%; }
    Timeline > .timeline--label { color: $foreground 85%; }
    Timeline > .timeline--selected { background: $accent 35%; text-style: bold; }
    Timeline > .timeline--group { color: $text-secondary; text-style: bold; }
    Timeline > .timeline--axis { color: $foreground 60%; }
    Timeline > .timeline--spark { color: $accent; }
    Timeline > .timeline--readout { background: $panel; color: $foreground; }
    """
    ZOOM = Binding.Group("zoom", compact=True)
    CURSOR = Binding.Group("cursor", compact=True)
    # The footer shows a group as its keys and one word: at 80 columns the view's own
    # keys fit beside '?' and '/' (tui.help lists each binding's own description).
    BINDINGS = [
        Binding("plus,equals_sign", "zoom(2)", "zoom in", group=ZOOM),
        Binding("minus", "zoom(0.5)", "zoom out", group=ZOOM),
        Binding("0", "fit", "fit run"),
        Binding("left", "pan(-0.125)", "pan", show=False),
        Binding("right", "pan(0.125)", "pan", show=False),
        Binding("shift+left", "pan(-1)", "pan a screen", show=False),
        Binding("shift+right", "pan(1)", "pan a screen", show=False),
        Binding("home", "pan_to(0)", "run start", show=False),
        Binding("end", "pan_to(1)", "run end", show=False),
        Binding("comma", "move_cursor(-1)", "cursor ←", group=CURSOR),
        Binding("full_stop", "move_cursor(1)", "cursor →", group=CURSOR),
        Binding("left_square_bracket", "jump_bar(-1)", "prev action in lane", show=False),
        Binding("right_square_bracket", "jump_bar(1)", "next action in lane", show=False),
        Binding("n", "jump_problem(1)", "next failure", show=False),
        Binding("N", "jump_problem(-1)", "prev failure", show=False),
        Binding("up", "lane(-1)", "lane up", show=False),
        Binding("down", "lane(1)", "lane down", show=False),
        Binding("enter", "select", "its events"),
        Binding("g", "toggle_group", "group by process"),
    ]

    class BarSelected(Message):
        """The user picked an action on the timeline: show its events."""

        def __init__(self, tag: str, row: int) -> None:
            super().__init__()
            self.tag = tag
            """The action tag (``academy.action_tag``)."""
            self.row = row
            """Its execution (or start) event row, to put the event view's cursor on."""

    class MarkSelected(Message):
        """The user picked a steering decision on the timeline: show its records."""

        def __init__(self, expr: str, row: int) -> None:
            super().__init__()
            self.expr = expr
            """A filter for the suggestion's records (or the one record)."""
            self.row = row

    # -- actions -----------------------------------------------------------------------

    def action_zoom(self, factor: float) -> None:
        tw, _ = self._view()
        anchor = self.cursor_t
        if self._cursor_col(int(self.scroll_x), tw) < 0:
            anchor = (self.scroll_x + tw / 2) * self.spc
        if factor > 1:
            self.fit = False
        self._rezoom(self.spc / factor, anchor)

    def action_fit(self) -> None:
        self.fit = True
        self._rezoom(self.spc)

    def action_pan(self, screens: float) -> None:
        tw, _ = self._view()
        step = screens * tw
        step = math.copysign(max(abs(step), 1), step)
        self.scroll_to(x=self.scroll_x + round(step), animate=False, force=True)

    def action_pan_to(self, where: float) -> None:
        self.scroll_to(x=where * self.max_scroll_x, animate=False, force=True)

    def _put_cursor(self, t: float, center: bool = False) -> None:
        """Move the time cursor, scrolling it into view (``center``: mid-screen, for
        jumps that may land far away)."""
        end = self.data.duration if self.data else 0.0
        self.cursor_t = min(max(t, 0.0), end)
        tw, _ = self._view()
        col = self._cell()
        if center and not self.scroll_x <= col < self.scroll_x + tw:
            self.scroll_to(x=col - tw // 2, animate=False, force=True)
        elif col < self.scroll_x:
            self.scroll_to(x=col, animate=False, force=True)
        elif col >= self.scroll_x + tw:
            self.scroll_to(x=col - tw + 1, animate=False, force=True)
        self.refresh()

    def action_move_cursor(self, cells: int) -> None:
        cell = self._cell() + cells
        self._put_cursor((cell + 0.5) * self.spc)

    def _jump(self, mask: np.ndarray, direction: int) -> int | None:
        """Move the cursor to the next (previous) interval start in ``mask``."""
        assert self.data is not None
        cell = self._cell()
        hit = td.next_start(self.data.t0, mask, cell * self.spc, (cell + 1) * self.spc,
                            direction)
        if hit is None:
            self.notify("nothing further that way", severity="information")
        else:
            self._put_cursor(float(self.data.t0[hit]), center=True)
        return hit

    def action_jump_bar(self, direction: int) -> None:
        if self.data is not None:
            bars = np.isin(self.data.code, td.BAR_CODES)
            self._jump(bars & (self.data.lane == self.selected), direction)

    def action_jump_problem(self, direction: int) -> None:
        if self.data is not None:
            bad = np.isin(self.data.code, (td.EXCEPTION, td.CANCELLED, td.CRASH))
            hit = self._jump(bad, direction)
            if hit is not None:
                self._select_lane(int(self.data.lane[hit]))

    def _select_lane(self, lane: int) -> None:
        self.selected = lane
        pos = next((p for p, r in enumerate(self.rows) if r[0] == "lane" and r[1] == lane), 0)
        _, h = self._view()
        shown = h - TOP - 1
        if pos < self.scroll_y:
            self.scroll_to(y=pos, animate=False, force=True)
        elif pos >= self.scroll_y + shown:
            self.scroll_to(y=pos - shown + 1, animate=False, force=True)
        self.refresh()

    def action_lane(self, delta: int) -> None:
        order = [r[1] for r in self.rows if r[0] == "lane"]
        if order:
            at = order.index(self.selected) if self.selected in order else 0
            self._select_lane(order[max(0, min(len(order) - 1, at + delta))])

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped
        if self.data is not None:
            self._layout_rows()
            self._rezoom(self.spc)
            self._select_lane(self.selected)

    def show_span(self, start: float, end: float, agent: str | None = None) -> None:
        """Put the time cursor at ``start`` (seconds since the run start), zoomed in so
        that ``[start, end]`` takes about a third of the width when it is a small part
        of the run, with ``agent``'s lane selected; once the lanes of the latest
        analysis are built, when they are being built."""
        self._span = (start, end, agent)
        self.data_changed()
        if not self._building:
            self.lanes_built()

    def lanes_built(self) -> None:
        span, self._span = self._span, None
        if span is None or self.data is None:
            return
        start, end, agent = span
        tw, _ = self._view()
        want = (end - start) * 3 / tw
        if 0 < want < self.spc:
            self.fit = False
            self._rezoom(max(want, MIN_SPC), anchor=start)
        keys = [ln.key for ln in self.data.lanes]
        if agent in keys:
            self._select_lane(keys.index(agent))
        self._put_cursor(start, center=True)

    def action_select(self) -> None:
        """Post the action under the cursor in the selected lane (the nearest within a
        few cells when none is exactly there)."""
        if self.data is None or self._actions is None or not self.data.lanes:
            return
        mark = td.mark_at(self.data, self.selected, self._cell(), self.spc)
        if mark is not None:
            self.post_message(self.MarkSelected(*mark))
            return
        picked = td.pick_action(self.data, self._actions, self.selected, self._cell(),
                                self.spc)
        if picked is None:
            self.notify("no action under the cursor in this lane", severity="warning")
        else:
            self.post_message(self.BarSelected(*picked))

    def on_click(self, event: events.Click) -> None:
        """Click: cursor and lane there; click a bar already under the cursor (or
        double-click it) to show its events."""
        if self.data is None:
            return
        index = int(self.scroll_y) + event.y - TOP
        before = (self.selected, self._cell())
        if event.x >= LABEL:
            self._put_cursor((int(self.scroll_x) + event.x - LABEL + 0.5) * self.spc)
        if event.y >= TOP and 0 <= index < len(self.rows) and self.rows[index][0] == "lane":
            self._select_lane(self.rows[index][1])
            now = (self.selected, self._cell())
            if event.x >= LABEL and (event.chain >= 2 or now == before):
                codes = self._rasters.codes(self.selected, now[1], 1) \
                    if self._rasters else None
                if codes is not None and codes[0] in td.BAR_CODES:
                    self.action_select()
