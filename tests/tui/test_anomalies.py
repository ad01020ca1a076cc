"""The Anomalies tab, slow bars on the timeline and run against run in the app, with
Textual's Pilot on real runs of the demo workflow (one with an injected slowdown).
Which calls were slow is read from the raw .jsonlog lines with json (the agent's own
``fib.delay_s``), not from our reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pilotkit import detected, text_of, until
from rawspans import raw_really_slow_tags, raw_slow_tags
from textual.widgets import DataTable, TabbedContent

from features.diff import diff
from features.run import Run
from steering.demo import DemoOptions, run_demo
from tui.app import AcademyApp
from tui.help import HelpScreen
from tui.screens.diff import DiffScreen, PickRunScreen
from tui.screens.run import RunScreen
from tui.widgets import timeline_data as td
from tui.widgets.anomalies import AnomaliesView, drill_filter
from tui.widgets.timeline import TOP, Timeline

SIZE = (150, 40)
SLEEP, ITERATIONS, SLOW_AT, SLOW_LEN, FACTOR = 0.02, 24, 8, 4, 6.0
GROUP = "GeneratorAgent.next_item"


def _demo(home: Path, **kw: Any) -> Path:
    res = run_demo(DemoOptions(academy_home=home, **kw))
    assert res.ok, res.error
    return Path(res.pool_dir)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ACADEMY_HOME with a slow run and, made after it, a clean one."""
    root = tmp_path_factory.mktemp("anomalies")
    _demo(root, iterations=ITERATIONS, sleep=SLEEP, slow_at=SLOW_AT, slow_len=SLOW_LEN,
          slow_factor=FACTOR, label="slow")
    _demo(root, iterations=ITERATIONS, sleep=SLEEP, label="clean")
    return root


def pool(home: Path, label: str) -> Path:
    """The pool of the run labelled ``label`` (from its raw workflow-start record)."""
    for p in (home / "logs").iterdir():
        for f in p.glob("*.jsonlog"):
            if f'"fib.label": "{label}"' in f.read_text():
                return p
    raise AssertionError(f"no run labelled {label}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three calls: too few for any baseline."""
    return _demo(tmp_path_factory.mktemp("tiny"), iterations=3, sleep=0.01)


def raw_rows_with_tags(pool_dir: Path, tags: set[str]) -> int:
    return sum(1 for f in pool_dir.glob("*.jsonlog") for line in f.read_text().splitlines()
               if json.loads(line).get("academy.action_tag") in tags)


async def test_anomalies_tab_lists_explains_and_drills_down(home: Path) -> None:
    slow = pool(home, "slow")
    expected = raw_slow_tags(slow, SLEEP)
    assert len(expected) == SLOW_LEN
    app = AcademyApp(str(slow))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        await pilot.press("A")
        assert scr.query_one(TabbedContent).active == "anomalies"
        view = scr.query_one(AnomaliesView)
        table = view.query_one(DataTable)
        await until(pilot, lambda: table.row_count >= 1)
        # The injected calls are the first (most severe) incident; anything else flagged
        # must be really slow in the raw lines (a loaded machine makes such calls).
        allowed = expected | raw_really_slow_tags(slow, SLEEP)
        table.focus()
        while (cur := view.selected()) is not None and not expected <= set(cur.tags) \
                and table.cursor_row < table.row_count - 1:
            await pilot.press("down")
        row = table.get_row_at(table.cursor_row)
        inc = view.selected()
        assert inc is not None and expected <= set(inc.tags) <= allowed
        n = len(inc.tags)
        assert row[3] == GROUP and row[2] == "slowdown" and row[4] == str(n)
        flagged = {t for i in view._incidents.values() for t in i.tags}
        assert flagged <= allowed
        k = table.row_count
        assert f"{k} incident{'' if k == 1 else 's'} among" in \
            text_of(view.query_one("#anomalies-summary"))
        body = view.query_one("#anomalies-explain")
        await until(pilot, lambda: "fib.delay_s" in text_of(body))
        assert f"{n} slow {GROUP} calls (incident #{inc.id})" in text_of(body)
        expected = set(inc.tags)

        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: scr.query_one(TabbedContent).active == "events"
                    and scr.model.filter_text == drill_filter(inc)[0])
        await until(pilot, lambda: len(scr.model.view.rows) > 0)
        ev = scr.model.events()
        shown = scr.model.view.rows.tolist()
        tags = ev.strings("academy.action_tag")
        assert {tags[r] for r in shown} == expected
        assert len(shown) == raw_rows_with_tags(slow, expected)


async def test_timeline_marks_slow_bars_and_jumps_to_the_incident(home: Path) -> None:
    slow = pool(home, "slow")
    expected = raw_slow_tags(slow, SLEEP)
    app = AcademyApp(str(slow))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        await pilot.press("A")
        view = scr.query_one(AnomaliesView)
        await until(pilot, lambda: view.selected() is not None)
        table = view.query_one(DataTable)
        while (cur := view.selected()) is not None and not expected <= set(cur.tags) \
                and table.cursor_row < table.row_count - 1:
            await pilot.press("down")
        inc = view.selected()
        assert inc is not None and expected <= set(inc.tags)
        expected = set(inc.tags)
        await pilot.press("t")
        tl = scr.query_one(Timeline)
        await until(pilot, lambda: scr.query_one(TabbedContent).active == "timeline"
                    and tl.data is not None and tl.data.ratio.size > 0)
        await pilot.pause(0.2)
        data = tl.data
        assert data is not None
        acts = scr.model.analysis.actions  # type: ignore[union-attr]
        marked = {str(acts["tag"][i]) for i in data.action[data.code == td.SLOW]}
        assert expected <= marked <= expected | raw_really_slow_tags(slow, SLEEP)
        assert not (data.code == td.HUNG).any()
        assert np.isfinite(data.ratio).sum() == len(marked)
        # The cursor is on the incident's start, in its agent's lane, and the lane shows
        # the slow glyph where the incident is.
        t0 = scr.model.events().t0
        first = int(np.flatnonzero(acts["tag"] == inc.tags[0])[0])
        assert tl.cursor_t == pytest.approx(acts["t_exec_start"][first] - t0)
        tw = tl._view()[0]
        assert tl._cursor_col(int(tl.scroll_x), tw) >= 0  # in view
        assert tl.spc * tw >= inc.end - inc.start  # and the whole incident fits
        assert data.lanes[tl.selected].key == inc.agents[0]
        pos = next(p for p, r in enumerate(tl.rows) if r[0] == "lane" and r[1] == tl.selected)
        line = tl.render_line(pos - int(tl.scroll_y) + TOP).text
        assert "▓" in line
        readout = tl.render_line(tl._view()[1] - 1).text
        assert "slow:" in readout and f"(incident #{inc.id})" in readout
        assert "▓slow" in readout and "▒hung?" in readout  # the legend


async def test_compare_with_another_run(home: Path) -> None:
    slow, clean = pool(home, "slow"), pool(home, "clean")
    run_a, run_b = Run(clean), Run(slow)
    run_a.load()
    run_b.load()
    app = AcademyApp(str(slow))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for ch in "Compare with run":
            await pilot.press("space" if ch == " " else ch)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PickRunScreen))
        picker = app.screen
        table = picker.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)  # the open run is not offered
        assert table.get_row_at(0)[0] == clean.name
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen))
        ds = app.screen
        assert isinstance(ds, DiffScreen)
        await until(pilot, lambda: ds.result is not None)
        answer = diff(run_a, run_b).answer
        assert answer.startswith("B took")
        assert text_of(ds.query_one("#diff-answer")) == answer
        assert ds.query_one("#diff-table", DataTable).row_count == 8  # 2 actions x 4 phases
        assert "Where the time went, B against A" in text_of(ds.query_one("#diff-lines"))
        await pilot.press("s")  # swap: the open run becomes A
        await until(pilot, lambda: text_of(ds.query_one("#diff-answer")) ==
                    diff(run_b, run_a).answer)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is scr)


async def test_too_little_data_is_said_and_a_typed_run_compares(tiny: Path,
                                                                home: Path) -> None:
    app = AcademyApp(str(tiny))
    async with app.run_test(size=SIZE) as pilot:
        scr = await detected(pilot, app)
        await pilot.press("A")
        view = scr.query_one(AnomaliesView)
        notes = view.query_one("#anomalies-notes")
        await until(pilot, lambda: "Too little data to judge" in text_of(notes))
        assert GROUP in text_of(notes) and "not enough data" in text_of(notes)
        assert view.query_one(DataTable).row_count == 0
        assert "No call could be judged yet." in text_of(view.query_one("#anomalies-summary"))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = text_of(app.screen.query_one("Static"))
        assert "anomalies" in help_text and "compare" in help_text
        await pilot.press("escape")

        await pilot.press("d")  # alone in its home: nothing to list, type one
        await until(pilot, lambda: isinstance(app.screen, PickRunScreen))
        picker = app.screen
        await until(pilot, lambda: "no other run" in text_of(picker.query_one("#pick-status")))
        inp = picker.query_one("#pick-input")
        inp.value = "no-such-run"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: "no-such-run" in text_of(picker.query_one("#pick-error")))
        inp.value = str(pool(home, "slow"))  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen)
                    and app.screen.result is not None)
        assert "B took" in text_of(app.screen.query_one("#diff-answer"))


async def test_a_live_run_is_judged_again_as_it_grows(tmp_path: Path) -> None:
    opts = DemoOptions(iterations=60, sleep=0.05, slow_at=45, slow_len=SLOW_LEN,
                       slow_factor=FACTOR, academy_home=tmp_path)
    app = AcademyApp(demo=opts)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        scr = app.screen
        assert isinstance(scr, RunScreen)
        await pilot.press("A")  # shown from the start: it repaints as judgements arrive
        view = scr.query_one(AnomaliesView)
        table = view.query_one(DataTable)
        judged: set[int] = set()

        def done() -> bool:
            if scr.model.detection is not None:
                judged.add(scr.model.detected_events)
            proc = app.demo_proc
            return (proc is not None and proc.poll() is not None and table.row_count == 1
                    and table.get_row_at(0)[4] == str(SLOW_LEN))

        await until(pilot, done, timeout=40)
        assert app.demo_proc is not None and app.demo_proc.returncode == 0
        assert len(judged) >= 2  # judged while it ran, and again once it had grown
        assert table.get_row_at(0)[3] == GROUP
        assert "Live: judged again" in text_of(view.query_one("#anomalies-summary"))


def test_judged_bars_keep_failures_and_mark_hung_calls() -> None:
    """A slow call that failed stays a failure; a call judged possibly hung is marked;
    flags of calls the actions table does not hold (an older snapshot) are ignored."""
    from features.table import Table

    nan = float("nan")
    n = 4
    actions = Table({
        "tag": np.array(["ok", "slow", "bad", "hung"], dtype=object),
        "status": np.array(["ok", "ok", "exception", "in flight"], dtype=object),
        "caller": np.array(["UserId<u>"] * n, dtype=object),
        "agent_id": np.array(["AgentId<a>"] * n, dtype=object),
        "t_start": np.array([1.0, 2.0, 3.0, 4.0]), "t_end": np.array([1.5, 2.9, 3.9, nan]),
        "t_exec_start": np.array([1.1, 2.1, 3.1, 4.1]),
        "t_exec_end": np.array([1.4, 2.8, 3.8, nan]),
        "action": np.array(["next_item"] * n, dtype=object),
        "exec_s": np.array([0.3, 0.7, 0.7, nan])})
    flags = Table({
        "tag": np.array(["slow", "bad", "hung", "gone"], dtype=object),
        "flag": np.array(["slow", "slow", "possibly hung", "slow"], dtype=object),
        "ratio": np.array([7.0, 6.0, 9.0, 5.0]), "incident": np.array([1, 1, 2, 3])})
    empty = Table({"agent_id": np.empty(0, dtype=object), "class": np.empty(0, dtype=object),
                   "file": np.empty(0, dtype=object), "pid": np.empty(0, dtype=np.int64),
                   **{k: np.empty(0) for k in ("t_launched", "t_starting", "t_running",
                                               "t_shutting_down", "t_shutdown", "t_crash")},
                   "crashed": np.empty(0, dtype=bool)})
    data = td.build_lanes(empty, actions, (np.empty(0), np.empty(0)), 0.0, 10.0, None, flags)
    bars = data.code != td.WAIT
    by_tag = {str(actions["tag"][a]): int(c) for a, c in
              zip(data.action[bars], data.code[bars], strict=True)}
    assert by_tag == {"ok": td.OK, "slow": td.SLOW, "bad": td.EXCEPTION, "hung": td.HUNG}
    assert data.incident.tolist() == [0, 1, 1, 2]
    assert np.isnan(data.ratio[0]) and data.ratio[1:].tolist() == [7.0, 6.0, 9.0]
    lane = next(i for i, ln in enumerate(data.lanes) if ln.key == "AgentId<a>")
    assert td.describe(data, actions, lane, 2.5, 2.6) == [
        "a: next_item ok exec 0.700 s, slow: 7.0x its median (incident #1)"]
    assert td.describe(data, actions, lane, 5.0, 5.1)[0].endswith(
        "unfinished exec -, possibly hung: 9.0x its median (incident #2)")
