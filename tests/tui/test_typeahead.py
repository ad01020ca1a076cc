"""Type-ahead: keys typed at full speed right after a key that opens a box go into the box,
never run as commands. Each test sends the whole string in one burst (as a terminal
delivers fast typing or a paste), not a key at a time."""

from __future__ import annotations

import pilotkit
from pilotkit import burst, until
from textual.command import CommandInput, CommandPalette
from textual.widgets import Input

from tests.tui.test_app import SIZE, open_run
from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.widgets.prompt import PromptScreen


async def test_slash_then_a_filter_in_one_burst_fills_the_filter_box(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        box = scr.query_one("#filter-input", Input)
        burst(pilot, "/levelno>=20")
        await until(pilot, lambda: box.value == "levelno>=20")
        await pilot.pause(0.1)
        assert box.value == "levelno>=20" and app.focused is box
        # No letter ran as a command: still the events tab (l, e would switch), no dialog.
        assert scr.query_one("#tabs").active == "events" and app.screen is scr
        burst(pilot, ["enter"])
        await until(pilot, lambda: scr.model.filter_text == "levelno>=20")


async def test_find_then_text_in_one_burst_never_runs_the_letters(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        box = scr.query_one("#filter-input", Input)
        burst(pilot, ["ctrl+f", *"Closed manager", "enter"])
        await until(pilot, lambda: scr.model.find_text == "Closed manager")
        # The d of "Closed" opened the compare dialog before: it is the find text now.
        assert app.screen is scr and box.value == "Closed manager"
        assert scr.filter_mode == "find" and len(scr.model.view.matches) > 0


async def test_the_palette_takes_the_keys_typed_behind_it(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        for opener in ("ctrl+p", ":"):
            burst(pilot, [opener, *"View: Time"])
            await until(pilot, lambda: isinstance(app.screen, CommandPalette))
            palette = app.screen
            await until(pilot, lambda p=palette: p.query_one(CommandInput).value == "View: Time")
            assert scr.query_one("#tabs").active == "events"  # the V, i, e, w did nothing
            burst(pilot, ["escape"])
            await until(pilot, lambda: app.screen is scr)


async def test_a_colon_or_slash_typed_in_a_box_is_text(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        box = scr.query_one("#filter-input", Input)
        burst(pilot, '/message~"a/b: x"')
        await until(pilot, lambda: box.value == 'message~"a/b: x"')
        await pilot.pause(0.1)
        assert app.screen is scr and box.value == 'message~"a/b: x"'


async def test_ask_and_expected_time_take_the_keys_typed_behind_them(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        ask = scr.query_one("#ask-input", Input)
        burst(pilot, "awhere did the time go")  # w, t, g: tab switches before
        await until(pilot, lambda: ask.value == "where did the time go")
        assert scr.query_one("#tabs").active == "ask"
        burst(pilot, ["escape", "e", "x", *"16s"])  # esc leaves the box, e shows events
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        prompt = app.screen
        await until(pilot, lambda: prompt.query_one(Input).value == "16s")
        burst(pilot, ["enter"])
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and
                    scr.model.expected_s == 16.0)


async def test_the_catalogs_filter_takes_a_burst(samples_home) -> None:  # type: ignore[no-untyped-def]
    """'/failed' typed at full speed in the run catalog: every letter in its filter box."""
    from tui.screens.runs import RunsScreen

    app = AcademyApp(None, home=samples_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen)
                    and app.screen.query_one("#runs-table").row_count == 8)
        burst(pilot, "/failed")
        box = app.screen.query_one("#runs-filter", Input)
        await until(pilot, lambda: box.value == "failed")
        assert app.focused is box
        await until(pilot, lambda: app.screen.query_one("#runs-table").row_count == 1)


def test_burst_key_names_are_textuals() -> None:
    """The names burst gives characters are the ones Textual's own reader gives."""
    from textual.keys import _character_to_key  # the private rule, to hold ours to it

    for ch in " /?!.,:;'\"-_=+*&^%$#@~`|\\<>()[]{}\t\x1b\x7fa1Zé":
        assert pilotkit._key_name(ch) == _character_to_key(ch), repr(ch)
