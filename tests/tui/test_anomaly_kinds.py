"""The Anomalies tab shows the detector's other kinds in words: a speed-up (not a slowdown
of the calls before it) with what happened around it and its evidence, on a real demo run
whose driver calls set_sleep half way; and a hang without calls drills down to its
records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pilotkit import detected, text_of, until
from textual.widgets import DataTable, TabbedContent

from features.detect import HUNG, Incident
from steering.demo import DemoOptions, run_demo
from tui.app import AcademyApp
from tui.widgets.anomalies import AnomaliesView, drill_filter, incident_key

SIZE = (150, 40)


def _demo_pool(home: Path, **options: Any) -> Path:
    """The pool of a real demo run made with ``options``."""
    res = run_demo(DemoOptions(academy_home=home, **options))
    assert res.ok, res.error
    return Path(res.pool_dir)


@pytest.fixture(scope="module")
def speedup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _demo_pool(tmp_path_factory.mktemp("speedup"), iterations=24, sleep=0.1,
                      set_sleep_at=8, set_sleep_to=0.02)


async def test_a_speedup_is_shown_in_words_with_what_happened_around_it(
        speedup: Path) -> None:
    app = AcademyApp(str(speedup))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        await pilot.press("A")
        view = scr.query_one(AnomaliesView)
        table = view.query_one(DataTable)
        await until(pilot, lambda: table.row_count >= 1)
        table.focus()
        while (cur := view.selected()) is not None and cur.kind != "speedup" \
                and table.cursor_row < table.row_count - 1:
            await pilot.press("down")
        inc = view.selected()
        assert inc is not None and inc.kind == "speedup"
        row = table.get_row_at(table.cursor_row)
        assert row[2] == "speed-up" and row[3] == "GeneratorAgent.next_item"
        assert re.fullmatch(r"\d\.\dx faster", str(row[5])), row
        body = view.query_one("#anomalies-explain")
        shown = text_of(body)
        assert "(call 8) GeneratorAgent.next_item takes " in shown
        assert "faster than its earlier 0.10 s (a speed-up over 16 calls)" in shown
        assert "Around it:" in shown and "GeneratorAgent.set_sleep(0.02) called on" in shown
        assert "fib.delay_s was 0.100 on the calls before and 0.020 after" in shown
        assert re.search(r"Evidence: [0-9a-f]{8}:\d+", shown)
        await pilot.press("enter")
        await until(pilot, lambda: scr.query_one(TabbedContent).active == "events"
                    and scr.model.filter_text == drill_filter(inc)[0])
        await until(pilot, lambda: len(scr.model.view.rows) > 0)
        tags = scr.model.events().strings("academy.action_tag")
        assert {tags[r] for r in scr.model.view.rows.tolist()} == set(inc.tags)


def test_a_hang_without_calls_drills_down_to_its_records() -> None:
    inc = Incident(id=3, kind=HUNG, group="Worker shutdown", agent_class="Worker",
                   action="shutdown", start=10.0, end=12.5, count=1, max_ratio=float("nan"),
                   excess_s=2.5, severity="high", tags=[], agents=["AgentId<ab12cd34>"],
                   evidence_rows=[41, 97], detail={"how": "shutdown", "waited_s": 2.5})
    assert drill_filter(inc) == ("@row=41 or @row=97", "")
    assert incident_key(inc) == "hung:Worker shutdown@10.000000"
    assert inc.describe() == ("#3 high: Worker AgentId<ab12cd34> hung in shutdown: 2.50 s "
                              "from 'Shutting down agent'")


@pytest.fixture(scope="module")
def slow_then_fast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Calls 5-8 six times slower, then set_sleep makes the rest faster: two incidents."""
    return _demo_pool(tmp_path_factory.mktemp("two"), iterations=30, sleep=0.03, slow_at=5,
                      slow_len=4, slow_factor=6.0, set_sleep_at=18, set_sleep_to=0.005)


async def test_several_incidents_are_listed_in_their_numbers_order(
        slow_then_fast: Path) -> None:
    # The table sorts by the "#" column, whose cells are styled text with no order of
    # their own: two incidents or more once stopped the app (CI, stop 23).
    app = AcademyApp(str(slow_then_fast))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        det = scr.model.detection
        assert det is not None and len(det.incidents) >= 2, det.incidents
        await pilot.press("A")
        table = scr.query_one(AnomaliesView).query_one(DataTable)
        await until(pilot, lambda: table.row_count == len(det.incidents))
        numbers = [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)]
        assert numbers == sorted(i.id for i in det.incidents)
        kinds = {str(table.get_row_at(i)[2]) for i in range(table.row_count)}
        assert {"slowdown", "speed-up"} <= kinds
        await pilot.resize_terminal(80, 24)  # rebuilt at another width: sorted again
        await until(pilot, lambda: table.row_count == len(det.incidents))
        assert [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)] == numbers
