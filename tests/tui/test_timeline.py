"""The timeline tab with Textual's Pilot, on the app exactly as the CLI builds it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pilotkit import until
from textual.message import Message
from textual.widgets import TabbedContent

from features.table import Table
from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.widgets import timeline_data as td
from tui.widgets.timeline import LABEL, TOP, Timeline

SIZE = (140, 40)


async def open_timeline(pilot, app) -> tuple[RunScreen, Timeline]:  # type: ignore[no-untyped-def]
    """The run screen once analysed, with the Timeline tab shown."""
    await until(pilot, lambda: isinstance(app.screen, RunScreen)
                and app.screen.model.analysis is not None)
    scr = app.screen
    await pilot.press("l")
    tl = scr.query_one(Timeline)
    await until(pilot, lambda: tl.data is not None and tl.size.width > 0)
    await pilot.pause(0.1)
    return scr, tl


def lines(tl: Timeline) -> list[str]:
    return [tl.render_line(y).text for y in range(tl._view()[1])]


def lane_line(tl: Timeline, lane: int) -> int:
    """The widget line (y) showing ``lane`` (it must be scrolled into view)."""
    pos = next(p for p, r in enumerate(tl.rows) if r[0] == "lane" and r[1] == lane)
    return pos - int(tl.scroll_y) + TOP


def segment_at(tl: Timeline, y: int, col: int):  # type: ignore[no-untyped-def]
    """The segment covering cell column ``col`` of line ``y``."""
    x = 0
    for seg in tl.render_line(y):
        if x <= col < x + len(seg.text):
            return seg
        x += len(seg.text)
    raise AssertionError(f"no segment at column {col}")


def agents_by_launch(agents: Table) -> list[str]:
    t = np.fmin(agents["t_launched"], agents["t_running"])
    return [str(agents["agent_id"][i]) for i in np.argsort(t, kind="stable")]


async def test_one_lane_per_agent_in_launch_order(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(run=str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        scr, tl = await open_timeline(pilot, app)
        a = scr.model.analysis
        assert scr.query_one(TabbedContent).active == "timeline" and tl.has_focus
        text = lines(tl)
        assert "s/cell · fit" in text[0] and "▏0s" in text[0] and "▏8s" in text[0]
        top = int(a.concurrency[1].max())
        assert f"at once (max {top})" in text[1] and "█" in text[1]
        assert text[TOP].startswith("▶UserId<") and "waits" in text[TOP]  # the driver
        labels = [ln[:LABEL] for ln in text[TOP + 1:TOP + 17]]
        ids = agents_by_launch(a.agents)
        assert len(ids) == 16 and len(tl.data.lanes) == 17
        for label, aid in zip(labels, ids, strict=True):
            cls = a.agents.where(a.agents["agent_id"] == aid)["class"][0]
            assert label.startswith(f" {td.short_id(aid)} {cls}"[:LABEL - 1])
        assert text[TOP + 17].strip() == ""  # nothing after the last lane
        assert text[-1].lstrip().startswith("t=+0.000 s")  # the readout line


async def test_exception_bar_is_drawn_in_the_error_style(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(run=str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr, tl = await open_timeline(pilot, app)
        acts = scr.model.analysis.actions
        bad = acts.where(acts["status"] == "exception")
        assert len(bad) == 1
        keys = [ln.key for ln in tl.data.lanes]
        lane = keys.index(bad["agent_id"][0])
        t0 = scr.model.events().t0
        col = LABEL + math.floor((bad["t_exec_start"][0] - t0) / tl.spc) - int(tl.scroll_x)
        error = tl.get_component_rich_style("timeline--exception")
        seg = segment_at(tl, lane_line(tl, lane), col)
        assert seg.text[0] == "╳" and seg.style == error  # a glyph of its own, not colour alone
        for other in range(len(keys)):  # the error shows in that lane only
            if other != lane:
                assert all(s.style != error for s in tl.render_line(lane_line(tl, other)))
        ok = segment_at(tl, lane_line(tl, lane), LABEL + math.floor(
            (acts["t_exec_start"][acts["status"] == "ok"][-1] - t0) / tl.spc))
        assert ok.style == tl.get_component_rich_style("timeline--ok")
        await pilot.press("n")  # next failure: cursor and lane go to the exception
        assert tl.selected == lane
        assert "next_item EXCEPTION" in tl.readout()


async def test_zoom_pan_and_fit(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(run=str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        _, tl = await open_timeline(pilot, app)
        fit = tl.spc
        tw = tl._view()[0]
        assert tl.fit and tl.data.duration <= fit * tw
        await pilot.press("plus")
        assert not tl.fit and math.isclose(tl.spc, fit / 2)
        await pilot.press("minus")  # back out to the whole run: fit again
        assert tl.fit and math.isclose(tl.spc, fit)
        await pilot.press("equals_sign", "plus", "plus")
        assert math.isclose(tl.spc, fit / 8)
        assert tl.max_scroll_x > 0 and tl.scroll_x == 0
        first = lines(tl)[0][LABEL:]
        await pilot.press("right")
        tw = tl._view()[0]
        assert tl.scroll_x == round(tw / 8)
        await pilot.press("shift+right")
        assert tl.scroll_x == round(tw / 8) + tw
        ruler = lines(tl)[0]
        assert ruler[LABEL:] != first and "▏0s" not in ruler  # the visible start moved
        await pilot.press("shift+left", "left")
        assert tl.scroll_x == 0
        await pilot.press("0")
        assert tl.fit and math.isclose(tl.spc, fit) and tl.scroll_x == 0


async def test_cursor_readout_names_time_action_and_concurrency(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(run=str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        _, tl = await open_timeline(pilot, app)
        for _ in range(5):
            await pilot.press("full_stop")
        await pilot.press("comma")
        assert math.isclose(tl.cursor_t, 4.5 * tl.spc)
        assert f"t=+{tl.cursor_t:.3f} s" in lines(tl)[-1]
        gen = next(i for i, ln in enumerate(tl.data.lanes) if ln.cls == "GeneratorAgent")
        while tl.selected != gen:
            await pilot.press("down")
        await pilot.press("right_square_bracket")  # the lane's next action
        text = lines(tl)[-1]
        assert "next_item ok exec" in text and "1 executing at once" in text
        y = lane_line(tl, gen)
        col = LABEL + tl._cursor_col(int(tl.scroll_x), tl._view()[0])
        cursor_bg = tl.get_component_rich_style("timeline--cursor", partial=True).bgcolor
        assert segment_at(tl, y, col).style.bgcolor == cursor_bg
        await pilot.press("up")
        assert lines(tl)[lane_line(tl, tl.selected)].startswith("▶")


async def test_g_groups_lanes_by_process(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(run=str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        scr, tl = await open_timeline(pilot, app)
        assert not [ln for ln in lines(tl) if ln.startswith("▾")]
        await pilot.press("g")
        heads = [ln[:LABEL] for ln in lines(tl) if ln.startswith("▾")]
        procs = scr.model.analysis.agents
        expect = {f"▾ {f[:8]} {p} (2)" for f, p in zip(procs["file"], procs["pid"], strict=True)}
        assert len(heads) == 8 and {h.rstrip("│ ") for h in heads} == expect
        await pilot.press("g")
        assert not [ln for ln in lines(tl) if ln.startswith("▾")]


async def test_enter_on_a_bar_shows_that_actions_events(sample) -> None:  # type: ignore[no-untyped-def]
    messages: list[Message] = []
    app = AcademyApp(run=str(sample("http")))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        scr, tl = await open_timeline(pilot, app)
        gen = next(i for i, ln in enumerate(tl.data.lanes) if ln.cls == "GeneratorAgent")
        while tl.selected != gen:
            await pilot.press("down")
        await pilot.press("right_square_bracket", "right_square_bracket", "enter")
        # The hook sees the message at every node it bubbles through: count it once.
        picked = list({id(m): m for m in messages if isinstance(m, Timeline.BarSelected)}
                      .values())
        assert len(picked) == 1
        tag, row = picked[0].tag, picked[0].row
        acts = scr.model.analysis.actions
        hit = acts.where(acts["tag"] == tag)
        assert hit["agent_id"][0] == tl.data.lanes[gen].key and hit["row_exec"][0] == row
        await until(pilot, lambda: scr.model.filter_text == f"academy.action_tag={tag}"
                    and len(scr.model.view.rows) > 0)
        assert scr.query_one(TabbedContent).active == "events"
        tags = scr.model.events().strings("academy.action_tag")
        assert {tags[r] for r in scr.model.view.rows.tolist()} == {tag}
        assert scr.model.view.rows.tolist().count(row) == 1


async def test_lanes_grow_live_as_the_pool_is_written(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = sample("pairs")
    pool = tmp_path / src.name
    pool.mkdir()
    rest: dict[Path, list[bytes]] = {}
    for f in sorted(src.glob("*.jsonlog")):
        data = f.read_bytes().splitlines(keepends=True)
        half = len(data) // 2
        (pool / f.name).write_bytes(b"".join(data[:half]))
        rest[pool / f.name] = data[half:]
    app = AcademyApp(run=str(pool))
    async with app.run_test(size=SIZE) as pilot:
        _, tl = await open_timeline(pilot, app)

        def bars() -> int:
            return int(np.isin(tl.data.code, td.BAR_CODES).sum())

        lanes0, bars0, dur0 = len(tl.data.lanes), bars(), tl.data.duration
        text0 = "".join(lines(tl))
        for path, tail in rest.items():
            with path.open("ab") as fh:
                fh.write(b"".join(tail))
        await until(pilot, lambda: len(tl.data.lanes) == 17 and bars() >= 656, timeout=15)
        # Half of every file already launched all agents; the bars and the span grow.
        assert len(tl.data.lanes) >= lanes0 and bars() > bars0 and tl.data.duration > dur0
        assert tl.fit and math.isclose(tl.spc, tl._fit_spc())  # fit follows the growth
        text = "".join(lines(tl))
        assert text.count("█") > text0.count("█")


async def test_log_text_in_labels_renders_literally(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    evil_id, evil_cls = "AgentId<[bold red]x[/]\x1b[31m>", "[bold red]x[/]\x1b[31mEvil"
    src = sample("exception")
    pool = tmp_path / src.name
    pool.mkdir()
    for f in src.glob("*.jsonlog"):
        out = []
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("academy.agent_id") == "AgentId<25664cb3>":
                rec["academy.agent_id"] = evil_id
                if "academy.agent" in rec:
                    rec["academy.agent"] = evil_cls
            out.append(json.dumps(rec))
        (pool / f.name).write_text("\n".join(out) + "\n")
    app = AcademyApp(run=str(pool))
    async with app.run_test(size=SIZE) as pilot:
        _, tl = await open_timeline(pilot, app)
        lane = [ln.key for ln in tl.data.lanes].index(evil_id)
        while tl.selected != lane:
            await pilot.press("down")
        strip = tl.render_line(lane_line(tl, lane))
        assert strip.text.startswith("▶[bold red]x[/]\\x1b[31m [b…│")  # cut, and says so
        assert all("\x1b" not in seg.text for seg in strip)
        assert "[bold red]x[/]\\x1b[31m" in tl.readout()
        assert all("\x1b" not in ln for ln in lines(tl))


async def test_click_moves_the_cursor_and_a_second_click_opens_the_bar(sample) -> None:  # type: ignore[no-untyped-def]
    messages: list[Message] = []
    app = AcademyApp(run=str(sample("exception")))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        scr, tl = await open_timeline(pilot, app)
        acts = scr.model.analysis.actions
        bad = acts.where(acts["status"] == "exception")
        lane = [ln.key for ln in tl.data.lanes].index(bad["agent_id"][0])
        mid = (bad["t_exec_start"][0] + bad["t_exec_end"][0]) / 2 - scr.model.events().t0
        x, y = LABEL + math.floor(mid / tl.spc), lane_line(tl, lane)
        await pilot.click(Timeline, offset=(x, y))
        assert tl.selected == lane and math.floor(tl.cursor_t / tl.spc) == x - LABEL
        assert "EXCEPTION" in tl.readout()
        assert not [m for m in messages if isinstance(m, Timeline.BarSelected)]
        await pilot.click(Timeline, offset=(x, y))
        picked = {id(m): m for m in messages if isinstance(m, Timeline.BarSelected)}
        assert [m.tag for m in picked.values()] == [bad["tag"][0]]
        await until(pilot, lambda: scr.query_one(TabbedContent).active == "events")


def test_raster_worst_status_wins_and_narrow_bars_show() -> None:
    lanes = [td.Lane("AgentId<a>", "agent"), td.Lane("AgentId<b>", "agent")]
    data = td.Lanes(lanes, lane=np.array([0, 0, 0, 1]), t0=np.array([0.0, 0.5, 2.0, 3.01]),
                    t1=np.array([1.9, 0.6, 2.0, 3.02]),
                    code=np.array([td.OK, td.EXCEPTION, td.CANCELLED, td.OK], dtype=np.uint8),
                    action=np.arange(4), duration=4.0)
    cells = td.raster(data, 1.0, 0, 5)
    # [0, 1.9) ok with an exception inside cell 0; a zero-length cancel at 2.0; a 10 ms
    # bar in lane b still takes its cell.
    assert cells[0].tolist() == [td.EXCEPTION, td.OK, td.CANCELLED, td.EMPTY, td.EMPTY]
    assert cells[1].tolist() == [td.EMPTY, td.EMPTY, td.EMPTY, td.OK, td.EMPTY]
    # Chunked windows agree with a direct raster, across a chunk boundary.
    ras = td.Rasters(data, 1e-3)
    codes, _ = ras.window(td.CHUNK - 10, 30)
    assert (codes == td.raster(data, 1e-3, td.CHUNK - 10, 30)).all()


def test_before_the_first_analysis_it_says_so(sample) -> None:  # type: ignore[no-untyped-def]
    from features.run import Run
    from tui.model import RunModel

    tl = Timeline(RunModel(Run(sample("http"))))
    assert tl.render_line(0).text.startswith("analysing…")
    tl._building = True  # its lanes being built in their thread
    assert tl.render_line(0).text.startswith("building the lanes…")


def test_lanes_from_tables_crash_marker_in_flight_and_unknown_agents() -> None:
    nan = float("nan")
    agents = Table({
        "agent_id": np.array(["AgentId<b>", "AgentId<a>"], dtype=object),
        "class": np.array(["B", "A"], dtype=object),
        "file": np.array(["ffff0000.jsonlog", "eeee0000.jsonlog"], dtype=object),
        "pid": np.array([2, 1]), "t_launched": np.array([102.0, 101.0]),
        "t_starting": np.array([nan, nan]), "t_running": np.array([103.0, 101.5]),
        "t_shutting_down": np.array([nan, 105.0]), "t_shutdown": np.array([nan, nan]),
        "crashed": np.array([False, True]), "t_crash": np.array([nan, 106.0])})
    actions = Table({
        "tag": np.array(["t1", "t2"], dtype=object),
        "status": np.array(["in flight", "ok"], dtype=object),
        "caller": np.array(["UserId<u>", "AgentId<a>"], dtype=object),
        "agent_id": np.array(["AgentId<b>", "AgentId<ghost>"], dtype=object),
        "t_start": np.array([103.5, 102.0]), "t_end": np.array([nan, 102.5]),
        "t_exec_start": np.array([104.0, 102.1]), "t_exec_end": np.array([nan, 102.4])})
    created = np.array([100.0, 100.0, 100.0, 106.0])
    data = td.build_lanes(agents, actions, (np.empty(0), np.empty(0)), 100.0, 110.0, created)
    keys = [(ln.key, ln.kind) for ln in data.lanes]
    assert keys == [("UserId<u>", "caller"), ("AgentId<a>", "agent"), ("AgentId<b>", "agent"),
                    ("AgentId<ghost>", "agent")]  # callers, then launch order, then unknown
    assert data.lanes[1].crashed and data.lanes[1].group == "eeee0000 1"

    def spans(lane: int, code: int) -> list[tuple[float, float]]:
        m = (data.lane == lane) & (data.code == code)
        return list(zip(np.round(data.t0[m], 6).tolist(), np.round(data.t1[m], 6).tolist(),
                        strict=True))

    assert spans(1, td.CRASH) == [(6.0, 6.0)]  # dated by its crash record
    assert spans(1, td.ALIVE) == [(1.5, 6.0)] and spans(1, td.WAIT) == [(2.0, 2.5)]
    assert spans(2, td.INFLIGHT) == [(4.0, 10.0)]  # unfinished: up to the run's end
    assert spans(2, td.END) == [] and spans(2, td.ALIVE) == [(3.0, 10.0)]  # still running
    assert spans(0, td.WAIT) == [(3.5, 10.0)] and spans(3, td.OK) == [(2.1, 2.4)]
    assert td.layout_rows(data.lanes, True) == [
        ("lane", 0, ""), ("group", 1, "eeee0000 1"), ("lane", 1, ""),
        ("group", 1, "ffff0000 2"), ("lane", 2, ""), ("group", 1, "unknown process"),
        ("lane", 3, "")]


def test_raster_by_blocks_of_lanes_paints_what_one_block_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Many lanes are rasterised a block of lanes at a time (a 16k-agent run took
    half a gigabyte a chunk at once): every block size paints the same cells, and the
    chunks kept are bounded in bytes."""
    from tui.widgets import timeline_raster as tr

    rng = np.random.default_rng(7)
    n, nl = 4000, 37
    t0 = rng.uniform(0, 100, n)
    data = td.Lanes([td.Lane(f"AgentId<{i}>", "agent") for i in range(nl)],
                    lane=rng.integers(0, nl, n), t0=t0, t1=t0 + rng.exponential(2, n),
                    code=rng.choice([td.OK, td.EXCEPTION, td.CANCELLED], n).astype(np.uint8),
                    action=np.arange(n), duration=110.0)
    whole = td.raster(data, 0.05, 300, 700)
    assert (whole > 0).sum() > 1000 and len(np.unique(whole)) == 4
    for cells in (1, 701, 702 * 5, 702 * 36 + 1):
        monkeypatch.setattr(tr, "RASTER_CELLS", cells)
        assert (td.raster(data, 0.05, 300, 700) == whole).all(), cells
    monkeypatch.setattr(tr, "CACHE_BYTES", nl * td.CHUNK * 3)
    assert td.Rasters(data, 0.05).keep == 3


def test_rasters_build_only_the_blocks_of_lanes_asked_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of thousands of agents shows a few dozen lanes at once: a lane's cells are
    rasterised with its block of lanes only (all 1,656 lanes of a 1M-record run took
    70-80 ms of the UI thread when the timeline was shown), and every lane's cells are
    those of the whole raster, across a chunk boundary."""
    from tui.widgets import timeline_raster as tr

    rng = np.random.default_rng(11)
    n, nl = 6000, 3 * tr.LANE_BLOCK + 5
    t0 = rng.uniform(0, 100, n)
    data = td.Lanes([td.Lane(f"AgentId<{i}>", "agent") for i in range(nl)],
                    lane=rng.integers(0, nl, n), t0=t0, t1=t0 + rng.exponential(2, n),
                    code=rng.choice([td.OK, td.EXCEPTION, td.CANCELLED], n).astype(np.uint8),
                    action=np.arange(n), duration=110.0)
    spc, c0, width = 0.02, td.CHUNK - 100, 300  # across a chunk boundary
    whole = td.raster(data, spc, c0, width)
    built: list[tuple[int, int] | None] = []
    real = tr.raster

    def counted(*args: object, **kw: object) -> np.ndarray:
        built.append(args[4] if len(args) > 4 else kw.get("lanes"))  # type: ignore[arg-type]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tr, "raster", counted)
    ras = td.Rasters(data, spc)
    lane = tr.LANE_BLOCK + 3
    assert (ras.codes(lane, c0, width) == whole[lane]).all()
    assert built == [(tr.LANE_BLOCK, 2 * tr.LANE_BLOCK)] * 2  # one block, two chunks
    for i in range(nl):
        assert (ras.codes(i, c0, width) == whole[i]).all(), i
    assert len(built) == 2 * 4  # each block once per chunk, the last one short
    assert built[-1] == (3 * tr.LANE_BLOCK, nl)
    codes, conc = ras.window(c0, width)
    assert (codes == whole).all() and len(conc) == width
    assert (conc == td.Rasters(data, spc).conc(c0, width)).all()


def test_event_view_shows_a_missing_process_as_missing(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    from features.run import Run
    from tui.model import RunModel
    from tui.widgets.event_columns import cell_text, default_columns

    src = next(sample("thread").glob("*.jsonlog"))
    recs = [json.loads(ln) for ln in src.read_text().splitlines()][:3]
    del recs[1]["process"]  # another writer's record
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / src.name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = Run(pool)
    run.refresh()
    model = RunModel(run)
    model.refresh_snapshot()
    col = next(c for c in default_columns() if c.key == "@proc")
    col.width = 20
    texts = [cell_text(model, {}, False, r, col)[0] for r in range(3)]
    pid = str(recs[0]["process"])
    assert texts[0].endswith(" " + pid) and texts[2].endswith(" " + pid)
    assert texts[1].endswith(" -") and "-1" not in texts[1]
