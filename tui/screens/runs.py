"""The run catalog: every run, newest first, filterable; enter opens one."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from features.report import fmt_bytes, fmt_s
from features.runs import RunSummary, catalog, logs_dir
from features.safe import clean
from tui.text import cell

STATUS_STYLE = {"live": "bold green", "failed": "bold red", "finished": "", "unknown": "yellow"}


class RunsScreen(Screen[None]):
    """The run catalog."""

    BINDINGS = [
        Binding("slash", "filter", "filter"),
        Binding("enter", "open", "open", show=False),
        Binding("r", "reload", "reload"),
        Binding("escape", "clear", "clear filter", show=False),
    ]

    DEFAULT_CSS = """
    RunsScreen #runs-filter { display: none; }
    RunsScreen #runs-filter.-open { display: block; }
    RunsScreen #runs-info { height: 1; padding: 0 1; background: $accent 25%; }
    """

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home
        self.rows: list[RunSummary] = []
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Static("reading the run catalog…", id="runs-info")
        yield Input(placeholder="filter runs (uuid, status, date)…", id="runs-filter")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "academy-tui · runs"
        t = self.query_one(DataTable)
        t.add_columns("pool", "start", "duration", "files", "records", "agents", "errors",
                      "status", "size", "why")
        t.focus()
        self.load()
        self.set_interval(5.0, self.load)

    @work(thread=True, exclusive=True, group="catalog")
    def load(self) -> None:
        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._info, f"summarising runs: {done}/{total}")
        rows = catalog(self.home, progress=progress)
        self.app.call_from_thread(self._show, rows)

    def _info(self, text: str) -> None:
        self.query_one("#runs-info", Static).update(text)

    def _show(self, rows: list[RunSummary]) -> None:
        self.rows = rows
        t = self.query_one(DataTable)
        keep = t.cursor_row
        t.clear()
        for r in rows:
            start = datetime.fromtimestamp(r.start).strftime("%Y-%m-%d %H:%M:%S") \
                if r.start else "-"
            cells = [clean(r.pool), start, fmt_s(r.duration_s), str(r.files), f"{r.records:,}",
                     str(r.agents), str(r.errors), r.status, fmt_bytes(r.size),
                     clean(r.rule, 80)]
            if self.filter_text and not any(self.filter_text.lower() in c.lower()
                                            for c in cells):
                continue
            t.add_row(*(cell(c) for c in cells), key=r.path)  # a str cell is markup
        t.move_cursor(row=min(keep, max(t.row_count - 1, 0)))
        live = sum(1 for r in rows if r.status == "live")
        self._info(f"{len(rows)} runs under {logs_dir(self.home)} · {live} live · "
                   f"refreshed {time.strftime('%H:%M:%S')}")

    def action_filter(self) -> None:
        inp = self.query_one("#runs-filter", Input)
        inp.add_class("-open")
        inp.focus()

    @on(Input.Changed, "#runs-filter")
    def _filtered(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._show(self.rows)

    @on(Input.Submitted, "#runs-filter")
    def _done(self) -> None:
        self.query_one(DataTable).focus()

    def action_clear(self) -> None:
        inp = self.query_one("#runs-filter", Input)
        inp.value = ""
        inp.remove_class("-open")
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self.load()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(Path(str(event.row_key.value)))

    def action_open(self) -> None:
        t = self.query_one(DataTable)
        if t.row_count:
            key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key
            self.open_run(Path(str(key.value)))

    def open_run(self, path: Path) -> None:
        from tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(path, from_catalog=True))
