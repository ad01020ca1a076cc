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
    character of a string, or a key name in a list (``["ctrl+f", *"text", "enter"]``).
    Queued with the app's public ``post_message``, as a driver queues what it reads."""
    from textual import events

    app = pilot.app
    for k in keys:
        name = _key_name(k) if len(k) == 1 else k
        app.post_message(events.Key(name, k if len(k) == 1 else None))


def _key_name(ch: str) -> str:
    """The key name Textual gives a typed character (``/`` -> ``slash``), by its rule:
    the character's Unicode name, or its ASCII control name, then Textual's renames."""
    import unicodedata

    from textual.keys import ASCII_KEY_NAMES, KEY_NAME_REPLACEMENTS

    if ch.isalnum():
        return ch
    try:
        key = unicodedata.name(ch).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        key = ASCII_KEY_NAMES.get(ch, ch)
    return KEY_NAME_REPLACEMENTS.get(key, key)


async def detected(pilot: Pilot[Any], app: AcademyApp) -> RunScreen:
    """The run screen once loaded, analysed and judged."""
    from tui.screens.run import RunScreen

    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    scr = app.screen
    assert isinstance(scr, RunScreen)
    await until(pilot, lambda: scr.model.detection is not None)
    return scr
