"""A run's side of its saved reading (:mod:`features.cache`): when to open from it, how
its store and reader positions become the run's own, and when saving is worth it.

:class:`features.run.Run` asks these around its first load; the saving and the checks
of the saved files are the cache's. The cache module is imported on use, as the run did.
"""

from __future__ import annotations

import os
from typing import Any

from features.reader import PoolReader
from features.store import EventStore


def saved(path: str | os.PathLike[str], flag: bool | None, fresh: bool
          ) -> tuple[Any, str]:
    """The saved reading of the pool at ``path`` (a :class:`features.cache.Restored`), or
    None, with the run's cache status so far. Only a ``fresh`` run (nothing read yet) can
    take one; ``flag`` is the run's ``cache`` argument."""
    from features import cache

    if not cache.enabled(flag) or not fresh:
        return None, "not used"
    try:
        return cache.restore(path), "not used"
    except cache.CacheError as e:
        return None, "none saved yet" if e.args == ("no cache",) else f"not used: {e}"


def saved_bytes(path: str | os.PathLike[str], flag: bool | None) -> int | None:
    """How big the saved reading of the pool at ``path`` is (unchecked: a hint), None when
    there is none or the run's ``cache`` flag (``flag``) leaves it unused."""
    from features import cache

    return cache.saved_bytes(path) if cache.enabled(flag) else None


def adopt(got: Any, store: EventStore, reader: PoolReader) -> None:
    """Make the saved store and reader positions the run's own (under the store's lock):
    its store object stays (callers hold it), with its lock and listeners."""
    keep = store.lock, store.listeners
    store.__dict__.update(got.store.__dict__)
    store.lock, store.listeners = keep
    for tail in got.reader.tails.values():
        # Re-read from where parsing stopped: a held partial line, and whatever
        # was written since, come from the file as it is now.
        tail.pending, tail.size, tail.mtime_ns = b"", -1, -1
    reader.tails = got.reader.tails
    reader.other_files = got.reader.other_files
    got.actions.store = got.processes.store = store


def worth_saving(flag: bool | None, store: EventStore, restored: int) -> bool:
    """A big pool read for the first time, or one that grew by a twentieth since it was
    saved. Never one with another source's files in it (they are joined after the save,
    from the sources themselves)."""
    from features import cache

    n = len(store)
    if not cache.enabled(flag) or any(f.source is not None for f in store.files):
        return False
    if flag is not True and n < cache.MIN_RECORDS:
        return False
    return not (restored and n - restored < max(10_000, restored // 20))


def saved_status(before: str, restored: int, n: int) -> str:
    """The run's cache status once ``n`` records are saved: what the restore said too."""
    why = f"{before}; " if before.startswith("not used:") else ""
    return (f"restored {restored:,} records, saved {n:,}" if restored
            else f"{why}saved {n:,} records")
