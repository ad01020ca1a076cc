"""Helpers for driving the app under Textual's pilot, shared by the UI tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.pilot import Pilot

if TYPE_CHECKING:
    from tui.app import AcademyApp
    from tui.screens.run import RunScreen


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 60.0,
                step: float = 0.05) -> None:
    """Pause until ``cond()`` holds; fail after ``timeout`` seconds of pauses (generous:
    CI shares its cores, and a pause there can take many times its length)."""
    waited = 0.0
    while not cond():
        await pilot.pause(step)
        waited += step
        if waited > timeout:
            raise AssertionError("condition not reached in time")


def text_of(widget: Any) -> str:
    """What a widget shows, as plain text."""
    return str(widget.render())


def burst(pilot: Pilot[Any], keys: str | list[str]) -> None:
    """Send ``keys`` as a terminal delivers keys typed at full speed (or pasted): all of
    them at once, without waiting between them as ``pilot.press`` does. A key is one
    character of a string, or a key name in a list (``["ctrl+f", *"text", "enter"]``)."""
    from textual import events
    from textual.keys import _character_to_key

    app = pilot.app
    driver = app._driver
    assert driver is not None
    for k in keys:
        name = _character_to_key(k) if len(k) == 1 and not k.isalnum() else k
        event = events.Key(name, k if len(k) == 1 else None)
        event.set_sender(app)
        driver.send_message(event)


async def detected(pilot: Pilot[Any], app: AcademyApp) -> RunScreen:
    """The run screen once loaded, analysed and judged."""
    from tui.screens.run import RunScreen

    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    scr = app.screen
    assert isinstance(scr, RunScreen)
    await until(pilot, lambda: scr.model.detection is not None)
    return scr
