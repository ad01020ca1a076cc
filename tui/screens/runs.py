"""The run catalog: every run, newest first, filterable; enter opens one."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from features.catalog import RunSummary, catalog
from features.fmt import fmt_bytes, fmt_s
from features.pools import logs_dir
from features.safe import clean
from tui.firstcontact import no_runs
from tui.fit import Col, ellipsize, fit, is_uuid, short_id
from tui.messages import OpenRun
from tui.text import cell
from tui.typeahead import expect, typing

STATUS_STYLE = {"live": "bold green", "failed": "bold red", "finished": "", "unknown": "yellow"}
COLUMNS = (
    # key, label, normal, short, rank (lowest hides first), lossless
    ("pool", "pool", 36, 8, 100, True), ("start", "start", 19, 11, 75, True),
    ("duration", "duration", 8, 8, 70, False), ("files", "files", 5, 5, 30, False),
    ("records", "records", 8, 8, 20, False), ("agents", "agents", 6, 6, 40, False),
    ("errors", "errors", 6, 6, 80, False), ("status", "status", 8, 8, 95, False),
    ("size", "size", 9, 9, 10, False),
)
"""The catalog's columns before ``why``, which takes the rest of the width. At 80 columns
pool and start abbreviate and size, records, files, agents and duration hide, so status,
errors and why stay in view."""
WHY_MIN = 24
"""Cells ``why`` keeps however narrow the terminal."""


class RunsScreen(Screen[None]):
    """The run catalog."""

    BINDINGS = [
        # Priority: handled as it arrives, so a fast "/failed" goes into the box it opens
        # (tui.typeahead); in the box '/' is text.
        Binding("slash", "filter", "filter", priority=True),
        Binding("enter", "open", "open", show=False),
        Binding("r", "reload", "reload"),
        Binding("escape", "clear", "clear filter", show=False),
    ]

    DEFAULT_CSS = """
    RunsScreen #runs-filter { display: none; }
    RunsScreen #runs-filter.-open { display: block; }
    RunsScreen #runs-info { height: 1; padding: 0 1; background: $accent 25%;
                            text-wrap: nowrap; text-overflow: ellipsis; }
    RunsScreen #runs-empty { display: none; padding: 1 2; height: auto; }
    RunsScreen.-empty #runs-empty { display: block; }
    RunsScreen.-empty #runs-table { display: none; }
    """

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home
        self.rows: list[RunSummary] = []
        self.filter_text = ""
        self.widths: dict[str, int] = {}
        """The shown columns' widths, ``why`` last (fitted to the table's width)."""

    def compose(self) -> ComposeResult:
        yield Static("reading the run catalog…", id="runs-info")
        yield Input(placeholder="filter runs (uuid, status, date)…", id="runs-filter")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "academy-tui · runs"
        t = self.query_one(DataTable)
        self._layout()
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
        # One line (see the CSS): what matters first, the long path last, cut with "…".
        self.query_one("#runs-info", Static).update(Text(clean(text)))

    # -- layout ------------------------------------------------------------------------

    def on_resize(self) -> None:
        if self._layout():
            self._show(self.rows)

    def _layout(self) -> bool:
        """Fit the columns to the width (:func:`tui.fit.fit`); True when they changed."""
        t = self.query_one(DataTable)
        width = self.size.width - 2  # the table's vertical scrollbar
        if width <= 2:
            return False
        # Why is a sentence to read: up to almost half the width, before the counts.
        rest = max(WHY_MIN, min(self._want("why"), int(width * 0.45)))
        # A pool named by its uuid reads as its first 8 characters; another name must not.
        uuids = all(is_uuid(r.pool) for r in self.rows)
        cols = [Col(k, normal, short if uuids or k != "pool" else normal,
                    max(normal, self._want(k)), rank, hide=rank < 90,
                    lossless=lossless and (uuids or k != "pool"))
                for k, _, normal, short, rank, lossless in COLUMNS]
        # A table cell has a cell of padding either side.
        widths = fit(cols, width, rest + 2, gap=2, rest_wide=width // 3)
        widths["why"] = max(WHY_MIN, width - sum(w + 2 for w in widths.values()) - 2)
        if widths == self.widths:
            return False
        self.widths = widths
        labels = {k: label for k, label, *_ in COLUMNS}
        t.clear(columns=True)
        for key, w in widths.items():
            t.add_column(labels.get(key, key), width=w, key=key)
        return True

    def _want(self, key: str) -> int:
        return max((len(self._cells(r)[key]) for r in self.rows), default=0)

    @staticmethod
    def _cells(r: RunSummary) -> dict[str, str]:
        start = datetime.fromtimestamp(r.start).strftime("%Y-%m-%d %H:%M:%S") \
            if r.start else "-"
        return {"pool": clean(r.pool), "start": start, "duration": fmt_s(r.duration_s),
                "files": str(r.files), "records": f"{r.records:,}", "agents": str(r.agents),
                "errors": str(r.errors), "status": r.status, "size": fmt_bytes(r.size),
                "why": clean(r.rule)}

    def _fitted(self, key: str, text: str) -> Text:
        """A cell in its column's width: ids and dates abbreviated, the rest cut with …."""
        w = self.widths[key]
        if len(text) > w and key == "pool" and is_uuid(text):  # else "<uuid>-copy" would
            text = short_id(text)  # read as the pool it was copied from
        elif len(text) > w and key == "start" and len(text) == 19:
            text = text[5:16]  # "11-28 04:20"
        c = cell(ellipsize(text, w))
        if key == "status" and STATUS_STYLE.get(text):
            c.stylize(STATUS_STYLE[text])
        return c

    def _show(self, rows: list[RunSummary]) -> None:
        self.rows = rows
        self._layout()  # a longer value (a new run) may widen a column
        t = self.query_one(DataTable)
        keep = t.cursor_row
        t.clear()
        for r in rows:
            cells = self._cells(r)
            if self.filter_text and not any(self.filter_text.lower() in c.lower()
                                            for c in cells.values()):
                continue
            # Record text as cells: a str cell is markup.
            t.add_row(*(self._fitted(k, cells[k]) for k in self.widths), key=r.path)
        t.move_cursor(row=min(keep, max(t.row_count - 1, 0)))
        if not rows:  # first contact: where it looked, what a run is, how to make one
            self.query_one("#runs-empty", Static).update(Text(no_runs(self.home)))
        self.set_class(not rows, "-empty")
        live = sum(1 for r in rows if r.status == "live")
        self._info(f"{len(rows)} runs · {live} live · refreshed {time.strftime('%H:%M:%S')}"
                   f" · under {logs_dir(self.home)}")

    def action_filter(self) -> None:
        if typing(self.app):
            raise SkipAction()  # '/' typed into a box
        inp = self.query_one("#runs-filter", Input)
        inp.add_class("-open")
        inp.focus()
        expect(self.app, lambda: inp)

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
        self.post_message(OpenRun(path))
