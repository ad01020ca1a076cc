"""Anomalies: the detector's incidents (slowdowns, level shifts, speed-ups, drift, hangs),
what differs about a slowdown's calls, what happened around a change, a hang's evidence,
and the groups it could not judge. Every incident drills down to its events or its time on
the timeline.

The detection runs in the run screen's worker; the explanation of the highlighted
incident in this view's own (``explain`` group), so the UI thread only paints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from features.fmt import fmt_s
from features.safe import clean
from tui.messages import AnomaliesDetected
from tui.model import RunModel
from tui.text import cell
from tui.widgets.fitted import TableCol, fill, fitted_cell, width_of, widths
from tui.widgets.rows import open_focused_row, open_row
from tui.widgets.timeline_data import short_id

if TYPE_CHECKING:
    from features.detect import DetectionResult, Incident

MAX_DRILL = 40
"""Calls of one incident put in the drill-down filter (an or-chain of action tags)."""
MAX_CALLS = 12
"""Calls of the highlighted incident listed under its explanation."""
COLUMNS = (TableCol("id", "#", 3, rank=100, hide=False),
           TableCol("severity", "severity", 8, rank=80),
           TableCol("kind", "kind", 11, rank=90), TableCol("group", "group", 40, 12, rank=95),
           TableCol("count", "calls", 5, rank=70), TableCol("ratio", "max ratio", 11, rank=85),
           TableCol("excess", "extra s", 7, rank=60), TableCol("start", "start", 9, rank=50),
           TableCol("lasted", "lasted", 8, rank=40), TableCol("agents", "agents", 30, 8, rank=30))
"""The incidents' columns; at 80 columns the group shortens and start, lasted and agents go
first."""
_PLAIN = re.compile(r"[0-9A-Za-z_.:-]+")


def _number(cell_value: object) -> int:
    """An incident's number from its ``#`` cell (a styled cell has no order of its own)."""
    text = cell_value.plain if isinstance(cell_value, Text) else str(cell_value)
    return int(text) if text.isdigit() else 0


KIND_WORDS = {"slowdown": "slowdown", "level_shift": "level shift", "speedup": "speed-up",
              "drift": "drift", "hung": "hung"}
"""The kind column, in words."""


def incident_key(inc: Incident) -> str:
    """A row key that survives re-detection (ids are renumbered as incidents appear)."""
    return f"{inc.kind}:{inc.tags[0] if inc.tags else f'{inc.group}@{inc.start:.6f}'}"


def drill_filter(inc: Incident, limit: int = MAX_DRILL) -> tuple[str, str]:
    """The event filter showing the calls of ``inc`` (the first ``limit`` of them) and a
    note saying what was left out (``""`` when nothing)."""
    if not inc.tags:  # a shutdown: its records
        return " or ".join(f"@row={int(r)}" for r in inc.evidence_rows[:limit]), ""
    tags = inc.tags[:limit]
    expr = " or ".join(f"academy.action_tag={_value(t)}" for t in tags)
    note = (f"showing the first {len(tags)} of {len(inc.tags)} calls of incident "
            f"#{inc.id}" if len(inc.tags) > len(tags) else "")
    return expr, note


def _value(v: str) -> str:
    """A filter-language value: bare when plain, else quoted with escapes."""
    if _PLAIN.fullmatch(v):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AnomaliesView(VerticalScroll):
    """Incidents (table), notes on what could not be judged, and the highlighted
    incident's explanation and calls."""

    DEFAULT_CSS = """
    AnomaliesView { padding: 0 1; }
    AnomaliesView DataTable { height: auto; max-height: 14; margin-bottom: 1; }
    AnomaliesView .section { text-style: bold; color: $accent; margin-top: 1; }
    AnomaliesView #anomalies-notes { color: $text-muted; }
    """
    BINDINGS = [
        open_row("its events"),
        Binding("t", "timeline", "incident on timeline"),
    ]

    def action_open_row(self) -> None:
        open_focused_row(self)

    class DrillDown(Message):
        """Show the events matching ``expr`` (a filter) in the event view."""

        def __init__(self, expr: str, row: int | None = None, note: str = "") -> None:
            super().__init__()
            self.expr = expr
            self.row = row
            self.note = note

    class TimeChosen(Message):
        """Show ``[start, end]`` (seconds since the run start) on the timeline."""

        def __init__(self, start: float, end: float, agent: str | None) -> None:
            super().__init__()
            self.start = start
            self.end = end
            self.agent = agent

    @dataclass
    class Explained(Message):
        """An explanation computed in the worker (``key``: the incident and snapshot)."""

        key: tuple[int, str]
        lines: list[str]

    def __init__(self, model: RunModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self._shown: DetectionResult | None = None
        self._incidents: dict[str, Incident] = {}
        self._explained: dict[tuple[int, str], list[str]] = {}
        self._wanted: tuple[int, str] | None = None
        self._widths: dict[str, int] = {}
        """The table's column widths (fitted to the view's width and the cells)."""

    def compose(self) -> ComposeResult:
        yield Static("waiting for the run to load…", id="anomalies-summary")
        yield DataTable(id="anomalies-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="anomalies-notes")
        yield Static("", id="anomalies-title", classes="section")
        yield Static("", id="anomalies-explain")

    def on_mount(self) -> None:
        fill(self.query_one(DataTable), COLUMNS, [], width_of(self))
        self.refresh_view()

    def on_resize(self) -> None:
        if self._shown is not None:
            self._paint_table(self._shown)
            self._highlighted()  # the calls list fits the width too

    # -- painting ----------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Paint the latest detection (cheap when it has not changed)."""
        det = self.model.detection
        if det is None:
            if not self.model.loading:
                self.query_one("#anomalies-summary", Static).update("judging the calls…")
            return
        if det is self._shown:
            return
        self._shown = det
        self.query_one("#anomalies-summary", Static).update(Text(self._summary(det)))
        self._paint_table(det)
        self.query_one("#anomalies-notes", Static).update(self._notes(det))
        self._highlighted()

    def _summary(self, det: DetectionResult) -> str:
        flags = det.flags
        judged = int(np.isin(flags["flag"], ("slow", "ok")).sum()) if len(flags) else 0
        live = " Live: judged again as the run grows." if det.live else ""
        if not det.incidents:
            head = (f"No slowdowns, level shifts, drift or hangs found among {judged:,} "
                    "judged calls." if judged else "No call could be judged yet.")
            return head + live
        n = len(det.incidents)
        return (f"{n} incident{'s' if n > 1 else ''} among {judged:,} judged calls "
                f"(enter: its events, t: it on the timeline).{live}")

    def _notes(self, det: DetectionResult) -> Text:
        text = Text()
        # Sorted: the detector's groups come in no set order, and a list that reshuffles
        # at each judgement reads as a change.
        if det.too_little_data:
            text.append("Too little data to judge: ", style="bold")
            text.append(clean(", ".join(sorted(det.too_little_data)), 400))
            text.append(" (their calls are not judged rather than guessed at).\n")
        for note in sorted(det.notes):
            text.append(f"note: {clean(note, 400)}\n")
        return text

    def _paint_table(self, det: DetectionResult) -> None:
        """Update the rows in place: changed cells, new incidents, gone ones removed; all
        of them when the columns' widths change (a wider value, a new width)."""
        table = self.query_one(DataTable)
        t0 = self.model.events().t0
        incidents = {incident_key(i): i for i in det.incidents}
        rows = {key: self._cells(inc, t0) for key, inc in incidents.items()}
        shown = widths(COLUMNS, list(rows.values()), width_of(self))
        if shown != self._widths:
            self._widths = fill(table, COLUMNS, list(rows.values()), width_of(self),
                                list(rows))
            self._incidents = incidents
            table.sort("id", key=_number)
            return
        for key in [k for k in self._incidents if k not in incidents]:
            table.remove_row(key)
        reorder = False
        for key, row in rows.items():
            cells = [(c.key, fitted_cell(c, v, shown[c.key]))
                     for c, v in zip(COLUMNS, row, strict=True) if c.key in shown]
            if key not in self._incidents:
                table.add_row(*(v for _, v in cells), key=key)
                reorder = True
                continue
            for col, value in cells:
                if table.get_cell(key, col) != value:
                    table.update_cell(key, col, value)
                    reorder |= col == "id"
        self._incidents = incidents
        if reorder:  # an incident found before the others renumbers them
            table.sort("id", key=_number)

    @staticmethod
    def _cells(inc: Incident, t0: float) -> list[int | str | Text]:
        # Record text as Text: a str cell would be read as markup.
        agents = ", ".join(clean(short_id(a), 12) for a in inc.agents[:3])
        if len(inc.agents) > 3:
            agents += f" +{len(inc.agents) - 3}"
        sev = Text(inc.severity, style={"high": "bold red", "medium": "yellow"}.get(
            inc.severity, ""))
        r = inc.max_ratio
        ratio = "-" if r != r else f"{r:.1f}x" if r >= 1 else f"{1 / r:.1f}x faster"
        return [inc.id, sev, KIND_WORDS.get(inc.kind, inc.kind), cell(inc.group, 60),
                str(inc.count), ratio, f"{inc.excess_s:.3f}", f"+{inc.start - t0:.3f} s",
                fmt_s(inc.end - inc.start), cell(agents)]

    # -- the highlighted incident ------------------------------------------------------

    def selected(self) -> Incident | None:
        """The incident under the table's cursor."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self._incidents.get(str(key.value))

    def _highlighted(self) -> None:
        inc = self.selected()
        title = self.query_one("#anomalies-title", Static)
        body = self.query_one("#anomalies-explain", Static)
        if inc is None:
            title.update("")
            body.update("")
            return
        if inc.kind != "slowdown":  # its own words and evidence: nothing to compute
            title.update(Text(f"Incident #{inc.id}: {KIND_WORDS.get(inc.kind, inc.kind)}"))
            body.update(self._own_words(inc))
            return
        title.update(Text(f"Incident #{inc.id}: what differs about its calls"))
        key = (self.model.detected_events, incident_key(inc))
        if key in self._explained:
            body.update(self._explanation(inc, self._explained[key]))
        else:
            body.update(Text(clean(inc.describe()) + "\nexplaining…"))
            self._wanted = key
            self.explain(inc, key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._highlighted()

    @work(thread=True, exclusive=True, group="explain")
    def explain(self, inc: Incident, key: tuple[int, str]) -> None:
        try:
            lines = self.model.explain_incident(inc)
        except Exception as e:  # a bad explanation must not take the view down
            lines = [f"could not explain this incident: {e}"]
        self.post_message(self.Explained(key, lines))

    def on_anomalies_view_explained(self, msg: AnomaliesView.Explained) -> None:
        self._explained[msg.key] = msg.lines
        inc = self.selected()
        if inc is not None and msg.key == self._wanted:
            self.query_one("#anomalies-explain", Static).update(
                self._explanation(inc, msg.lines))

    def _own_words(self, inc: Incident) -> Text:
        """A change with what happened around it, or a hang with its evidence."""
        text = Text()
        text.append(clean(inc.headline(), 2000) + "\n", style="bold")
        if inc.cause:
            text.append("\nAround it:\n", style="bold")
            for c in inc.cause:
                text.append(f"  {clean(c, 400)}\n")
        elif inc.kind in ("level_shift", "speedup", "drift"):
            text.append("\nNothing recorded around it explains it (no action on the "
                        "agent, no steering change, no key that changed value, no new "
                        "process).\n")
        d = inc.detail
        if inc.kind in ("level_shift", "speedup", "drift"):
            text.append(f"\nbefore {fmt_s(d.get('before_s'))}, after "
                        f"{fmt_s(d.get('after_s'))}, {inc.count} calls; p = "
                        f"{d.get('p_value', float('nan')):.2g}\n", style="dim")
        if inc.evidence_rows:
            ev = self.model.events()
            cites = ", ".join(ev.cite(int(r)) for r in inc.evidence_rows[:6])
            text.append(f"\nEvidence: {clean(cites, 400)} (enter shows the records)\n")
        if inc.things:
            self._calls_table(text, inc)
        return text

    @staticmethod
    def _call_line(thing: dict[str, object], tag_w: int = 36) -> str:
        ratio = thing.get("ratio")
        extra = thing.get("excess_s")
        tag = clean(thing.get("tag"), 36)
        return (f"  {tag if tag_w >= 36 else short_id(tag)[:tag_w]:<{tag_w}} "
                f"{clean(short_id(str(thing.get('agent_id'))), 12):<12} "
                f"{clean(thing.get('status'), 10):<10} "
                + (f"{ratio:6.1f}x " if isinstance(ratio, float) else "      - ")
                + (f"+{fmt_s(extra)}" if isinstance(extra, float) else "") + "\n")

    def _explanation(self, inc: Incident, lines: list[str]) -> Text:
        text = Text()
        text.append(clean(inc.describe()) + "\n", style="bold")
        for ln in lines:
            text.append(clean(ln) + "\n")
        self._calls_table(text, inc)
        return text

    def _calls_table(self, text: Text, inc: Incident) -> None:
        """The incident's calls, one line each, at most :data:`MAX_CALLS`."""
        # A line a call: whole tags when they fit, else their uuid prefix (no wrapping).
        tag_w = 36 if width_of(self) >= 2 + 36 + 1 + 12 + 1 + 10 + 1 + 8 + 10 else 8
        text.append(f"\nCalls ({inc.count}):\n", style="bold")
        text.append(f"  {'tag':<{tag_w}} {'agent':<12} {'status':<10} {'ratio':>6}  extra\n",
                    style="dim")
        for thing in inc.things[:MAX_CALLS]:
            text.append(self._call_line(thing, tag_w))
        if inc.count > MAX_CALLS:
            text.append(f"  … {inc.count - MAX_CALLS} more (enter shows their events)\n")

    # -- drill-downs -------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        inc = self._incidents.get(str(event.row_key.value))
        if inc is not None:
            expr, note = drill_filter(inc)
            row = inc.evidence_rows[0] if inc.evidence_rows else None
            self.post_message(self.DrillDown(expr, row, note))

    def action_timeline(self) -> None:
        inc = self.selected()
        if inc is None:
            self.notify("no incident selected", severity="warning")
            return
        t0 = self.model.events().t0
        start = inc.start
        a = self.model.analysis
        if a is not None and inc.tags:  # the first execution, not its caller's request
            hit = np.flatnonzero(a.actions["tag"] == inc.tags[0])
            if len(hit) and np.isfinite(a.actions["t_exec_start"][hit[0]]):
                start = float(a.actions["t_exec_start"][hit[0]])
        self.post_message(self.TimeChosen(start - t0, inc.end - t0,
                                          inc.agents[0] if inc.agents else None))


__all__ = ["AnomaliesDetected", "AnomaliesView", "drill_filter", "incident_key"]
