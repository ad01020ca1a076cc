"""Type-ahead: keys typed right after a key that opens a box go into that box.

A terminal hands a burst (``/levelno>=20`` typed without a pause, or pasted) to the app as
keys read at once, and Textual forwards each key to the widget focused at that moment. A box
that a key opens is mounted or focused only after the keys behind that key were forwarded,
so they ran as commands (``ctrl+f`` then ``Closed manager``: the ``d`` opened the compare
dialog). The keys that open a box are priority bindings (handled as they arrive, before the
next key is forwarded); the box they open is :meth:`TypeAhead.expect`-ed, and the app holds
every key from then until that box has focus, then lets them through in the order typed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App
from textual.timer import Timer
from textual.widget import Widget

HOLD_S = 5.0
"""Longest keys are held for a box that does not take focus: then they are dropped (run
as commands they could do anything), with a notification."""
CHECK_S = 0.01
"""How often a hold looks whether its box has taken focus."""


class TypeAhead:
    """The app's held keys and the box they are for (one box at a time)."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self._target: Callable[[], Widget | None] | None = None
        self._held: list[tuple[str, str | None]] = []
        self._since = 0.0
        self._screen: Any = None
        """The screen the box is on: gone (closed before it took focus), the hold ends."""
        self._timer: Timer | None = None
        self._releasing = False

    @property
    def holding(self) -> bool:
        """A box was asked for and has not taken focus yet."""
        return self._target is not None

    def expect(self, target: Callable[[], Widget | None]) -> None:
        """Hold keys until ``target()`` (the box, or None while it is not mounted yet) is
        the focused widget."""
        self._target = target
        self._screen = self.app.screen
        self._since = time.monotonic()
        if self._timer is None:
            self._timer = self.app.set_interval(CHECK_S, self._check, name="type-ahead")

    def hold(self, event: events.Key) -> bool:
        """Whether the app must hold ``event`` (a key not forwarded yet) rather than
        forward it now."""
        if self._target is None or self._releasing:
            return False
        self._held.append((event.key, event.character))
        return True

    def _focused(self) -> bool:
        assert self._target is not None
        try:
            box = self._target()
        except Exception:  # a query before the box is mounted: not yet
            return False
        return box is not None and self.app.focused is box

    async def _check(self) -> None:
        if self._target is None:
            self._stop()
            return
        if self._focused():
            await self._release()
        elif self.app.screen is not self._screen or time.monotonic() - self._since > HOLD_S:
            dropped = len(self._held)
            self._target, self._held = None, []
            self._stop()
            if dropped:
                self.app.notify(f"{dropped} key(s) typed before the box opened were dropped",
                                severity="warning")

    async def _release(self) -> None:
        """Let the held keys through, in order, as if they arrived now (the box has focus:
        they go into it; a held ``enter`` or ``esc`` does what it does there)."""
        held, self._held, self._target = self._held, [], None
        self._stop()
        self._releasing = True
        try:
            for i, (key, character) in enumerate(held):
                if self._target is not None:  # a released key opened another box
                    self._held = held[i:]
                    self._since = time.monotonic()
                    return
                event = events.Key(key, character)
                event.set_sender(self.app)
                await self.app.on_event(event)
        finally:
            self._releasing = False

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None


def typing(app: App[Any]) -> bool:
    """Whether the focused widget takes text: a key there is a character, not a command
    (a priority binding that opens a box raises ``SkipAction`` then)."""
    from textual.widgets import Input

    focused = app.focused
    if isinstance(focused, Input):
        return True
    # A TextArea can have focus only once its module is imported (the first screen's
    # check_action asks this: importing it for the answer cost ~3 ms of it).
    area = sys.modules.get("textual.widgets._text_area")
    return area is not None and isinstance(focused, area.TextArea)


def expect(app: App[Any], target: Callable[[], Widget | None]) -> None:
    """Hold the keys typed from now until ``target()`` has focus (in an app with a
    :class:`TypeAhead` as ``type_ahead``; elsewhere nothing is held)."""
    ahead = getattr(app, "type_ahead", None)
    if isinstance(ahead, TypeAhead):
        ahead.expect(target)
