"""Help that teaches, and keys that keep their word: ``?`` lists the keys by view (the one
you are in first), each once, without the text box's internals, with the filter language
in five lines; every key the footer or ``?`` shows does something in that view."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pilotkit import text_of, until
from textual.widgets import DataTable, Input, OptionList, TabbedContent

from features.query import parse
from tests.tui.test_app import SIZE, open_run
from tests.tui.test_steering_pane import steered  # noqa: F401 (a fixture)
from tui.app import AcademyApp
from tui.help import DETAIL, FILTER_LANGUAGE, HelpScreen, sections
from tui.screens.run import FilterBar, RunScreen
from tui.widgets.ask import AskPane
from tui.widgets.detail import DetailScreen
from tui.widgets.event_log import EventLog
from tui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from steering.demo import DemoResult


def help_text(app: AcademyApp) -> str:
    return text_of(app.screen.query_one("Static"))


async def test_help_groups_keys_by_view_this_one_first(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("l", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_text(app)
        assert text.startswith("Timeline (this view)")
        heads = [s.title for s in app.screen.sections]
        assert heads[1] == "Everywhere in a run" and "Events" in heads
        for sec in app.screen.sections:  # each key once in its section
            keys = [k for e in sec.entries for k in e.keys]
            assert len(keys) == len(set(keys)), (sec.title, keys)
        # No text-box internals; the keys a person looks for, where they act.
        for internal in ("Cut", "Copy", "Paste", "Delete character", "a word"):
            assert internal not in text
        for needle in ("expected run time", "clear the filter", "prev action in lane",
                       "palette", "hide/show DEBUG", "approve"):
            assert needle in text, needle
        # The filter language in five lines, each example a filter that parses.
        assert len(FILTER_LANGUAGE) == 5
        for example, _ in FILTER_LANGUAGE:
            for part in example.split("   "):
                parse(part.strip())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is scr)
        await pilot.press("e", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert help_text(app).startswith("Events (this view)")


# -- every key shown does something --------------------------------------------------


def state(app: AcademyApp, scr: RunScreen) -> tuple[Any, ...]:
    """What a key may change, in one value."""
    m = scr.model
    log = scr.query_one(EventLog)
    tl = scr.query_one(Timeline)
    pane = scr.query_one(AskPane)
    return (len(app.screen_stack), type(app.screen).__name__,
            scr.query_one(TabbedContent).active, id(app.focused), m.filter_text,
            m.find_text, tuple(sorted(m.hidden_levels)), m.expected_s,
            scr.query_one(FilterBar).has_class("-open"), log.cursor, log.follow,
            log.absolute_time, log.scroll_offset, tl.spc, tl.fit, tl.cursor_t, tl.selected,
            tl.grouped, tl.scroll_offset,
            tuple(t.cursor_coordinate for t in scr.query(DataTable)),
            scr.query_one("#ask-citations", OptionList).highlighted,
            scr.query_one("#ask-input", Input).value, pane.busy,
            len(pane.conversation.turns), app._exit)


def footer_keys(scr: RunScreen) -> list[str]:
    """The keys the footer shows now (it reads the screen's active bindings)."""
    return [key for key, (_, binding, _, _) in scr.active_bindings.items() if binding.show]


def help_keys(scr: RunScreen, view: str) -> list[str]:
    """The keys ``?`` lists for ``view`` (and, for the events, the keys of the whole run)."""
    secs = sections(scr)
    wanted = {view, ""} if view == "events" else {view}
    return [k for s in secs if s.view in wanted for e in s.entries for k in e.keys]


async def settled(pilot: Any, scr: RunScreen, view: str) -> None:
    """Back on the run, on ``view``, its widget focused (screens above closed)."""
    app = pilot.app
    for _ in range(5):
        if app.screen is scr:
            break
        await pilot.press("escape")
        await pilot.pause(0.05)
    if scr.query_one(FilterBar).has_class("-open"):
        await pilot.press("escape")
    scr.action_show_tab(view)
    if view != "ask":
        scr.set_focus(scr._view_widget(view))
    await pilot.pause(0.1)


async def prepare(pilot: Any, scr: RunScreen, view: str, key: str) -> None:
    """Put the view where ``key`` has something to do."""
    tl = scr.query_one(Timeline)
    if key in ("escape", "c"):  # esc and c clear a filter: one is set
        scr.set_filter_text("levelno>=10")
        await until(pilot, lambda: scr.model.filter_text == "levelno>=10")
    elif key == "e":  # shows the events: from another view
        scr.action_show_tab("timeline")
    elif view == "events" and key in ("n", "N"):
        scr.apply_filter("find", "fib.iteration>5")
        await until(pilot, lambda: len(scr.model.view.matches) > 0)
        scr.query_one(EventLog).action_first()
    elif view == "events" and key in ("home", "up", "k", "pageup", "f", "end"):
        scr.query_one(EventLog).cursor = 100
        scr.query_one(EventLog).follow = False
    elif view == "timeline":
        tl.action_fit()
        tl.action_zoom(4)  # pans, zooms and fit have room
        tl._put_cursor(tl.data.duration / 2 if tl.data else 0.0, center=True)
        if key in ("up", "enter"):
            tl.action_lane(1)
    elif view == "ask" and key == "enter":
        scr.query_one("#ask-input", Input).value = "how many agents?"
    await pilot.pause(0.05)


async def check_keys(pilot: Any, scr: RunScreen, view: str, keys: list[str]) -> list[str]:
    """Press each key in ``view``; the ones that changed nothing, said nothing and opened
    nothing."""
    app = pilot.app
    dead = []
    for key in dict.fromkeys(keys):
        if key == "q":
            continue  # quits: checked last
        await settled(pilot, scr, view)
        await prepare(pilot, scr, view, key)
        before, notes = state(app, scr), len(app._notifications)
        await pilot.press(key)
        try:
            await until(pilot, lambda b=before, n=notes: state(app, scr) != b or
                        len(app._notifications) > n, timeout=5)
        except AssertionError:
            dead.append(key)
    return dead


@pytest.mark.parametrize("view", ["events", "timeline", "where", "ask"])
async def test_every_key_shown_does_something(sample, view: str) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await settled(pilot, scr, view)
        keys = footer_keys(scr) + help_keys(scr, view)
        assert keys
        assert await check_keys(pilot, scr, view, keys) == []
        if view == "ask":  # the citations, once an answer has some: their own footer
            ol = scr.query_one("#ask-citations", OptionList)
            await until(pilot, lambda: ol.option_count > 0, timeout=120)
            await settled(pilot, scr, view)
            await pilot.press("escape")  # leaves the box for the citations
            assert app.focused is ol and "enter" in footer_keys(scr)
            await pilot.press("enter")
            await until(pilot, lambda: scr.query_one(TabbedContent).active == "events")
        if view == "events":
            await settled(pilot, scr, view)
            await pilot.press("q")
            await until(pilot, lambda: app._exit)


@pytest.mark.parametrize("view", ["anomalies", "steering"])
async def test_every_key_shown_does_something_in_a_steered_run(
        steered: DemoResult, tmp_path: Path, view: str) -> None:  # noqa: F811
    pool = shutil.copytree(steered.pool_dir, tmp_path / steered.pool_dir.name)
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await until(pilot, lambda: scr.model.detection is not None)
        await settled(pilot, scr, view)
        keys = footer_keys(scr) + help_keys(scr, view)
        assert "enter" in keys
        assert await check_keys(pilot, scr, view, keys) == []


async def test_every_key_of_the_detail_does_something(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        (detail,) = [s for s in sections(scr) if s.view == DETAIL]
        ev = scr.model.events()
        states = ev.strings("academy.action_state")
        row = next(r for r in scr.model.view.rows.tolist() if states[r] == "execute_start")
        for key in [k for e in detail.entries for k in e.keys]:
            scr.set_filter_text("")
            await until(pilot, lambda: scr.model.filter_text == "")
            assert scr.query_one(EventLog).go_to_row(row)
            scr.set_focus(scr.query_one(EventLog))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen))
            notes = len(app._notifications)
            await pilot.press(key)  # a related jump filters; esc and q close it
            # (or, where this event has no such key, says so)
            await until(pilot, lambda n=notes: app.screen is scr or
                        len(app._notifications) > n, timeout=5)
            if app.screen is not scr:
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is scr)
