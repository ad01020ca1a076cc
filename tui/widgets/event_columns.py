"""The event view's columns: which there are, how they fit the width, how wide their
values run, and the text (and component class) of one cell.

Apart from the widget (:mod:`tui.widgets.event_log`) because none of it touches the
screen: it reads the run's columnar store and category tables, and the widget turns the
cells into strips and the component classes into its styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len

from features.safe import clean
from tui.fit import abbreviate_dotted, abbreviate_id, ellipsize, short_id
from tui.model import RunModel

LEVEL_CLASSES = {10: "event-log--debug", 20: "event-log--info", 30: "event-log--warning",
                 40: "event-log--error", 50: "event-log--critical"}
"""Component classes of the level column (and of a WARNING-or-worse message); colours are
in ``tui/app.tcss``."""
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "CRIT"}
STATE_CLASSES = {
    "success": "event-log--ok", "execute_success": "event-log--ok",
    "exception": "event-log--failed", "execute_exception": "event-log--failed",
    "cancelled": "event-log--cancelled", "execute_cancelled": "event-log--cancelled",
}
MESSAGE_MIN = 30
"""Cells the message keeps however narrow the terminal (below that, columns hide)."""
MESSAGE_SHARE = 0.45
"""Share of the width the message keeps below :data:`tui.fit.WIDE` (at most 50 cells)."""
MESSAGE_SHARE_WIDE = 0.4
"""Share of the width the message keeps from :data:`tui.fit.WIDE` on, while the columns
that were cut grow back to their whole values."""
WANT_CAP = 48
"""The widest a column grows on a wide terminal (the message takes the rest)."""
DATED = len("2026-11-28 04:18:55.123")
"""Width of an absolute time with its date."""


@dataclass
class Column:
    """A column of the event view. ``normal``, ``short`` and ``rank`` say how it fits the
    width (:class:`tui.fit.Col`); ``width`` is the laid-out width (0: not shown)."""

    key: str
    title: str
    normal: int
    short: int
    rank: int
    lossless: bool = False
    want: int = 0
    width: int = 0


def default_columns() -> list[Column]:
    """The columns every run shows. As the terminal narrows, ids abbreviate (the agent to
    its uuid prefix, the process to its file's, the logger to its initials), then the least
    needed go first: the process, the state, the logger, the action, the agent; time and
    level always stay."""
    return [Column("@time", "time", 10, 10, 100),
            Column("@proc", "process", 14, 8, 10, lossless=True),
            Column("levelname", "level", 5, 5, 90),
            Column("name", "logger", 18, 10, 30, lossless=True),
            Column("@agent", "agent", 17, 8, 50, lossless=True),
            Column("academy.action", "action", 11, 8, 40),
            Column("academy.action_state", "state", 17, 17, 20)]


def measure(columns: list[Column], model: RunModel, extra: dict[str, object],
            absolute_time: bool) -> str | None:
    """Each column's ``want`` (its longest value, up to :data:`WANT_CAP`), from the
    category tables (a few values each, however many events); ``extra`` holds the added
    columns' values. Returns the run's date (``YYYY-MM-DD``) when absolute times leave it
    out of the cells, ``""`` when they do not, ``None`` when there is no time column."""
    ev = model.events()
    date = None
    for c in columns:
        c.want = c.normal
        if c.key == "@time":
            date = _measure_time(c, model, absolute_time)
        elif c.key == "@proc" and ev.n:  # "9dc4f7c9 21008": the file, then the pid
            c.want = c.normal = 9 + len(str(int(ev.ints["process"][:ev.n].max())))
        elif c.key == "@agent":
            c.want = max(c.normal, _longest(model, "academy.agent_id"),
                         _longest_agent(model))
        elif c.key in ev.codes:
            c.want = max(c.normal, _longest(model, c.key))
        elif c.key in extra:
            values = extra[c.key]
            step = max(1, len(values) // 2000)  # type: ignore[arg-type]
            sample = values[::step]  # type: ignore[index]
            c.want = max([c.normal, *(cell_len(clean(v)) for v in sample
                                     if v is not None and v == v)])
        c.want = min(c.want, WANT_CAP)
    return date


def _measure_time(c: Column, model: RunModel, absolute_time: bool) -> str:
    """The time column's widths; the run's date when absolute times leave it out."""
    ev = model.events()
    if not absolute_time:
        span = (ev.t1 - ev.t0) if ev.n else 0.0
        c.normal = c.short = c.want = max(len("time"), len(f"{span:.3f}"))
        return ""
    first = datetime.fromtimestamp(ev.t0) if ev.n else datetime.now()
    last = datetime.fromtimestamp(ev.t1) if ev.n else first
    if first.date() != last.date():  # a date in every cell, or times are ambiguous
        c.normal = c.short = c.want = DATED
        return ""
    c.normal = c.short = len("00:00:00.000")
    c.want = DATED
    return first.strftime("%Y-%m-%d")


def _longest(model: RunModel, key: str) -> int:
    ev = model.events()
    if key not in ev.codes:
        return 0
    _, values = ev.cat(key)
    return max((cell_len(clean(v)) for v in values), default=0)


def _longest_agent(model: RunModel) -> int:
    a = model.analysis
    if a is None or "agent_id" not in a.agents.columns:
        return 0
    return max((cell_len(clean(v)) for v in a.agents["agent_id"] if v), default=0)


def cell_text(model: RunModel, extra: dict[str, object], absolute_time: bool, row: int,
              col: Column) -> tuple[str, str | None]:
    """The text of a cell in its column's width (abbreviated or cut with ``…``), and the
    component class it is styled with (None: the line's own style)."""
    ev = model.events()
    k, w = col.key, col.width
    if k == "@time":
        t = float(ev.created[row])
        if t != t:
            return "-".rjust(w), None
        if absolute_time:
            fmt = "%Y-%m-%d %H:%M:%S.%f" if w >= DATED else "%H:%M:%S.%f"
            return datetime.fromtimestamp(t).strftime(fmt)[:-3], None
        return f"{t - ev.t0:.3f}".rjust(w), None
    if k == "@proc":
        name = short_id(clean(ev.file_names[ev.file[row]]))[:8]
        pid = int(ev.ints["process"][row])  # -1: the record names no process
        text = f"{name} {pid if pid >= 0 else '-'}"
        return (text if cell_len(text) <= w else ellipsize(name, w)), "event-log--process"
    if k == "levelname":
        lv = int(ev.ints["levelno"][row])
        name = LEVEL_NAMES.get(lv, str(lv))
        return ellipsize(name, w), LEVEL_CLASSES.get(lv)
    if k == "@agent":
        return abbreviate_id(clean(model.agent_of(row)), w), "event-log--agent"
    if k in ev.codes:
        codes, values = ev.cat(k)
        c = int(codes[row])
        v = values[c] if c >= 0 else ""
        text = clean(v)
        if k == "name":
            return abbreviate_dotted(text, w), None
        return ellipsize(text, w), STATE_CLASSES.get(v) if k == "academy.action_state" else None
    added = extra.get(k)
    if added is not None:
        try:
            v = added[row]  # type: ignore[index]
        except IndexError:
            v = None
        if isinstance(v, float) and v != v:
            v = None
        return ellipsize(clean(v), w), "event-log--extra"
    return "", None
