"""Steering: the steering agent's trail from the pool's verified records
(:mod:`features.trail`), one row per suggestion with its state, the highlighted one's
summary and records; records with steering keys that are not a steering agent's own are
listed apart; ``enter`` shows a suggestion's events, ``y``/``n`` approve or reject it over
the exchange named in this user's session file, with its proof (:mod:`steering.attach`).

The trail is computed in this view's own worker (``steering`` group, holding the model's
``things_lock``), so the UI thread only paints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from features.safe import clean
from features.trail import Suggestion, Trail, read_trail
from tui.model import RunModel
from tui.text import Cell, cell
from tui.threads import finishing
from tui.widgets.rows import open_focused_row, open_row

NO_STEERING = ("No steering agent has written to this run (start one with "
               "launch_steering(...) or academy-tui steer RUN --exchange ...)")
COLUMNS = (("id", "id"), ("time", "time"), ("target", "target"), ("action", "action"),
           ("args", "args"), ("state", "state"))
MAX_RECORDS = 60
"""Records of the highlighted suggestion listed under its summary."""
HIDDEN_EVERY_S = 2.0
"""While another tab is shown the trail is read at most this often."""
MAX_UNVERIFIED = 20


def cells(sug: Suggestion) -> list[Cell]:
    """The table row of a suggestion: the state's word (its reason shows under the table).
    Cells, never markup strings: an action named ``[/]`` is text."""
    return [cell(sug.key, 24), cell(f"+{sug.time:.3f} s"), cell(sug.target, 40),
            cell(sug.action, 30), cell(sug.args, 60), cell(sug.state.split(":", 1)[0], 30)]


def compute_trail(model: RunModel) -> Trail:
    """The run's verified trail (under ``model.things_lock``)."""
    with model.things_lock:
        return read_trail(model.run)


class SteeringView(VerticalScroll):
    """Suggestions (table), and the highlighted one's summary and records."""

    DEFAULT_CSS = """
    SteeringView { padding: 0 1; }
    SteeringView DataTable { height: auto; max-height: 14; margin-bottom: 1; }
    SteeringView .section { text-style: bold; color: $accent; margin-top: 1; }
    """
    BINDINGS = [
        open_row("its records"),
        Binding("y", "decide('approve')", "approve"),
        Binding("n", "decide('reject')", "reject"),
    ]

    def action_open_row(self) -> None:
        open_focused_row(self)

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
        self._chosen = False
        """The person moved the cursor (else it follows the first pending suggestion)."""

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
            if sug.pending and sid not in self._announced:
                self._announced.add(sid)
                self.notify(clean(f"{sid}: {sug.action}({sug.args}) on {sug.target}", 200)
                            + " waits for approval (s: steering, y approves)",
                            title="steering", timeout=10)

    # -- painting ----------------------------------------------------------------------

    def _paint(self, trail: Trail) -> None:
        summary = self.query_one("#steering-summary", Static)
        if not trail.records and not trail.unverified:
            summary.update(Text(NO_STEERING))
        else:
            n = len(trail.suggestions)
            pending = sum(1 for s in trail.suggestions.values() if s.pending)
            agents = "; ".join(
                f"steering agent {st.short} {clean(st.state, 20)}"
                + (f" in mode {clean(st.mode, 20)}" if st.mode else "")
                + (" (approve in the workflow's process: local exchange)"
                   if st.exchange == "local" and st.state == "running" else "")
                for st in trail.sessions.values())
            text = (f"{trail.records:,} steering records, {n} suggestion"
                    f"{'' if n == 1 else 's'}, {pending} pending (enter: its events, y/n: "
                    f"approve/reject a pending one). {agents}")
            conflicts = [r for r, k in trail.kinds.items() if k == "conflict"]
            if conflicts:
                ev = self.model.events()
                text += "\nNot steered, launch records contradict each other: " + "; ".join(
                    clean(ev.message[r], 160) for r in conflicts[:3] if r < ev.n)
            if trail.unverified:
                text += (f"\n{len(trail.unverified):,} record(s) with steering keys are not "
                         "a steering agent's own and are not counted (listed below).")
            summary.update(Text(text))
        table = self.query_one(DataTable)
        keep = self._selected_key()
        have = {str(k.value) for k in table.rows}
        for key in have - set(trail.suggestions):
            table.remove_row(key)
        for key, sug in trail.suggestions.items():
            row = cells(sug)
            if key not in have:
                table.add_row(*row, key=key)
                continue
            for (col, _), value in zip(COLUMNS, row, strict=True):
                if table.get_cell(key, col) != value:
                    table.update_cell(key, col, value)
        self._keep_selection(keep, trail)
        self._highlighted()

    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def _keep_selection(self, key: str | None, trail: Trail) -> None:
        """The suggestion that was under the cursor stays there through refreshes; with none
        yet, the cursor goes to the first pending one (what a person acts on), else the
        first row."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        want = key if self._chosen and key in trail.suggestions else None
        if want is None:
            want = next((k for k, s in trail.suggestions.items() if s.pending),
                        key if key in trail.suggestions else next(iter(trail.suggestions)))
        idx = table.get_row_index(want)
        if table.cursor_row != idx:
            table.move_cursor(row=idx, animate=False)

    def selected(self) -> Suggestion | None:
        """The suggestion under the table's cursor."""
        key = self._selected_key()
        if key is None or self.trail is None:
            return None
        return self.trail.suggestions.get(key)

    def _highlighted(self) -> None:
        sug = self.selected()
        title = self.query_one("#steering-title", Static)
        body = self.query_one("#steering-records", Static)
        text = Text()
        if sug is None:
            title.update("")
        else:
            title.update(Text(f"Suggestion {clean(sug.key, 24)}: {clean(sug.state, 300)}"))
            if sug.summary:
                text.append(clean(sug.summary) + "\n", style="bold")
            text.append(f"\nRecords ({len(sug.records)}):\n", style="bold")
            for _, t, kind, message in sug.records[:MAX_RECORDS]:
                text.append(f"  +{t:8.3f} s  {clean(kind, 12):<12} {clean(message, 300)}\n")
            if len(sug.records) > MAX_RECORDS:
                text.append(f"  … {len(sug.records) - MAX_RECORDS} more (enter shows them)\n")
        trail = self.trail
        if trail is not None and trail.unverified:
            ev = self.model.events()
            text.append(f"\nNot counted ({len(trail.unverified):,}): records with steering "
                        "keys that are not a steering agent's own\n", style="bold")
            for row, why in trail.unverified[:MAX_UNVERIFIED]:
                t = float(ev.created[row]) - ev.t0 if row < ev.n else float("nan")
                text.append(f"  +{t:8.3f} s  {clean(why, 80)}: "
                            f"{clean(ev.message[row] if row < ev.n else '', 160)}\n")
        body.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._highlighted()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._chosen = True
        if self.trail is None:
            return
        sug = self.trail.suggestions.get(str(event.row_key.value))
        if sug is not None:
            from features.query import And, Cmp, to_text

            expr = to_text(And((Cmp("steering.session", "=", sug.session),
                                Cmp("steering.id", "=", sug.id))))
            self.post_message(self.DrillDown(expr, sug.records[0][0] if sug.records else None))

    def on_key(self, event: Any) -> None:
        if event.key in ("up", "down", "pageup", "pagedown", "home", "end"):
            self._chosen = True  # the person moved the cursor: keep their choice

    # -- approve / reject --------------------------------------------------------------

    def action_decide(self, verb: str) -> None:
        from steering.attach import AttachError, prepare_decision

        sug = self.selected()
        if sug is None:
            self.notify("no suggestion selected", severity="warning")
            return
        if not sug.pending:
            self.notify(f"suggestion {clean(sug.key, 24)} is {clean(sug.state, 80)}, "
                        "not pending", severity="warning")
            return
        try:
            with self.model.things_lock:
                decision = prepare_decision(self.model.run, sug.key)
        except AttachError as e:
            self.notify(clean(str(e), 300), severity="warning", timeout=8)
            return
        from tui.widgets.prompt import PromptScreen

        def done(url: str | None) -> None:
            if not url or not url.strip():
                return
            decision.exchange = url.strip()
            self.call_agent(verb, decision)

        # Asked every time, pre-filled with the exchange of this user's session file.
        self.app.push_screen(PromptScreen(
            Text(f"{verb} {clean(decision.describe(), 200)}\nover the exchange (enter "
                 "confirms, esc cancels):"), decision.exchange), done)

    @work(thread=True, group="steering-call")
    def call_agent(self, verb: str, decision: Any) -> None:
        """Send a confirmed decision; quitting meanwhile waits for its answer."""
        with finishing():
            self._call_agent(verb, decision)

    def _call_agent(self, verb: str, decision: Any) -> None:
        from steering.attach import send_decision
        from tui.cli.steer import run_quietly

        key = decision.suggestion.key
        try:
            result = run_quietly(send_decision(decision, verb))
        except Exception as e:
            line = (str(e).splitlines() or [type(e).__name__])[0]
            self.app.call_from_thread(self.notify, clean(f"{verb} {key} failed: {line}", 300),
                                      severity="error")
            return
        if result.get("denied"):
            self.app.call_from_thread(
                self.notify, clean(f"{verb} {key} refused: {result['denied']}", 300),
                severity="error")
            return
        status = result.get("status", "?")
        self.app.call_from_thread(
            self.notify, clean(f"{verb} {key}: {status}", 300),
            severity="information" if status in ("applied", "resolved", "improved", "rejected")
            else "warning")


__all__ = ["NO_STEERING", "SteeringView", "cells", "compute_trail"]
