"""Run against run in the app: pick another run, then see where this one is slower (or
faster) than it (``features.diff``).

The open run is B, the run picked is A (the baseline): "B took 24.7 s against 16.2 s for
A" reads as "this run took ... against the other". ``s`` swaps them. The other run is
read and the diff computed in a worker, with the progress shown.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from features.catalog import RunSummary, catalog
from features.diff import COLUMNS, RunDiff, diff
from features.fmt import fmt_s
from features.pools import RunError, resolve
from features.run import Run
from features.safe import clean
from tui.model import RunModel
from tui.text import cell


class PickRunScreen(ModalScreen[Path | None]):
    """Choose a run: from the catalog (newest first), or typed as a RUN argument (a pool
    directory, a uuid, a unique uuid prefix or ``latest``)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]
    DEFAULT_CSS = """
    PickRunScreen { align: center middle; }
    PickRunScreen > Vertical { width: 110; height: 80%; border: thick $accent;
                               background: $panel; padding: 0 1; }
    PickRunScreen #pick-error { color: $error; height: auto; }
    PickRunScreen #pick-status { color: $text-muted; height: auto; }
    PickRunScreen DataTable { height: 1fr; }
    """

    def __init__(self, home: Path | None = None, exclude: Path | None = None) -> None:
        super().__init__()
        self.home = home
        self.exclude = exclude

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Compare with which run? (enter picks; or type a RUN: uuid, "
                         "prefix, path, latest)")
            yield Input(placeholder="RUN", id="pick-input")
            yield Static("", id="pick-error")
            yield Static("reading the run catalog…", id="pick-status")
            yield DataTable(id="pick-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("pool", "start", "duration", "records", "actions", "status")
        t.focus()
        self.load()

    @work(thread=True, exclusive=True, group="pick")
    def load(self) -> None:
        rows = catalog(self.home)
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[RunSummary]) -> None:
        t = self.query_one(DataTable)
        t.clear()
        for r in rows:
            if self.exclude is not None and Path(r.path) == self.exclude:
                continue
            start = datetime.fromtimestamp(r.start).strftime("%Y-%m-%d %H:%M:%S") \
                if r.start else "-"
            t.add_row(cell(r.pool), start, fmt_s(r.duration_s), f"{r.records:,}",
                      f"{r.actions:,}", r.status, key=r.path)
        status = self.query_one("#pick-status", Static)
        status.update(f"{t.row_count} other run(s), newest first (tab: type one instead)")
        if not t.row_count:
            status.update("no other run here: type one")
            self.query_one(Input).focus()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(Path(str(event.row_key.value)))

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(resolve(event.value.strip(), self.home))
        except RunError as e:
            self.query_one("#pick-error", Static).update(Text(clean(str(e))))


class DiffScreen(Screen[None]):
    """The diff of the open run (B) against another (A): the answer, the details as
    sentences, and per action and phase the numbers."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("s", "swap", "swap A and B"),
    ]
    DEFAULT_CSS = """
    DiffScreen #diff-runs { height: auto; padding: 0 1; background: $accent 25%; }
    DiffScreen VerticalScroll { padding: 0 1; }
    DiffScreen #diff-answer { text-style: bold; margin: 1 0; }
    DiffScreen DataTable { height: auto; margin-top: 1; }
    """

    class Progressed(Message):
        """The worker's progress (one line of text)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Computed(Message):
        """The diff is ready."""

        def __init__(self, result: RunDiff) -> None:
            super().__init__()
            self.result = result

    def __init__(self, model: RunModel, other: Path) -> None:
        super().__init__()
        self.model = model
        self.other_path = Path(other)
        self.other: Run | None = None
        self.swapped = False
        """False: this run is B and the other A (the baseline); True: the other way."""
        self.result: RunDiff | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._runs_text(), id="diff-runs")
        with VerticalScroll():
            yield Static(Text(f"reading {clean(self.other_path.name)}…"), id="diff-answer")
            yield Static("", id="diff-lines")
            yield DataTable(id="diff-table", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"academy-tui · compare {self.model.run.path.name[:8]}"
        t = self.query_one(DataTable)
        for c in COLUMNS:
            t.add_column(c, key=c)
        self.compute()

    def _runs_text(self) -> Text:
        this, other = self.model.run.path, self.other_path
        a, b = (this, other) if self.swapped else (other, this)
        return Text.assemble(("A ", "bold"), clean(a.name), " (this run)" if a == this else
                             " (the baseline)", "   ", ("B ", "bold"), clean(b.name),
                             " (this run)" if b == this else "")

    @work(thread=True, exclusive=True, group="diff")
    def compute(self) -> None:
        if self.other is None:
            other = Run(self.other_path)
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] > 0.2 or done >= total:
                    last[0] = now
                    pct = done / total * 100 if total else 100.0
                    self.post_message(self.Progressed(
                        f"reading {self.other_path.name}: {pct:3.0f}%"))

            try:
                other.load(progress=progress, local_first=False)
            except (OSError, RunError) as e:
                self.post_message(self.Progressed(f"cannot read {self.other_path}: {e}"))
                return
            self.other = other
        if not self.other.events().n:
            self.post_message(self.Progressed(f"{self.other_path.name} holds no records"))
            return
        self.post_message(self.Progressed("comparing…"))
        with self.model.things_lock:
            a, b = self.other, self.model.run
            result = diff(b, a) if self.swapped else diff(a, b)
        self.post_message(self.Computed(result))

    def on_diff_screen_progressed(self, msg: DiffScreen.Progressed) -> None:
        self.query_one("#diff-answer", Static).update(Text(clean(msg.text)))

    def on_diff_screen_computed(self, msg: DiffScreen.Computed) -> None:
        self.result = d = msg.result
        lines = d.lines()
        self.query_one("#diff-answer", Static).update(Text(clean(lines[0])))
        self.query_one("#diff-lines", Static).update(
            Text("\n".join(clean(ln) for ln in lines[1:])))
        t = self.query_one(DataTable)
        t.clear()
        for r in d.table().records():
            t.add_row(*(cell(_cell(c, r[c])) for c in COLUMNS))  # a str cell is markup

    def action_swap(self) -> None:
        self.swapped = not self.swapped
        self.query_one("#diff-runs", Static).update(self._runs_text())
        self.query_one("#diff-answer", Static).update("comparing…")
        self.compute()


def _cell(column: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:+.0f}%" if column.endswith("_pct") else f"{v:.4f}"
    return clean(v, 60)


def compare(screen: Any) -> None:
    """Ask for another run, then push its diff against the run of ``screen`` (a
    RunScreen). The catalog lists the runs beside the open one unless the app was given
    a home."""
    path: Path = screen.path

    def picked(other: Path | None) -> None:
        if other is not None:
            screen.app.push_screen(DiffScreen(screen.model, other))

    home = getattr(screen.app, "home", None)
    if home is None and path.parent.name == "logs":
        home = path.parent.parent
    screen.app.push_screen(PickRunScreen(home, exclude=path), picked)
