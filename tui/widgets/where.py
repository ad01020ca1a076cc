"""Where the time went: the core's analysis, painted. Every row drills down to events."""

from __future__ import annotations

import math
from collections import Counter

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from features import analyses
from features.fmt import count, fmt_s, histogram_lines
from features.report import answer
from features.safe import clean
from tui.model import Analysis, RunModel
from tui.widgets.fitted import Row, TableCol, fill, width_of
from tui.widgets.rows import open_focused_row, open_row

CATS = (TableCol("category", "category", 23, rank=90, hide=False),
        TableCol("seconds", "seconds", 7, rank=80), TableCol("share", "share", 6, rank=85),
        TableCol("meaning", "meaning", 24, rest=True))
"""The breakdown: a category's meaning takes the rest of the width, wrapped when narrow."""
STATS = (
    TableCol("class", "class", 17, 8, rank=60),
    TableCol("action", "action", 16, 8, rank=95, hide=False),
    TableCol("count", "count", 5, rank=90), TableCol("ok", "ok", 4, rank=30),
    TableCol("errors", "errors", 6, rank=88),
    TableCol("unfinished", "unfinished", 10, rank=35),
    TableCol("p50", "p50 s", 6, rank=80), TableCol("p95", "p95 s", 6, rank=75),
    TableCol("max", "max s", 6, rank=70), TableCol("queue", "mean queue s", 12, rank=10),
    TableCol("exec", "mean exec s", 11, rank=40), TableCol("reply", "mean reply s", 12, rank=20),
)
"""Per-action statistics; at 80 columns the means, ok and unfinished go first."""
SLOW = (
    TableCol("tag", "tag", 8, rank=85, hide=False),
    TableCol("action", "action", 16, 8, rank=95, hide=False),
    TableCol("agent", "agent", 17, rank=60, ident=True),
    TableCol("status", "status", 9, rank=90), TableCol("start", "start s", 7, rank=50),
    TableCol("total", "total s", 7, rank=80), TableCol("queue", "queue s", 7, rank=20),
    TableCol("exec", "exec s", 7, rank=40), TableCol("reply", "reply s", 7, rank=10),
)
"""The slowest calls; the agent abbreviates to its uuid prefix, then the parts hide."""


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


class WhereView(VerticalScroll):
    """Wall against expected, breakdown by category, per-action statistics, slowest
    actions and a duration histogram."""

    DEFAULT_CSS = """
    WhereView { padding: 0 1; }
    WhereView DataTable { height: auto; max-height: 24; margin-bottom: 1; }
    WhereView #where-cats { max-height: 40; }
    WhereView .section { text-style: bold; color: $accent; margin-top: 1; }
    """
    BINDINGS = [open_row("its events")]

    def action_open_row(self) -> None:
        open_focused_row(self)

    class DrillDown(Message):
        """Show the events matching ``expr`` (a filter) in the event view."""

        def __init__(self, expr: str, row: int | None = None) -> None:
            super().__init__()
            self.expr = expr
            self.row = row

    def __init__(self, model: RunModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self._shown: Analysis | None = None
        """The analysis painted last: a new one (more events, or a new expected time)
        is painted again."""
        self._slow_tags: list[str] = []
        self._stat_keys: list[tuple[str, str]] = []
        self._slow_rows: list[int] = []
        self._rows: dict[str, tuple[tuple[TableCol, ...], list[Row], list[str] | None]] = {}
        """Each table's columns, rows and row keys, refitted when the width changes."""
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first analysis…", id="where-answer")
        yield Static("Where the time went (parts add up to the wall time)", classes="section")
        yield DataTable(id="where-cats", cursor_type="row", zebra_stripes=True)
        yield Static("Actions by agent class (enter: show their events)", classes="section")
        yield DataTable(id="where-stats", cursor_type="row", zebra_stripes=True)
        yield Static("Slowest actions (enter: show that call's events)", classes="section")
        yield DataTable(id="where-slow", cursor_type="row", zebra_stripes=True)
        yield Static("", id="where-hist")

    def on_mount(self) -> None:
        self.refresh_view()

    def on_resize(self) -> None:
        if width_of(self) != self._width:
            self._fill_tables()

    def _fill(self, table_id: str, cols: tuple[TableCol, ...], rows: list[Row],
              keys: list[str] | None = None) -> None:
        self._rows[table_id] = (cols, rows, keys)
        fill(self.query_one(f"#{table_id}", DataTable), cols, rows, width_of(self), keys)

    def _fill_tables(self) -> None:
        self._width = width_of(self)
        for table_id, (cols, rows, keys) in self._rows.items():
            fill(self.query_one(f"#{table_id}", DataTable), cols, rows, self._width, keys)

    def refresh_view(self) -> None:
        a = self.model.analysis
        if a is None or a is self._shown:
            return
        self._shown = a
        self._paint(a)

    def _paint(self, a: Analysis) -> None:
        tb = a.breakdown
        live = " (live: still growing)" if self.model.run.live else ""
        run = self.model.run
        text = Text(answer(tb, a.causes, run.events().cite) + live)
        if tb.expected_s is None:
            text.append("\nPress x to say how long you expected it to take: the excess is "
                        "then explained.", style="dim")
        self.query_one("#where-answer", Static).update(text)
        self._width = width_of(self)
        rows: list[Row] = []
        for c in analyses.CATEGORIES:
            v = tb.seconds[c]
            share = f"{v / tb.wall_s * 100:5.1f}%" if tb.wall_s else "-"
            rows.append([tb.words(c), _num(v), share, analyses.CATEGORY_HELP[c]])
        exp = "" if tb.expected_s is None else f" (expected {fmt_s(tb.expected_s)})"
        rows.append(["wall", _num(tb.wall_s), "100%", f"first to last record{exp}"])
        self._fill("where-cats", CATS, rows, [*analyses.CATEGORIES, "wall"])
        self._stat_keys = []
        rows = []
        for r in a.stats.records():
            self._stat_keys.append((r["agent_class"] or "", r["action"] or ""))
            rows.append([r["agent_class"], r["action"], r["count"], r["ok"], r["errors"],
                         r["unfinished"], _num(r["p50_s"]), _num(r["p95_s"]), _num(r["max_s"]),
                         _num(r["mean_queue_s"]), _num(r["mean_exec_s"]),
                         _num(r["mean_reply_s"])])
        self._fill("where-stats", STATS, rows)
        top = analyses.slowest(a.actions, 20)
        t0 = self.model.events().t0
        self._slow_tags = [str(t) for t in top["tag"]] if len(top) else []
        self._slow_rows = [int(r) for r in top["row_start"]] if len(top) else []
        rows = [[str(r["tag"])[:8], r["action"], r["agent_id"], r["status"],
                 _num((r["t_start"] or t0) - t0, 3), _num(r["total_s"]), _num(r["queue_s"]),
                 _num(r["exec_s"]), _num(r["reply_s"])] for r in top.records()]
        self._fill("where-slow", SLOW, rows)
        self.query_one("#where-hist", Static).update(self._histogram(a))

    def _histogram(self, a: Analysis) -> Text:
        acts = a.actions
        text = Text()
        if not len(acts):
            return text
        # The most common action (the first by name among equals), from the per-class
        # counts of the same actions (counting 715k calls here took 110 ms of the UI
        # thread; a text array of every call and its sorted copy were 50 MB).
        calls: Counter[str] = Counter()
        for action, n in zip(a.stats["action"].tolist(), a.stats["count"].tolist(),
                             strict=True):
            calls[action or ""] += int(n)
        if not calls:
            return text
        name = min(calls, key=lambda k: (-calls[k], k))
        m = acts["action"] == name
        text.append(f"\n{clean(name)}: duration histogram ({count(int(m.sum()), 'call')})\n",
                    style="bold")
        for line in histogram_lines(acts["total_s"][m], bins=10, width=40, bar="█", dash="–"):
            text.append(line + "\n")
        return text

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        if table.id == "where-stats" and event.cursor_row < len(self._stat_keys):
            cls, action = self._stat_keys[event.cursor_row]
            tags = self._tags_of(cls, action)
            if tags:
                self.post_message(self.DrillDown(f'academy.action="{action}"'))
        elif table.id == "where-slow" and event.cursor_row < len(self._slow_tags):
            tag = self._slow_tags[event.cursor_row]
            self.post_message(self.DrillDown(f"academy.action_tag={tag}",
                                             self._slow_rows[event.cursor_row]))
        elif table.id == "where-cats":
            key = str(event.row_key.value)
            expr = {"execution": "academy.action_state~^execute_",
                    "queue": "academy.action_state=sending or academy.action_state="
                             "execute_start",
                    "reply": "academy.action_state~^execute_(success|exception) or "
                             "academy.action_state=success"}.get(key)
            if expr:
                self.post_message(self.DrillDown(expr))

    def _tags_of(self, cls: str, action: str) -> list[str]:
        a = self.model.analysis
        if a is None:
            return []
        acts = a.actions
        m = (acts["action"] == action)
        return [str(t) for t in acts["tag"][m]]
