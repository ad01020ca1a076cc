"""The app's thread workers, which do not hold up quitting.

Textual runs a thread worker in its event loop's default executor, and at exit
``asyncio.run`` waits for that executor's threads: ``q`` while an analysis or the
slowdown detector ran waited for it to finish (1-5 s on a 1M-record run; the detection of
a 10M-record one takes 40-50 s). Nobody reads those results after the app has gone.

:class:`WorkerThreads` is the app's default executor: a pool as big as Textual's default
one whose threads are daemons and whose ``shutdown`` waits only for the work that must
end cleanly, which says so with :func:`finishing`: reading the pool (a stopped load shuts
its parse processes down and a save in progress completes; ``features.loader.LoadStopped``
stops it at the next stored group) and a steering decision the person confirmed. After
the app has returned, :func:`leave` ends the process without waiting for the threads
still computing, once the terminal is restored and the output flushed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_FINISHING: set[threading.Event] = set()
_FINISHING_LOCK = threading.Lock()


@contextlib.contextmanager
def finishing() -> Iterator[None]:
    """Around work that the app's exit waits for (see the module's docstring)."""
    done = threading.Event()
    with _FINISHING_LOCK:
        _FINISHING.add(done)
    try:
        yield
    finally:
        with _FINISHING_LOCK:
            _FINISHING.discard(done)
        done.set()


def wait_finishing(timeout: float | None = None) -> bool:
    """Wait for the work under :func:`finishing` to end; False if some had not after
    ``timeout`` seconds."""
    with _FINISHING_LOCK:
        pending = list(_FINISHING)
    return all(e.wait(timeout) for e in pending)


_Task = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerThreads(ThreadPoolExecutor):
    """A thread pool of daemon threads (at most ``max_workers``, by default as many as
    :class:`~concurrent.futures.ThreadPoolExecutor` makes), started as tasks come. A
    subclass of it because asyncio takes no other default executor; none of its
    threads is joined at exit."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._daemons: list[threading.Thread] = []
        self._idle = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fut: Future[Any] = Future()
            self._tasks.put((fut, fn, args, kwargs))
            if self._idle:
                self._idle -= 1
            elif len(self._daemons) < self._max_workers:
                t = threading.Thread(target=self._work, daemon=True,
                                     name=f"academy-tui-worker-{len(self._daemons)}")
                self._daemons.append(t)
                t.start()
            return fut

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fut, fn, args, kwargs = task
            del task
            result = None
            if fut.set_running_or_notify_cancel():
                with self._lock:
                    self._busy += 1
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
                finally:
                    with self._lock:
                        self._busy -= 1
                del fut, fn, args, kwargs, result
            with self._lock:
                self._idle += 1

    @property
    def busy(self) -> int:
        """Tasks running now."""
        return self._busy

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new tasks; queued ones cancelled if asked; then (``wait``) wait for the
        work under :func:`finishing` only."""
        with self._lock:
            self._closed = True
            threads = list(self._daemons)
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        for _ in threads:
            self._tasks.put(None)
        if wait:
            wait_finishing()


_POOLS: list[WorkerThreads] = []


def install(loop: Any) -> WorkerThreads:
    """Make a :class:`WorkerThreads` the default executor of the running ``loop``."""
    pool = WorkerThreads()
    loop.set_default_executor(pool)
    _POOLS.append(pool)
    return pool


def leave(status: int) -> int:
    """After the app has returned: ``status``, or, when its threads still compute (an
    analysis, a judgement, a question to a model), the process ended now with
    ``status`` (the output flushed) instead of waiting for results no one will see."""
    if not any(p.busy for p in _POOLS):
        return status
    wait_finishing()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
