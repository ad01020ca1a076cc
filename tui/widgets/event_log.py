"""The event view: every record of every process, merged in time, rendered virtually.

Only the lines on screen are built (``render_line``), from the columnar store, and
cached as strips; a million-row run scrolls like a hundred-row one. Follow mode keeps
the newest row in view and pauses as soon as the user scrolls away from the end.

The columns (which, how wide, a cell's text) are :mod:`tui.widgets.event_columns`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from features.safe import clean
from tui.fit import ELLIPSIS, Col, ellipsize, fit
from tui.model import RunModel
from tui.widgets.event_columns import (
    DATED,
    LEVEL_CLASSES,
    MESSAGE_MIN,
    MESSAGE_SHARE,
    MESSAGE_SHARE_WIDE,
    STATE_CLASSES,
    Column,
    cell_text,
    default_columns,
    measure,
)


class EventLog(ScrollView, can_focus=True):
    """Virtual, live list of events."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "up", show=False),
        Binding("down", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", show=False),
        Binding("j", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "first", show=False),
        Binding("end", "follow", "follow", show=False),
        Binding("f", "follow", "follow"),
        Binding("enter", "open", "detail"),
        Binding("n", "next_match(1)", "next match"),
        Binding("N", "next_match(-1)", "prev match"),
        Binding("t", "toggle_time", "abs/rel time"),
    ]

    DEFAULT_CSS = """
    EventLog { background: $surface; }
    """
    COMPONENT_CLASSES = {
        "event-log--header", "event-log--cursor", "event-log--match", "event-log--process",
        "event-log--agent", "event-log--extra", *LEVEL_CLASSES.values(),
        *STATE_CLASSES.values(),
    }
    """Styled in ``tui/app.tcss``: the header, the cursor and find-match rows, the process,
    agent and added columns, each level and each final action state."""

    cursor: reactive[int] = reactive(0)
    follow: reactive[bool] = reactive(True)
    absolute_time: reactive[bool] = reactive(False)

    class Opened(Message):
        """The user asked for the detail of a store row."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, model: RunModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.columns: list[Column] = default_columns()
        self._cache: OrderedDict[tuple[int, int, int, int], Strip] = OrderedDict()
        self._extra: dict[str, object] = {}
        self._shown_version = -1
        self._laid_out: tuple[object, ...] = ()
        """What the column widths were fitted for (width, time mode, data measured)."""
        self._date = ""
        """The run's date (``YYYY-MM-DD``) when absolute times leave it out of the cells."""
        self.after_first_rows: Callable[[], object] | None = None
        """Called once, after the first frame that shows records (the run screen mounts
        its other views then, so that the first frame does not wait for them)."""

    # -- data --------------------------------------------------------------------------

    def add_column(self, key: str, values: object) -> None:
        """Show a wide key as a column; ``values`` is its full event column."""
        self._extra[key] = values
        if all(c.key != key for c in self.columns):
            title = clean(key)
            # Asked for by the user: it outranks the default columns but time and level.
            self.columns.append(Column(key, title, max(8, min(cell_len(title), 16)), 6, 60))
        self._laid_out = ()
        self.invalidate()

    def invalidate(self) -> None:
        """Forget cached lines (columns, time mode, filter or analysis changed)."""
        self._cache.clear()
        self._layout()
        self.refresh()

    def held_place(self) -> tuple[int, float, int] | None:
        """The record under the cursor (its row and sort time) and its line on the screen,
        when not following: :meth:`rows_changed` keeps it there as records arrive before
        it (a first load reads the end of the run first, then the rest in behind it)."""
        v = self.model.view
        if self.follow or not 0 <= self.cursor < len(v.rows):
            return None
        return (int(v.rows[self.cursor]), float(v.times[self.cursor]),
                self.cursor - int(self.scroll_offset.y))

    def rows_changed(self, anchor: tuple[int, float, int] | None = None) -> None:
        """The visible rows grew or were replaced: resize, follow, repaint. ``anchor``
        (:meth:`held_place`, taken before they grew): the record to keep under the cursor."""
        n = len(self.model.view.rows)
        replaced = self.model.version != self._shown_version
        if replaced:
            self._shown_version = self.model.version
            self._cache.clear()
            self.cursor = min(self.cursor, max(n - 1, 0))
        if self._layout():
            self._cache.clear()
        self.virtual_size = Size(self._line_width(), n + 1)
        if self.follow:
            self.cursor = max(n - 1, 0)
            self.call_after_refresh(self._to_end)
        elif anchor is not None and not replaced:
            at = self._place_of(anchor[0], anchor[1])
            if at is not None and at != self.cursor:
                self.cursor = at
                self.scroll_to(y=max(at - anchor[2], 0), animate=False, immediate=True)
        self.refresh()

    def _place_of(self, row: int, t: float) -> int | None:
        """Where store row ``row`` (sort time ``t``) is in the visible rows, or None."""
        v = self.model.view
        i = int(v.times.searchsorted(t, side="left"))
        while i < len(v.rows) and v.times[i] == t:
            if v.rows[i] == row:
                return i
            i += 1
        hits = (v.rows == row).nonzero()[0]  # a time that is no time (NaN): look it up
        return int(hits[0]) if len(hits) else None

    def _to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _line_width(self) -> int:
        return sum(c.width + 1 for c in self.columns if c.width) + 400

    # -- layout ------------------------------------------------------------------------

    def on_resize(self) -> None:
        if self._layout():
            self._cache.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()  # cached lines carry the old theme's colours

    def _layout(self) -> bool:
        """Fit the columns to the width: the message keeps its share, the other columns
        shrink, abbreviate or hide by rank (:func:`tui.fit.fit`). True when it changed
        (the line width too, then: the horizontal scrollbar follows)."""
        ev = self.model.events()
        width = self._width()
        a = self.model.analysis
        key = (width, self.absolute_time, ev.n and ev.t0, ev.n and ev.t1, len(ev.codes),
               len(ev.file_names), id(a), tuple(c.key for c in self.columns))
        if key == self._laid_out or not width:
            return False
        self._laid_out = key
        before = [c.width for c in self.columns], self._date
        self._measure()
        rest = max(MESSAGE_MIN, min(50, int(width * MESSAGE_SHARE)))
        cols = [Col(c.key, c.normal, c.short, c.want, c.rank, hide=c.rank < 90,
                    lossless=c.lossless) for c in self.columns]
        widths = fit(cols, width, rest, rest_wide=int(width * MESSAGE_SHARE_WIDE))
        for c in self.columns:
            c.width = widths.get(c.key, 0)
        if ([c.width for c in self.columns], self._date) == before:
            return False
        self.virtual_size = Size(self._line_width(), self.virtual_size.height)
        return True

    def _measure(self) -> None:
        """Each column's ``want`` (:func:`tui.widgets.event_columns.measure`), and the
        run's date when absolute times leave it out of the cells."""
        date = measure(self.columns, self.model, self._extra, self.absolute_time)
        if date is not None:
            self._date = date


    # -- rendering ---------------------------------------------------------------------

    def _width(self) -> int:
        """Cells a line shows (the vertical scrollbar takes the rest of :attr:`size`)."""
        return self.scrollable_content_region.width

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self._width()
        if y == 0:  # a sticky header: the first line never scrolls vertically
            return self._crop(*self._header(), scroll_x, width)
        index = scroll_y + y - 1
        row = self.model.row_at(index)
        if row is None:
            return Strip.blank(width, self.rich_style)
        if self.after_first_rows is not None:
            self.call_after_refresh(self.after_first_rows)
            self.after_first_rows = None
        selected = index == self.cursor
        key = (row, width, scroll_x, int(selected) | (self._shown_version << 1))
        strip = self._cache.get(key)
        if strip is None:
            strip = self._crop(*self._build(index, row, selected), scroll_x, width)
            self._cache[key] = strip
            if len(self._cache) > 2000:
                self._cache.popitem(last=False)
        return strip

    @staticmethod
    def _crop(line: Strip, used: int, scroll_x: int, width: int) -> Strip:
        """The part of a line in view; a line whose text goes on past it ends in ``…``."""
        if used <= scroll_x + width or width < 2:
            return line.crop(scroll_x, scroll_x + width)
        segs = list(line.crop(scroll_x, scroll_x + width - 1))
        style = segs[-1].style if segs else None
        return Strip([*segs, Segment(ELLIPSIS, style)], width)

    def _header(self) -> tuple[Strip, int]:
        style = self.get_component_rich_style("event-log--header")
        segs = []
        hidden = []
        used = 0
        for c in self.columns:
            if not c.width:
                hidden.append(c.title)
                continue
            # The date heads the time column when its cells leave it out.
            title = self._date if c.key == "@time" and self._date and \
                len(self._date) <= c.width < DATED else c.title
            segs.append(Segment(ellipsize(title, c.width).ljust(c.width) + " ", style))
            used += c.width + 1
        title = "message"
        if hidden:  # where they went (enter shows every key of a record)
            title += " · not shown: " + ", ".join(hidden)
        segs.append(Segment(title, style))
        used += cell_len(title)
        return Strip(segs).extend_cell_length(self._line_width(), style), used

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _cell(self, row: int, col: Column) -> tuple[str, Style | None]:
        """The text of a cell in its column's width (abbreviated or cut with ``…``)."""
        text, cls = cell_text(self.model, self._extra, self.absolute_time, row, col)
        return text, self._style(cls) if cls else None


    def _build(self, index: int, row: int, selected: bool) -> tuple[Strip, int]:
        """A whole line, padded to the line width, and the cells its text takes."""
        ev = self.model.events()
        segs: list[Segment] = []
        base = self.get_component_rich_style("event-log--cursor") if selected else Style()
        matches = self.model.view.matches
        is_match = len(matches) and bool(matches[min(int(matches.searchsorted(index)),
                                                          len(matches) - 1)] == index)
        if is_match:
            base += self.get_component_rich_style("event-log--match", partial=True)
        used = 0
        for col in self.columns:
            if not col.width:
                continue
            text, style = self._cell(row, col)
            cell = set_cell_size(text, col.width) + " "
            used += col.width + 1
            segs.append(Segment(cell, base + style if style else base))
        lv = int(ev.ints["levelno"][row])
        msg_style = base + self._style(LEVEL_CLASSES[lv]) if lv >= 30 and \
            lv in LEVEL_CLASSES else base
        message = clean(ev.message[row], 400)
        used += cell_len(message)
        segs.append(Segment(message, msg_style))
        strip = Strip(segs)
        return strip.extend_cell_length(self._line_width(), base), used

    # -- actions -----------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        top = self.scroll_offset.y
        # Rows under the header line and above a horizontal scrollbar (with size.height a
        # match found by n landed on the row the scrollbar covers).
        h = max(self.scrollable_content_region.height - 1, 1)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + h:
            self.scroll_to(y=new - h + 1, animate=False, immediate=True)

    def watch_absolute_time(self) -> None:
        self.invalidate()

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.FollowChanged(follow))

    def action_cursor(self, delta: int) -> None:
        n = len(self.model.view.rows)
        self.follow = False
        self.cursor = max(0, min(n - 1, self.cursor + delta))
        if delta > 0 and self.cursor == n - 1:
            self.follow = True

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.follow = False
        self.cursor = 0

    def action_follow(self) -> None:
        self.follow = True
        self.rows_changed()

    def action_toggle_time(self) -> None:
        self.absolute_time = not self.absolute_time

    def action_open(self) -> None:
        row = self.model.row_at(self.cursor)
        if row is not None:
            self.post_message(self.Opened(row))

    def action_next_match(self, direction: int) -> None:
        m = self.model.view.matches
        if not len(m):
            self.notify("no find matches (ctrl+f to find)", severity="warning")
            return
        self.follow = False
        if direction > 0:
            i = int(m.searchsorted(self.cursor, side="right"))
            self.cursor = int(m[i % len(m)])
        else:
            i = int(m.searchsorted(self.cursor, side="left")) - 1
            self.cursor = int(m[i % len(m)])

    def go_to_row(self, row: int) -> bool:
        """Put the cursor on a store row (if visible under the current filter)."""
        idx = self.model.index_of(row)
        if idx is None:
            return False
        self.follow = False
        self.cursor = idx
        return True

    def on_click(self, event: events.Click) -> None:
        idx = self.scroll_offset.y + event.y - 1
        if event.y >= 1 and 0 <= idx < len(self.model.view.rows):
            self.follow = False
            if event.chain >= 2 and idx == self.cursor:
                self.action_open()
            self.cursor = idx

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False
