"""Where the time went: the core's analysis, painted. Every row drills down to events."""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from features import analyses
from features.report import answer, count, evidence, fmt_s, histogram_lines
from features.safe import clean
from tui.model import Analysis, RunModel
from tui.text import cell


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
    WhereView .section { text-style: bold; color: $accent; margin-top: 1; }
    """

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
        cats = self.query_one("#where-cats", DataTable)
        cats.add_columns("category", "seconds", "share", "meaning")
        stats = self.query_one("#where-stats", DataTable)
        stats.add_columns("class", "action", "count", "ok", "errors", "unfinished", "p50 s",
                          "p95 s", "max s", "mean queue s", "mean exec s", "mean reply s")
        slow = self.query_one("#where-slow", DataTable)
        slow.add_columns("tag", "action", "agent", "status", "start s", "total s", "queue s",
                         "exec s", "reply s")
        self.refresh_view()

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
        text = Text(answer(tb, a.causes, lambda r: evidence(run, r)) + live)
        if tb.expected_s is None:
            text.append("\nPress x to say how long you expected it to take: the excess is "
                        "then explained.", style="dim")
        self.query_one("#where-answer", Static).update(text)
        cats = self.query_one("#where-cats", DataTable)
        cats.clear()
        for c in analyses.CATEGORIES:
            v = tb.seconds[c]
            share = f"{v / tb.wall_s * 100:5.1f}%" if tb.wall_s else "-"
            cats.add_row(tb.words(c), _num(v), share, analyses.CATEGORY_HELP[c], key=c)
        exp = "" if tb.expected_s is None else f" (expected {fmt_s(tb.expected_s)})"
        cats.add_row("wall", _num(tb.wall_s), "100%", f"first to last record{exp}", key="wall")
        stats = self.query_one("#where-stats", DataTable)
        stats.clear()
        self._stat_keys = []
        for r in a.stats.records():
            self._stat_keys.append((r["agent_class"] or "", r["action"] or ""))
            stats.add_row(cell(r["agent_class"]), cell(r["action"]), r["count"], r["ok"],
                          r["errors"], r["unfinished"], _num(r["p50_s"]), _num(r["p95_s"]),
                          _num(r["max_s"]), _num(r["mean_queue_s"]), _num(r["mean_exec_s"]),
                          _num(r["mean_reply_s"]))
        slow = self.query_one("#where-slow", DataTable)
        slow.clear()
        top = analyses.slowest(a.actions, 20)
        t0 = self.model.events().t0
        self._slow_tags = [str(t) for t in top["tag"]] if len(top) else []
        self._slow_rows = [int(r) for r in top["row_start"]] if len(top) else []
        for r in top.records():
            slow.add_row(cell(str(r["tag"])[:8]), cell(r["action"]), cell(r["agent_id"]),
                         cell(r["status"]),
                         _num((r["t_start"] or t0) - t0, 3), _num(r["total_s"]),
                         _num(r["queue_s"]), _num(r["exec_s"]), _num(r["reply_s"]))
        self.query_one("#where-hist", Static).update(self._histogram(a))

    def _histogram(self, a: Analysis) -> Text:
        acts = a.actions
        text = Text()
        if not len(acts):
            return text
        names, counts = np.unique(np.array([x or "" for x in acts["action"]], dtype=str),
                                  return_counts=True)
        name = str(names[int(np.argmax(counts))])
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
