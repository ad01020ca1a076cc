"""Helpers for driving the app under Textual's pilot, shared by the UI tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot


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
