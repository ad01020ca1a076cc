"""The app's main flows with Textual's Pilot, built exactly as the CLI builds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pilotkit import until

from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.screens.runs import RunsScreen
from tui.widgets.detail import DetailScreen
from tui.widgets.event_log import EventLog

SIZE = (150, 40)


def screen_text(widget: EventLog) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


async def open_run(pilot, app):  # type: ignore[no-untyped-def]
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    scr = app.screen
    await until(pilot, lambda: not scr.model.loading and scr.model.analysis is not None)
    await scr.views_ready()  # the views after the events' mount after the first frame
    return scr


async def test_open_run_shows_all_events_in_time_order(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("http")
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        ev = scr.model.events()
        assert len(scr.model.view.rows) == ev.n == 316
        times = ev.created[scr.model.view.rows]
        assert (times[1:] >= times[:-1]).all()
        log = scr.query_one(EventLog)
        await until(pilot, lambda: log.max_scroll_y > 0 and log.scroll_offset.y == log.max_scroll_y)
        lines = screen_text(log)
        assert lines[0].startswith("time") and "message" in lines[0]
        assert log.follow and log.cursor == ev.n - 1
        assert any("workflow end" in ln for ln in lines)  # following: the end is visible


async def test_a_run_begun_before_the_app_is_its_run_read_once(sample) -> None:  # type: ignore[no-untyped-def]
    """The CLI opens the run and begins it before Textual starts (``run_app``: the first
    frame has the first rows); the app takes that run and reads on from there, every
    record once."""
    from features.run import Run

    pool = sample("pairs")  # 9 files of ~1.2 MB: the heads of 8 of them first
    run = Run(pool, cache=False)
    first = run.begin()
    app = AcademyApp(str(pool), opened=run)
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        assert scr.model.run is run
        assert 0 < first < 10_943 == len(scr.model.view.rows) == scr.model.events().n
        assert scr.model.events().store.files[0].records + first > first  # read on


async def cursor_to(pilot, k: int) -> None:  # type: ignore[no-untyped-def]
    """The event view's cursor on its ``k``-th row, by keys (home, then down)."""
    await pilot.press("home")
    for _ in range(k):
        await pilot.press("down")


async def type_filter(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Open the filter bar (/) and type ``text``, a key at a time."""
    await pilot.press("slash")
    for ch in text:
        await pilot.press(ch)


async def test_filter_shows_error_position_then_applies(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await type_filter(pilot, "levelno>=")
        err = str(scr.query_one("#filter-error").render())
        assert "missing value" in err and "^" in err
        await pilot.press("4", "0", "enter")
        await until(pilot, lambda: scr.model.filter_text == "levelno>=40" and
                    len(scr.model.view.rows) == 1)
        row = int(scr.model.view.rows[0])
        assert "pair failed" in scr.model.events().message[row]
        await pilot.press("escape")  # clears the filter
        await until(pilot, lambda: len(scr.model.view.rows) == 209)


async def test_a_filter_that_matches_nothing_says_why(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await type_filter(pilot, "fib.iteraton>3")
        await pilot.press("enter")
        help_ = scr.query_one("#filter-help")
        await until(pilot, lambda: "events shown" in str(help_.render()))
        shown = str(help_.render())
        assert shown.startswith("0 events shown")
        assert "no event has key 'fib.iteraton' (did you mean fib.iteration" in shown
        # The bar closed on enter: the same words are in a notification.
        assert any("did you mean fib.iteration" in n.message and n.severity == "warning"
                   for n in app._notifications)


async def test_detail_and_related_jump_to_the_same_action(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        ev = scr.model.events()
        tags = ev.strings("academy.action_tag")
        target = next(r for r in scr.model.view.rows.tolist()
                      if ev.strings("academy.action_state")[r] == "execute_start"
                      and ev.strings("academy.action")[r] == "next_item")
        log = scr.query_one(EventLog)
        assert log.go_to_row(target)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        body = str(app.screen.query_one("#detail-body").render())
        assert "execute_start" in body and "same action" in body
        from datetime import datetime
        when = datetime.fromtimestamp(float(ev.created[target])).strftime("%Y-%m-%d %H:%M:%S")
        assert when in body and f"+{ev.created[target] - ev.t0:.6f} s into the run" in body
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and
                    scr.model.filter_text.startswith("academy.action_tag="))
        await until(pilot, lambda: len(scr.model.view.rows) > 0)
        shown = {tags[r] for r in scr.model.view.rows.tolist()}
        assert shown == {tags[target]}
        files = {ev.file[r] for r in scr.model.view.rows.tolist()}
        assert len(files) == 2  # both sides of the call: caller's file and agent's file
        assert log.cursor == scr.model.index_of(target)


async def test_follow_pauses_on_scroll_and_resumes(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        log = scr.query_one(EventLog)
        assert log.follow
        await pilot.press("up")
        assert not log.follow
        await pilot.press("home")
        assert log.cursor == 0 and log.scroll_offset.y == 0
        await pilot.press("f")
        await pilot.pause(0.1)
        assert log.follow and log.cursor == len(scr.model.view.rows) - 1


async def test_level_toggle_and_find_with_n(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("thread")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        ev = scr.model.events()
        debug = int((ev.ints["levelno"] == 10).sum())
        await pilot.press("1")  # hide DEBUG
        await until(pilot, lambda: len(scr.model.view.rows) == ev.n - debug)
        await pilot.press("1")
        await until(pilot, lambda: len(scr.model.view.rows) == ev.n)
        await pilot.press("ctrl+f")
        for ch in "fib step":
            await pilot.press(ch if ch != " " else "space")
        await pilot.press("enter")
        await until(pilot, lambda: len(scr.model.view.matches) == 16)
        log = scr.query_one(EventLog)
        await pilot.press("home", "n")
        first = int(scr.model.view.matches[0])
        assert log.cursor == first
        await pilot.press("n")
        assert log.cursor == int(scr.model.view.matches[1])
        await pilot.press("N", "N")
        assert log.cursor == int(scr.model.view.matches[-1])


async def test_where_view_drills_down_to_the_slowest_call(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("w")
        await pilot.pause(0.2)
        answer = str(scr.query_one("#where-answer").render())
        assert "The run took 4.64 s" in answer
        table = scr.query_one("#where-slow")
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: scr.model.filter_text.startswith("academy.action_tag="))
        from textual.widgets import TabbedContent

        assert scr.query_one(TabbedContent).active == "events"
        slow_tag = scr.model.analysis.actions.sort("total_s", descending=True).row(0)["tag"]
        assert scr.model.filter_text == f"academy.action_tag={slow_tag}"


async def test_palette_exports_the_current_filter(sample, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        scr.set_filter_text("academy.action_state~exception")
        await until(pilot, lambda: len(scr.model.view.rows) == 2)
        await pilot.press("ctrl+p")
        for ch in "current filter as CSV":
            await pilot.press(ch if ch != " " else "space")
        await pilot.pause(0.3)
        await pilot.press("enter")
        # It asks where, showing the whole path it would write (issue 17), and takes
        # another one.
        from textual.widgets import Input

        from tui.widgets.prompt import PromptScreen

        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        box = app.screen.query_one("#prompt-input", Input)
        assert box.value.startswith(str(tmp_path / "academy-2ecb7d3e-"))
        assert box.value.endswith(".csv")
        (tmp_path / "out").mkdir()
        box.value = "out/failed.csv"
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "out" / "failed.csv").exists())
        assert not list(tmp_path.glob("*.csv"))  # only where it was told
        import csv

        with (tmp_path / "out" / "failed.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 2
        assert {r["academy.action_state"] for r in rows} == {"exception", "execute_exception"}


async def test_runs_screen_opens_a_run(samples_home: Path) -> None:
    app = AcademyApp(None, home=samples_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and
                    app.screen.query_one("#runs-table").row_count == 8)
        await pilot.press("slash")
        for ch in "failed":
            await pilot.press(ch)
        await until(pilot, lambda: app.screen.query_one("#runs-table").row_count == 1)
        await pilot.press("enter", "enter")
        scr = await open_run(pilot, app)
        assert scr.path.name.startswith("2ecb7d3e")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_help_lists_bindings(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("thread")))
    async with app.run_test(size=SIZE) as pilot:
        await open_run(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        text = str(app.screen.query_one("Static").render())
        for needle in ("filter", "follow", "detail", "quit", "palette", "timeline"):
            assert needle in text
        assert "+/=" in text and "equals_sign" not in text  # keys as typed, not their names
        await pilot.press("end")  # longer than the screen: it scrolls
        await pilot.pause(0.2)
        scroller = app.screen.query_one("VerticalScroll")
        assert scroller.max_scroll_y > 0 and scroller.scroll_offset.y == scroller.max_scroll_y


HOSTILE = [
    "[bold red]boom[/]",
    "[link=https://example.com]click me[/link]",
    "[@click=app.quit]quit now[/]",
    "\x1b[31mred\x1b[0m\x1b]0;title\x07",
    "x" * 66_000,
]


async def test_log_text_is_data_never_markup_or_escapes(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = next(sample("thread").glob("*.jsonlog"))
    lines = src.read_text().splitlines()
    out = []
    for i, ln in enumerate(lines):
        d = json.loads(ln)
        if 10 <= i < 10 + len(HOSTILE):
            d["message"] = d["formatted"] = HOSTILE[i - 10]
            d["academy.agent_id"] = "[red]AgentId<evil>[/red]"
        out.append(json.dumps(d))
    pool = tmp_path / "logs" / "00000000-0000-4000-8000-00000000beef"
    pool.mkdir(parents=True)
    (pool / "a.jsonlog").write_text("\n".join(out) + "\n")
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        log = scr.query_one(EventLog)
        await cursor_to(pilot, 9)
        await pilot.pause(0.1)
        text = "\n".join(screen_text(log))
        assert "[bold red]boom[/]" in text
        assert "[link=https://example.com]click me[/link]" in text
        assert "[@click=app.quit]quit now[/]" in text
        assert "\\x1b[31mred" in text and "\x1b" not in text
        assert "[red]AgentId<evi…" in text  # cut to the agent column, and says so
        for y in range(1, log.size.height):  # clicking hostile rows triggers nothing
            await pilot.click(EventLog, offset=(60, y))
        assert app.is_running
        # The detail view shows the 66 KB value literally, cut, without freezing.
        row = next(r for r in scr.model.view.rows.tolist()
                   if scr.model.events().message[r].startswith("xxxx"))
        log.go_to_row(row)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        body = str(app.screen.query_one("#detail-body").render())
        assert "xxxxxxxx" in body
        await pilot.press("escape")
        assert app.is_running


async def test_live_pool_updates_without_a_keypress(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = sample("http")
    pool = tmp_path / "logs" / src.name
    pool.mkdir(parents=True)
    files = sorted(src.glob("*.jsonlog"))
    halves = {}
    for f in files:
        data = f.read_bytes().splitlines(keepends=True)
        cut = len(data) // 2
        (pool / f.name).write_bytes(b"".join(data[:cut]))
        halves[f.name] = data[cut:]
    total = sum(len(f.read_bytes().splitlines()) for f in files)
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        first = len(scr.model.view.rows)
        assert first < total
        for name, rest in halves.items():
            with (pool / name).open("ab") as fh:
                for ln in rest[:-1]:
                    fh.write(ln)
                fh.write(rest[-1][:20])  # a half-written last record
        await until(pilot, lambda: len(scr.model.view.rows) == total - len(halves))
        for name, rest in halves.items():
            with (pool / name).open("ab") as fh:
                fh.write(rest[-1][20:])
        await until(pilot, lambda: len(scr.model.view.rows) == total)
        log = scr.query_one(EventLog)
        assert log.follow and log.cursor == total - 1
        assert "workflow end" in "\n".join(screen_text(log))
        # A new file appearing later is picked up too.
        shutil.copy(files[0], pool / "zz-late.jsonlog")
        await until(pilot, lambda: len(scr.model.view.rows) == total + len(
            files[0].read_bytes().splitlines()))


async def test_demo_opens_live_and_fills_in(tmp_path: Path) -> None:
    from steering.demo import DemoOptions

    opts = DemoOptions(iterations=12, sleep=0.05, academy_home=tmp_path)
    app = AcademyApp(demo=opts)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        scr = app.screen
        seen = []
        for _ in range(200):  # the view grows while the workflow runs, no keypress
            seen.append(len(scr.model.view.rows))
            if app.demo_proc is not None and app.demo_proc.poll() is not None and \
                    seen[-1] == seen[-2 if len(seen) > 1 else -1]:
                break
            await pilot.pause(0.05)
        assert len(set(seen)) > 3
        assert app.demo_proc is not None and app.demo_proc.wait(timeout=30) == 0
        await until(pilot, lambda: scr.model.analysis is not None and
                    len(scr.model.analysis.actions) >= 13)
        assert scr.path.parent == tmp_path / "logs"
        assert "workflow end" in "\n".join(scr.model.events().message)


async def test_expected_time_key_updates_the_breakdown(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("thread")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await until(pilot, lambda: scr.model.analysis is not None)
        await pilot.press("w")
        await pilot.pause(0.3)
        assert "Press x to say how long you expected" in \
            str(scr.query_one("#where-answer").render())
        await pilot.press("x")
        for ch in "3.2s":
            await pilot.press(ch)
        await pilot.press("enter")
        await until(pilot, lambda: scr.model.analysis is not None and
                    scr.model.analysis.breakdown.expected_s == 3.2)
        await pilot.pause(0.3)
        shown = str(scr.query_one("#where-answer").render())
        assert "against 3.20 s expected" in shown and "Press x" not in shown


async def test_a_costly_analysis_is_not_rerun_back_to_back_but_a_question_is_not_held(
        sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("thread")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await until(pilot, lambda: scr.model.analysis is not None and not scr._analysing)
        first = scr.model.analysis
        assert first is not None
        first.computed_s = 60.0  # as on a run of many millions of records
        scr._analysis_due = True  # as when more events arrive
        await pilot.pause(2.5)  # two ticks of the analysis timer
        assert scr.model.analysis is first and scr._analysis_due
        await pilot.press("x")
        for ch in "2s":
            await pilot.press(ch)
        await pilot.press("enter")
        await until(pilot, lambda: scr.model.analysis is not first, timeout=5)
        assert scr.model.analysis is not None
        assert scr.model.analysis.breakdown.expected_s == 2.0


async def test_ask_tab_answers_and_its_citation_filters_the_events(sample) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Input, OptionList, TabbedContent

    from tui.widgets.ask import AskPane

    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("a")
        await pilot.pause()
        assert scr.query_one(TabbedContent).active == "ask"
        inp = scr.query_one("#ask-input", Input)
        assert inp.has_focus  # `a` opens the tab ready to type
        inp.value = "What failed?"
        await pilot.press("enter")
        pane = scr.query_one(AskPane)
        await until(pilot, lambda: bool(pane.citations) and not pane.busy)
        assert pane.conversation.turns[-1].backend == "builtin"  # no endpoint configured
        options = scr.query_one("#ask-citations", OptionList)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await until(pilot, lambda: scr.query_one(TabbedContent).active == "events")
        cited = pane.citations[0]
        assert scr.model.filter_text.startswith("academy.action_tag=1b0601a6")
        assert cited.ref == "act:1b0601a6"
        rows = scr.model.run.select(scr.model.filter_text)
        assert len(scr.model.view.rows) == len(rows) > 0


async def test_an_empty_catalog_says_where_it_looked_and_how_to_make_a_run(
        tmp_path: Path) -> None:
    """First contact (issue 17): no runs yet is a page that explains, not an empty table."""
    from pilotkit import text_of, until

    from tui.screens.runs import RunsScreen

    app = AcademyApp(home=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen)
                    and app.screen.has_class("-empty"))
        shown = text_of(app.screen.query_one("#runs-empty"))
        assert f"0 runs under {tmp_path / 'logs'} (--home)." in shown
        assert "academy-tui demo" in shown and "ACADEMY_HOME" in shown
        assert not app.screen.query_one("#runs-table").display


async def test_esc_from_a_run_opened_directly_shows_the_catalog_of_its_home(
        samples_home: Path, sample) -> None:  # type: ignore[no-untyped-def]
    """The screens ask the app to move (tui.messages.OpenRun, ShowCatalog) instead of
    importing each other; esc on a run opened by name shows the catalog of the same
    --home, and a run opened from it goes back there."""
    app = AcademyApp(str(sample("thread")), home=samples_home)
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        assert scr.path.name == sample("thread").name
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and
                    app.screen.query_one("#runs-table").row_count == 8)
        await pilot.press("enter")
        again = await open_run(pilot, app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert again.from_catalog


async def test_the_record_read_stays_under_the_cursor_as_earlier_records_arrive(
        tmp_path: Path) -> None:
    """Not following, a person reads a record; records that belong before it arrive (a
    first load reads the end of the run first and the rest in behind it; a process's
    file found late): the same record stays under the cursor, on the same line."""
    from tests.features.test_reader import rec

    pool = tmp_path / "logs" / "0d0d0d0d-0000-4000-8000-000000000000"
    pool.mkdir(parents=True)
    late = [json.dumps(rec(1000 + i, process=7)).encode() for i in range(300)]
    (pool / "a.jsonlog").write_bytes(b"\n".join(late) + b"\n")
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        log = scr.query_one(EventLog)
        await cursor_to(pilot, 40)
        assert not log.follow
        row, line = int(scr.model.view.rows[log.cursor]), log.cursor - log.scroll_offset.y
        early = [json.dumps(rec(i, process=8)).encode() for i in range(500)]
        (pool / "b.jsonlog").write_bytes(b"\n".join(early) + b"\n")  # all before it
        await until(pilot, lambda: len(scr.model.view.rows) == 800)
        await pilot.pause(0.1)
        assert log.cursor == 540 and int(scr.model.view.rows[log.cursor]) == row
        assert log.cursor - log.scroll_offset.y == line
        assert screen_text(log)[line + 1].split()[-1] == "1040"  # "message 1040", drawn


async def test_a_saved_reading_not_used_is_said_with_why(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run whose saved reading could not be used (a file written over in place since)
    opens read from the files, and says so and why: not as a warning that the pool
    changed while shown."""
    from features.run import Run

    pool = tmp_path / sample("pairs").name
    shutil.copytree(sample("pairs"), pool)
    Run(pool, cache=True).load()  # saved
    f = max(pool.glob("*.jsonlog"), key=lambda p: p.stat().st_size)
    data = f.read_bytes()
    k = data.index(b'"message": "') + len('"message": "')
    f.write_bytes(data[:k] + b"X" + data[k + 1:])
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await until(pilot, lambda: any("saved reading" in n.message
                                       for n in app._notifications))
        [note] = [n for n in app._notifications if "saved reading" in n.message]
        assert note.title == "read from the files" and note.severity == "information"
        assert note.message == (f"its saved reading was not used ({f.name} was rewritten "
                                "(its size the same, its time not)): read from the files")
        ev = scr.model.events()
        fresh = Run(pool, cache=False)
        fresh.load()
        assert ev.n == len(fresh.store)
