"""Steering: the steering agent's trail read from the pool (``steering.*`` records of the
``academy_tui.steering`` logger), one row per suggestion with its state, the highlighted
one's summary and records; ``enter`` shows its events, ``y``/``n`` approve or reject it.

The trail is computed in this view's own worker (``steering`` group, holding the model's
``things_lock``), so the UI thread only paints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from features.report import steering_rows
from tui.model import RunModel
from tui.safe import clean

NO_STEERING = ("No steering agent has written to this run (start one with "
               "launch_steering(...) or academy-tui steer RUN --exchange ...)")
COLUMNS = (("id", "id"), ("time", "time"), ("target", "target"), ("action", "action"),
           ("args", "args"), ("state", "state"))
MAX_RECORDS = 60
HIDDEN_EVERY_S = 2.0
"""While another tab is shown the trail is read at most this often."""
"""Records of the highlighted suggestion listed under its summary."""
KEYS = ("steering.kind", "steering.id", "steering.incident", "steering.action",
        "steering.args", "steering.target", "steering.phase", "steering.result",
        "steering.reason", "steering.summary", "steering.mode", "steering.exchange")


@dataclass
class Suggestion:
    """One suggestion and what became of it."""

    id: str
    time: float
    """Seconds since the run start."""
    target: str = ""
    action: str = ""
    args: str = ""
    state: str = "suggested"
    """suggested (mode suggest), advice only (nothing declared to call), pending (mode
    confirm, waiting for a person), applying, approved, rejected, expired, applied: …,
    checked: …, reverted: …, escalated: …"""
    summary: str = ""
    incident: str = ""
    records: list[tuple[int, float, str, str]] = field(default_factory=list)
    """(row, seconds since the run start, kind, message) of every record of it."""

    def cells(self) -> list[str]:
        # The state's word in the table; its reason under the table (``title``).
        return [clean(self.id, 24), f"+{self.time:.3f} s", clean(self.target, 40),
                clean(self.action, 30), clean(self.args, 60),
                clean(self.state.split(":", 1)[0], 30)]


@dataclass
class Trail:
    events: int
    records: int
    suggestions: dict[str, Suggestion]
    mode: str = ""
    exchange: str = ""
    """Where the last steering agent said approvals reach it (``local``: nowhere outside)."""


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def compute_trail(model: RunModel) -> Trail:
    """The suggestions of the run's steering trail (under ``model.things_lock``)."""
    with model.things_lock:
        run = model.run
        ev = run.events()
        rows = steering_rows(run)
        if not len(rows):
            return Trail(ev.n, 0, {})
        cols = {k: (ev.column(k)[rows] if k in ev.store.key_shapes else [None] * len(rows))
                for k in KEYS}
        created = ev.created[rows]
        msgs = ev.column("message")[rows]
        t0 = ev.t0
        n = ev.n
    out: dict[str, Suggestion] = {}
    mode = exchange = ""
    for i, row in enumerate(rows.tolist()):
        get = {k: _s(cols[k][i]) for k in KEYS}
        mode = get["steering.mode"] or mode
        if get["steering.kind"] == "start":
            exchange = get["steering.exchange"]
        sid = get["steering.id"]
        if not sid:
            continue
        t = float(created[i]) - t0
        kind = get["steering.kind"]
        sug = out.get(sid)
        if sug is None:
            sug = out[sid] = Suggestion(sid, t)
        for attr in ("target", "action", "args", "summary", "incident"):
            if not getattr(sug, attr) and get[f"steering.{attr}"]:
                setattr(sug, attr, get[f"steering.{attr}"])
        result = get["steering.result"]
        if kind == "suggestion":
            # What the mode does with it: only confirm waits for a person.
            sug.state = ("advice only" if not get["steering.action"] else
                         {"confirm": "pending", "apply": "applying"}.get(
                             get["steering.mode"], "suggested"))
        elif kind == "escalation":
            sug.state = "escalated" + (f": {get['steering.reason']}"
                                       if get["steering.reason"] else "")
        elif kind == "approval":
            sug.state = "approved"
        elif kind == "rejection":
            sug.state = "rejected"
        elif kind == "expiry":
            sug.state = "expired"
        elif kind == "apply" and get["steering.phase"] != "before":
            sug.state = "applied" + (f": {result}" if result else "")
        elif kind == "check":
            sug.state = "checked: " + (result or "?")
        elif kind == "revert" and get["steering.phase"] != "before":
            sug.state = "reverted" + (f": {result}" if result else "")
        sug.records.append((int(row), t, kind, _s(msgs[i])))
    return Trail(n, len(rows), out, mode, exchange)


class SteeringView(VerticalScroll):
    """Suggestions (table), and the highlighted one's summary and records."""

    DEFAULT_CSS = """
    SteeringView { padding: 0 1; }
    SteeringView DataTable { height: auto; max-height: 14; margin-bottom: 1; }
    SteeringView .section { text-style: bold; color: $accent; margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "decide('approve')", "approve", show=False),
        Binding("n", "decide('reject')", "reject", show=False),
    ]

    class DrillDown(Message):
        """Show the events matching ``expr`` (a filter) in the event view."""

        def __init__(self, expr: str, row: int | None = None) -> None:
            super().__init__()
            self.expr = expr
            self.row = row

    @dataclass
    class Computed(Message):
        trail: Trail

    def __init__(self, model: RunModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.trail: Trail | None = None
        self._computing = False
        self._asked_at = -1
        self._hidden_at = -HIDDEN_EVERY_S
        self._hidden = True
        self._announced: set[str] = set()
        self.exchange_url = ""
        """The exchange last used to approve or reject (asked once per screen)."""

    def compose(self) -> ComposeResult:
        yield Static("waiting for the run to load…", id="steering-summary")
        yield DataTable(id="steering-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="steering-title", classes="section")
        yield Static("", id="steering-records")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.refresh_view()

    # -- computing ---------------------------------------------------------------------

    def refresh_view(self, hidden: bool = False) -> None:
        """Recompute the trail when the run has grown (in a worker), then paint; while the
        tab is ``hidden`` at most every :data:`HIDDEN_EVERY_S`, only to announce suggestions
        that wait for approval."""
        if self.model.loading:
            return
        n = self.model.events().n
        now = time.monotonic()
        if hidden and now - self._hidden_at < HIDDEN_EVERY_S:
            return
        self._hidden = hidden
        if not self._computing and n != self._asked_at:
            if hidden:
                self._hidden_at = now
            self._asked_at = n
            self._computing = True
            self.compute()

    @work(thread=True, exclusive=True, group="steering")
    def compute(self) -> None:
        try:
            trail = compute_trail(self.model)
        except Exception as e:  # a bad trail must not take the view down
            self._computing = False
            self.app.call_from_thread(self.notify, f"steering trail failed: {e}",
                                      severity="error")
            return
        self.post_message(self.Computed(trail))

    def on_steering_view_computed(self, msg: SteeringView.Computed) -> None:
        msg.stop()
        self._computing = False
        self.trail = msg.trail
        self._paint(msg.trail)
        self._announce(msg.trail)
        if self.model.events().n != self._asked_at and not self._hidden:
            self.refresh_view()

    def _announce(self, trail: Trail) -> None:
        """A toast for each suggestion that starts waiting for approval."""
        for sid, sug in trail.suggestions.items():
            if sug.state == "pending" and sid not in self._announced:
                self._announced.add(sid)
                self.notify(clean(f"{sid}: {sug.action}({sug.args}) on {sug.target}", 200)
                            + " waits for approval (s: steering, y approves)",
                            title="steering", timeout=10)

    # -- painting ----------------------------------------------------------------------

    def _paint(self, trail: Trail) -> None:
        summary = self.query_one("#steering-summary", Static)
        if not trail.records:
            summary.update(Text(NO_STEERING))
        else:
            n = len(trail.suggestions)
            mode = f" in mode {clean(trail.mode, 20)}" if trail.mode else ""
            pending = sum(1 for s in trail.suggestions.values() if s.state == "pending")
            where = (" Its exchange is local to the workflow's process: approve there."
                     if trail.exchange == "local" else
                     f" Approvals go over {clean(trail.exchange, 80)}." if trail.exchange
                     else "")
            summary.update(Text(
                f"{trail.records:,} steering records{mode}, {n} suggestion"
                f"{'' if n == 1 else 's'}, {pending} pending (enter: its events, y/n: "
                f"approve/reject a pending one).{where}"))
        table = self.query_one(DataTable)
        have = {str(k.value) for k in table.rows}
        for key in have - set(trail.suggestions):
            table.remove_row(key)
        for key, sug in trail.suggestions.items():
            cells = sug.cells()
            if key not in have:
                table.add_row(*cells, key=key)
                continue
            for (col, _), value in zip(COLUMNS, cells, strict=True):
                if table.get_cell(key, col) != value:
                    table.update_cell(key, col, value)
        self._highlighted()

    def selected(self) -> Suggestion | None:
        """The suggestion under the table's cursor."""
        table = self.query_one(DataTable)
        if not table.row_count or self.trail is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.trail.suggestions.get(str(key.value))

    def _highlighted(self) -> None:
        sug = self.selected()
        title = self.query_one("#steering-title", Static)
        body = self.query_one("#steering-records", Static)
        if sug is None:
            title.update("")
            body.update("")
            return
        title.update(Text(f"Suggestion {clean(sug.id, 24)}: {clean(sug.state, 300)}"))
        text = Text()
        if sug.summary:
            text.append(clean(sug.summary) + "\n", style="bold")
        text.append(f"\nRecords ({len(sug.records)}):\n", style="bold")
        for _, t, kind, message in sug.records[:MAX_RECORDS]:
            text.append(f"  +{t:8.3f} s  {clean(kind, 12):<12} {clean(message, 300)}\n")
        if len(sug.records) > MAX_RECORDS:
            text.append(f"  … {len(sug.records) - MAX_RECORDS} more (enter shows them)\n")
        body.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._highlighted()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.trail is None:
            return
        sug = self.trail.suggestions.get(str(event.row_key.value))
        if sug is not None:
            from tui.widgets.anomalies import _value

            self.post_message(self.DrillDown(f"steering.id={_value(sug.id)}",
                                             sug.records[0][0] if sug.records else None))

    # -- approve / reject --------------------------------------------------------------

    def action_decide(self, action: str) -> None:
        sug = self.selected()
        if sug is None:
            self.notify("no suggestion selected", severity="warning")
            return
        if sug.state != "pending":
            self.notify(f"suggestion {clean(sug.id, 24)} is {clean(sug.state, 40)}, "
                        "not pending", severity="warning")
            return
        recorded = self.trail.exchange if self.trail is not None else ""
        if recorded == "local" and not self.exchange_url:
            self.notify("the steering agent runs on a local exchange, which only the "
                        "workflow's process reaches: approve there (or run the workflow "
                        "with an HTTP or Redis exchange)", severity="warning", timeout=8)
            return
        from tui.widgets.prompt import PromptScreen

        def done(url: str | None) -> None:
            if not url or not url.strip():
                return
            self.exchange_url = url.strip()
            self.call_agent(action, sug.id, self.exchange_url)

        # Asked every time, pre-filled with the exchange the agent recorded: enter confirms.
        self.app.push_screen(PromptScreen(
            f"{action} {clean(sug.id, 24)} over the exchange (enter confirms, esc cancels)",
            self.exchange_url or (recorded if recorded != "local" else "")), done)

    @work(thread=True, group="steering-call")
    def call_agent(self, action: str, sid: str, url: str) -> None:
        import asyncio

        from steering.attach import call_steering, steering_agents

        try:
            with self.model.things_lock:
                candidates = steering_agents(self.model.run)
            result = asyncio.run(call_steering(self.model.run.path, url, action, sid,
                                               candidates=candidates))
        except Exception as e:
            line = (str(e).splitlines() or [type(e).__name__])[0]
            self.app.call_from_thread(self.notify, clean(f"{action} {sid} failed: {line}", 300),
                                      severity="error")
            return
        status = result.get("status", "?")
        self.app.call_from_thread(
            self.notify, clean(f"{action} {sid}: {status}", 300),
            severity="information" if status in ("applied", "resolved", "improved", "rejected")
            else "warning")


__all__ = ["NO_STEERING", "SteeringView", "Suggestion", "compute_trail"]
