"""The app paints record text literally everywhere: tables, titles, column headers, the
palette and notifications show markup and control characters as text and trigger nothing
(a ``str`` DataTable cell or palette title is parsed as markup, and ``[/]`` raises)."""

from __future__ import annotations

import json
from pathlib import Path

from test_app import SIZE, open_run, until
from textual.content import Content
from textual.widgets import DataTable

from features.safe import DANGEROUS, clean
from tui.app import AcademyApp
from tui.palette import commands
from tui.screens.runs import RunsScreen
from tui.widgets.detail import DetailScreen
from tui.widgets.event_log import EventLog

ACTION = "[/]next[link=https://evil.example]_item[/link]\x1b[2J\u202e"
KEY = "[/]evil\x1b]0;t\x07.key"
FILE = "f03f8efc\x1b[2J[bold]b.jsonlog"  # no "/" in a file name: no "[/]"
POOL = "00000000-0000-4000-8000-00000000beef[@click=app.quit]q\x1b]0;x\x07"


def hostile_pool(sample, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    src = next(sample("thread").glob("*.jsonlog"))
    out = []
    for ln in src.read_text().splitlines():
        d = json.loads(ln)
        if d.get("academy.action") == "next_item":
            d["academy.action"] = ACTION
        d[KEY] = "[bold]v[/]\x1b[6n"
        out.append(json.dumps(d))
    pool = tmp_path / "logs" / POOL
    pool.mkdir(parents=True)
    (pool / FILE).write_text("\n".join(out) + "\n")
    return pool


def no_controls(text: str) -> bool:
    return not any(ord(c) in DANGEROUS for c in text if c != "\n")


async def test_tables_titles_columns_palette_and_toasts_are_literal(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pool = hostile_pool(sample, tmp_path)
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        # Where the time went: the per-action table holds the action name.
        await pilot.press("w")
        stats = scr.query_one("#where-stats", DataTable)
        await until(pilot, lambda: stats.row_count > 0)
        await pilot.pause(0.2)
        assert app.is_running
        names = [str(stats.get_row_at(i)[1]) for i in range(stats.row_count)]
        assert clean(ACTION) in names
        # The palette lists the action and the key as they are.
        titles = [Content.from_markup(c.title).plain for c in commands(app, scr)]
        assert f"Action: {clean(ACTION)}" in titles and f"Column: add {clean(KEY)}" in titles
        # Keys a column already shows whole are not offered again.
        assert not {"Column: add process", "Column: add message",
                    "Column: add levelname"} & set(titles)
        # A toast quoting pool text shows it; a widget's notify is never markup.
        scr.notify(f"loading {ACTION}")
        await pilot.pause(0.2)
        assert app.is_running
        # A wide key as a column: its header and cells, and the file in the process column.
        await pilot.press("e")
        log = scr.query_one(EventLog)
        log.add_column(KEY, scr.model.events().column(KEY))
        await pilot.pause(0.2)
        lines = [log.render_line(y).text for y in range(log.size.height)]
        assert all(no_controls(ln) for ln in lines)
        assert clean(KEY)[:15] + "…" in lines[0] and "f03f8efc" in "".join(lines)
        # The detail view's title names the file literally.
        log.go_to_row(int(scr.model.view.rows[0]))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        title = str(app.screen.query_one("#detail-title").render())
        assert clean(FILE) in title and no_controls(title)
        assert app.is_running


async def test_the_catalog_lists_a_hostile_pool_name_literally(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hostile_pool(sample, tmp_path)
    app = AcademyApp(None, home=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.pause(0.2)
        assert app.is_running
        shown = str(table.get_row_at(0)[0])  # literal; cut to its column, it says so
        assert shown == clean(POOL) or (shown.endswith("…") and
                                        clean(POOL).startswith(shown[:-1]) and len(shown) > 30)
