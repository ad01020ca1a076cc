"""Focus and selection that follow the person: a find match in sight, esc leaving a box
before the run, the first row highlighted (and kept across live refreshes), a view's keys
working right after a click on its tab."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pilotkit import until
from textual.widgets import DataTable, Input, OptionList, RichLog

from tests.tui.test_app import SIZE, open_run
from tests.tui.test_steering_pane import steered  # noqa: F401 (a fixture)
from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.widgets.ask import AskPane
from tui.widgets.event_log import EventLog
from tui.widgets.steering import SteeringView
from tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from steering.demo import DemoResult


def in_sight(log: EventLog) -> bool:
    """The cursor's row is drawn inside the region the log shows (under its header line,
    above a horizontal scrollbar)."""
    y = log.cursor - log.scroll_offset.y + 1
    return 1 <= y < log.scrollable_content_region.height


async def test_find_and_next_put_the_match_in_sight(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=(120, 24)) as pilot:
        scr = await open_run(pilot, app)
        log = scr.query_one(EventLog)
        await pilot.press("home", "ctrl+f", *"fib.iteration>5", "enter")
        await until(pilot, lambda: scr.model.find_text == "fib.iteration>5" and
                    len(scr.model.view.matches) > 1)
        matches = [int(m) for m in scr.model.view.matches]
        assert matches[0] > log.scrollable_content_region.height  # below the first screen
        for want in matches[:3]:
            await pilot.press("n")
            await until(pilot, lambda w=want: log.cursor == w)
            await pilot.pause()
            assert in_sight(log), (log.cursor, log.scroll_offset.y, log.size)
        await pilot.press("home", "N")  # backwards from the top: the last match
        await until(pilot, lambda: log.cursor == matches[-1])
        await pilot.pause()
        assert in_sight(log)


async def test_esc_in_the_ask_box_leaves_the_box_not_the_run(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("a")
        box = scr.query_one("#ask-input", Input)
        await until(pilot, lambda: app.focused is box)
        await pilot.press("escape")
        assert app.screen is scr and scr.query_one("#tabs").active == "ask"
        # The citations if an earlier answer about this pool left some, else the log.
        assert app.focused is scr.query_one(AskPane).resting_widget()
        assert isinstance(app.focused, RichLog | OptionList)
        await pilot.press("a")  # a letter is a command again: back in the box
        await until(pilot, lambda: app.focused is box)


async def test_citations_start_highlighted_and_enter_acts(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("a", *"which errors were raised", "enter")
        ol = scr.query_one("#ask-citations", OptionList)
        await until(pilot, lambda: ol.option_count > 0, timeout=120)
        assert ol.highlighted == 0
        await pilot.press("escape")  # leaves the box for the citations
        assert app.focused is ol
        await pilot.press("enter")  # the first enter shows the first citation's events
        await until(pilot, lambda: scr.query_one("#tabs").active == "events"
                    and scr.model.filter_text != "")


async def test_a_click_on_a_tab_gives_its_view_the_keys(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.click("#tabs Tab#--content-tab-timeline")
        await until(pilot, lambda: scr.query_one("#tabs").active == "timeline")
        tl = scr.query_one(Timeline)
        await until(pilot, lambda: tl.data is not None)
        await pilot.pause()
        assert app.focused is tl
        spc = tl.spc
        await pilot.press("plus")  # zooms at once, without pressing l first
        await until(pilot, lambda: tl.spc == spc / 2 and not tl.fit)
        # And back to the events by a click: its keys too.
        await pilot.click("#tabs Tab#--content-tab-events")
        await until(pilot, lambda: app.focused is scr.query_one(EventLog))
        assert isinstance(app.screen, RunScreen)


def grow(pool: Path, n: int = 3) -> None:
    """Append ``n`` records (copies of the last, later in time) to the pool's first file,
    as a live run would."""
    path = sorted(pool.glob("*.jsonlog"))[0]
    last = json.loads(path.read_text().splitlines()[-1])
    with path.open("a") as f:
        for i in range(n):
            rec = dict(last, created=str(float(last["created"]) + 0.1 * (i + 1)),
                       message=f"grown {i}")
            f.write(json.dumps(rec) + "\n")


async def test_steering_table_starts_on_its_first_row_and_keeps_it_across_refreshes(
        steered: DemoResult, tmp_path: Path) -> None:  # noqa: F811
    pool = shutil.copytree(steered.pool_dir, tmp_path / steered.pool_dir.name)
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.click("#tabs Tab#--content-tab-steering")  # by mouse: keys work too
        view = scr.query_one(SteeringView)
        table = view.query_one(DataTable)
        await until(pilot, lambda: view.trail is not None and table.row_count > 1)
        assert app.focused is table and table.cursor_row == 0
        first = view.selected()
        assert first is not None and first.key == str(table.get_row_at(0)[0])

        async def refreshed() -> None:
            n = scr.model.events().n
            grow(pool)
            await until(pilot, lambda: scr.model.events().n > n and
                        view._asked_at == scr.model.events().n and not view._computing)
            await pilot.pause()

        await refreshed()
        assert table.cursor_row == 0 and view.selected() == view.trail.suggestions[first.key]
        await pilot.press("down")  # the person's choice is kept too
        chosen = view.selected()
        assert chosen is not None and chosen.key != first.key
        await refreshed()
        assert table.cursor_row == 1 and view.selected().key == chosen.key
        await pilot.press("enter")  # acts on the highlighted row at once
        await until(pilot, lambda: scr.query_one("#tabs").active == "events" and
                    f"steering.id={chosen.id}" in scr.model.filter_text)


async def _loaded_without_views(pilot, app: AcademyApp) -> RunScreen:  # type: ignore[no-untyped-def]
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    scr = app.screen
    assert isinstance(scr, RunScreen)
    await until(pilot, lambda: not scr.model.loading)
    await pilot.pause(0.2)
    assert not scr.query(Timeline) and not scr.query(AskPane)  # none drawn, none asked
    return scr


async def test_a_view_asked_for_before_the_views_are_mounted_takes_the_keys(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The views after the events' are mounted after the first frame that shows records
    (tui.screens.run_views.RunViews.mount_views): a run with none yet mounts them only
    when one is asked for. Its key then mounts them, gives the view the focus once it is
    there, and the keys typed behind 'a' land in the ask box."""
    import tui.screens.run as run_screen

    monkeypatch.setattr(run_screen, "VIEWS_AFTER_S", 3600.0)  # no fallback in this test
    pool = tmp_path / "logs" / "00000000-0000-4000-8000-0000000000ab"
    pool.mkdir(parents=True)
    (pool / "00000000-0000-4000-8000-000000000001.jsonlog").write_text("")  # nothing yet
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await _loaded_without_views(pilot, app)
        await pilot.press("w")
        await until(pilot, lambda: app.focused is scr.query_one("#where-cats"))
        assert scr.query_one("#tabs").active == "where"
        await pilot.press("e", "l")
        await until(pilot, lambda: app.focused is scr.query_one(Timeline))
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await _loaded_without_views(pilot, app)
        await pilot.press("a", *"why slow")
        box = scr.query_one("#ask-input", Input)
        await until(pilot, lambda: app.focused is box and box.value == "why slow")


def test_the_run_screen_leaves_the_other_views_out_of_its_start() -> None:
    """What the first frame of a run needs is imported before it; the other views, the
    query language, the sources a run may name and the LLM conversation's log are not
    (importing them was ~0.1 s of a ~0.6 s first screen)."""
    import subprocess
    import sys

    code = ("import sys, tui.cli.commands, tui.app, tui.screens.run, features.run, "
            "tui.cli.handlers; print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout.split()
    left_out = ["tui.widgets.timeline", "tui.widgets.where", "tui.widgets.anomalies",
                "tui.widgets.steering", "tui.widgets.ask", "tui.widgets.detail",
                "features.query", "features.parsl_db", "features.parsl_logs", "features.slurm",
                "features.trail", "features.facts", "sqlite3", "rich.pretty",
                "textual.widgets._rich_log", "textual.widgets._text_area", "tui.screens.runs",
                "features.catalog"]
    assert [m for m in left_out if m in out] == []
    assert "tui.widgets.event_log" in out and "features.store" in out
