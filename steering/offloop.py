"""Blocking model calls that never hold up the steering agent's loop or its stop.

The openai 2.x client blocks in httpx until the server answers or its time-out passes.
Measured with a loopback server that reads the request and never replies (model time-out
30 s, ``tests/steering/test_steer_hung_model.py``):

- ``asyncio.wait_for(asyncio.to_thread(call), limit)``: the wait ends at the limit, but
  the thread runs on in the loop's default executor, which ``asyncio.run`` joins when the
  agent's loop closes (and ``concurrent.futures`` again at interpreter exit): stopping the
  agent took 30.0 s, the model's whole time-out (34 s of 40 s in the field).
- ``httpx.Client.close()`` from the loop while the call is in flight returns at once
  (0.2 ms) but does not wake the blocked read: the read failed with ``EBADF`` only when
  its 30 s poll ran out. httpcore closes the pool's sockets; a thread blocked in
  ``poll()`` on one is not woken by ``close()`` on Linux.
- A daemon thread that nobody joins (:meth:`OffLoop.run`): the loop stops waiting at the
  limit or when the agent stops, and the thread ends on its own within the client's
  time-out (the same limit), never delaying the loop's close or the process's exit.
  Stopping took 0.004 s (the test prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

__all__ = ["OffLoop", "Outcome"]

T = TypeVar("T")
Outcome = Literal["done", "timeout", "stopped"]


def _settle(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():  # the loop gave up on it already
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class OffLoop:
    """Runs blocking calls in daemon threads, bounded, and given up when :meth:`stop` is
    called. One per agent; used from its event loop only."""

    def __init__(self, name: str = "steering-model") -> None:
        self.name = name
        self.in_flight = 0
        """Calls the loop is waiting for."""
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    @property
    def stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        # Made on first use, inside the agent's running loop.
        if self._stop is None or self._idle is None:
            self._stop, self._idle = asyncio.Event(), asyncio.Event()
            self._idle.set()
        return self._stop, self._idle

    async def run(self, fn: Callable[[], T], limit_s: float) -> tuple[Outcome, T | None]:
        """``("done", fn())`` when ``fn`` returns within ``limit_s``; ``("timeout", None)``
        or ``("stopped", None)`` otherwise, at once, leaving the thread to finish alone.
        What ``fn`` raises in time is raised here."""
        stop, idle = self._events()
        if stop.is_set():
            return "stopped", None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def target() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = fn()
            except BaseException as exc:  # handed to the loop, or dropped if it gave up
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, fut, value, error)

        self.in_flight += 1
        idle.clear()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            threading.Thread(target=target, name=self.name, daemon=True).start()
            waiters: set[asyncio.Future[Any]] = {fut, stopped}
            await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            self.in_flight -= 1
            if not self.in_flight:
                idle.set()
        if fut.done():
            return "done", fut.result()
        fut.cancel()
        return ("stopped" if stop.is_set() else "timeout"), None

    async def stop(self, grace_s: float = 0.5) -> None:
        """Give up every call in flight, and wait up to ``grace_s`` for the loop to take
        the fallbacks (so a decision in flight is still recorded)."""
        stop, idle = self._events()
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(idle.wait(), grace_s)
        # One more turn, so the waiter's continuation (recording it) runs first.
        await asyncio.sleep(0)
