"""The event view: every record of every process, merged in time, rendered virtually.

Only the lines on screen are built (``render_line``), from the columnar store, and
cached as strips; a million-row run scrolls like a hundred-row one. Follow mode keeps
the newest row in view and pauses as soon as the user scrolls away from the end.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

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
from tui.model import RunModel

LEVEL_STYLES = {
    10: Style(color="bright_black"),
    20: Style(color="cyan"),
    30: Style(color="yellow", bold=True),
    40: Style(color="red", bold=True),
    50: Style(color="white", bgcolor="red", bold=True),
}
STATE_STYLES = {
    "success": Style(color="green"), "execute_success": Style(color="green"),
    "exception": Style(color="red", bold=True), "execute_exception": Style(color="red", bold=True),
    "cancelled": Style(color="magenta"), "execute_cancelled": Style(color="magenta"),
}


@dataclass
class Column:
    key: str
    title: str
    width: int


DEFAULT_COLUMNS = [
    Column("@time", "time", 10), Column("@proc", "process", 14), Column("levelname", "level", 5),
    Column("name", "logger", 18), Column("@agent", "agent", 17),
    Column("academy.action", "action", 11), Column("academy.action_state", "state", 15),
]


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
        self.columns: list[Column] = list(DEFAULT_COLUMNS)
        self._cache: OrderedDict[tuple[int, int, int, int], Strip] = OrderedDict()
        self._extra: dict[str, object] = {}
        self._shown_version = -1

    # -- data --------------------------------------------------------------------------

    def add_column(self, key: str, values: object) -> None:
        """Show a wide key as a column; ``values`` is its full event column."""
        self._extra[key] = values
        if all(c.key != key for c in self.columns):
            self.columns.append(Column(key, clean(key), max(8, min(len(key), 16))))
        self.invalidate()

    def remove_column(self, key: str) -> None:
        self.columns = [c for c in self.columns if c.key != key]
        self._extra.pop(key, None)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget cached lines (columns, time mode or filter changed)."""
        self._cache.clear()
        self.refresh()

    def rows_changed(self) -> None:
        """The visible rows grew or were replaced: resize, follow, repaint."""
        n = len(self.model.view.rows)
        if self.model.version != self._shown_version:
            self._shown_version = self.model.version
            self._cache.clear()
            self.cursor = min(self.cursor, max(n - 1, 0))
        self.virtual_size = Size(self._line_width(), n + 1)
        if self.follow:
            self.cursor = max(n - 1, 0)
            self.call_after_refresh(self._to_end)
        self.refresh()

    def _to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _line_width(self) -> int:
        return sum(c.width + 1 for c in self.columns) + 400

    # -- rendering ---------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:  # a sticky header: the first line never scrolls vertically
            return self._header().crop(scroll_x, scroll_x + width)
        index = scroll_y + y - 1
        row = self.model.row_at(index)
        if row is None:
            return Strip.blank(width, self.rich_style)
        selected = index == self.cursor
        key = (row, width, scroll_x, int(selected) | (self._shown_version << 1))
        strip = self._cache.get(key)
        if strip is None:
            strip = self._build(index, row, selected).crop(scroll_x, scroll_x + width)
            self._cache[key] = strip
            if len(self._cache) > 2000:
                self._cache.popitem(last=False)
        return strip

    def _header(self) -> Strip:
        style = Style(bold=True, underline=True)
        segs = [Segment(c.title[: c.width].ljust(c.width) + " ", style) for c in self.columns]
        segs.append(Segment("message", style))
        return Strip(segs).extend_cell_length(self._line_width(), Style(bold=True))

    def _cell(self, row: int, col: Column) -> tuple[str, Style | None]:
        ev = self.model.events()
        k = col.key
        if k == "@time":
            t = float(ev.created[row])
            if t != t:
                return "-", None
            if self.absolute_time:
                return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3], None
            return f"{t - ev.t0:10.3f}", None
        if k == "@proc":
            name = clean(ev.file_names[ev.file[row]])[:8]
            return f"{name} {ev.ints['process'][row]}", Style(color="blue")
        if k == "levelname":
            lv = int(ev.ints["levelno"][row])
            names = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "CRIT"}
            return names.get(lv, str(lv)), LEVEL_STYLES.get(lv)
        if k == "@agent":
            return clean(self.model.agent_of(row)), Style(color="magenta")
        if k in ev.codes:
            codes, values = ev.cat(k)
            c = int(codes[row])
            v = values[c] if c >= 0 else ""
            return clean(v), STATE_STYLES.get(v) if k == "academy.action_state" else None
        extra = self._extra.get(k)
        if extra is not None:
            try:
                v = extra[row]  # type: ignore[index]
            except IndexError:
                v = None
            if isinstance(v, float) and v != v:
                v = None
            return clean(v), Style(color="green")
        return "", None

    def _build(self, index: int, row: int, selected: bool) -> Strip:
        ev = self.model.events()
        segs: list[Segment] = []
        base = Style(bgcolor="grey23") if selected else Style()
        matches = self.model.view.matches
        is_match = len(matches) and bool(matches[min(int(matches.searchsorted(index)),
                                                          len(matches) - 1)] == index)
        if is_match:
            base += Style(bgcolor="dark_blue")
        for col in self.columns:
            text, style = self._cell(row, col)
            cell = text[: col.width].ljust(col.width) + " "
            segs.append(Segment(cell, base + style if style else base))
        lv = int(ev.ints["levelno"][row])
        msg_style = base + LEVEL_STYLES[lv] if lv >= 30 and lv in LEVEL_STYLES else base
        segs.append(Segment(clean(ev.message[row], 400), msg_style))
        strip = Strip(segs)
        return strip.extend_cell_length(self._line_width(), base)

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
