"""Whether a run is still being written: its files' modification times.

A pool file written within :data:`features.pools.LIVE_WINDOW_S` is live. A live run's
unterminated last lines are held for their writer, its agents are not yet crashed, and
it is polled; the questions are asked on every poll, so they use what the reader saw
when it last looked at each file before they stat one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from features.pools import LIVE_WINDOW_S
from features.reader import FileTail
from features.store import FileInfo


def last_write(files: Sequence[FileInfo]) -> float:
    """The latest modification time of any pool file (other sources' files aside)."""
    times = []
    for f in files:
        if f.source is not None:
            continue
        try:
            times.append(os.stat(f.path).st_mtime)
        except OSError:
            continue
    return max(times, default=0.0)


def live_files(files: Sequence[FileInfo], tails: Mapping[str, FileTail],
               now: float | None = None) -> list[bool]:
    """Per file: written within the live window, as of the reader's last look at it
    (every read looks; a poll of a live run asked three times for all 8,226 files of
    a 10M-record pool, each a stat: 60 ms a poll)."""
    now = time.time() if now is None else now
    seen = {t.info.index: t.mtime_ns for t in tails.values()}
    out = []
    for f in files:
        if f.source is not None or f.status == "deleted":  # another source's events
            out.append(False)  # (written by this process), or a file gone
            continue
        ns = seen.get(f.index, -1)
        if ns < 0:  # not looked at yet
            try:
                ns = os.stat(f.path).st_mtime_ns
            except OSError:
                out.append(False)
                continue
        out.append(now - ns / 1e9 < LIVE_WINDOW_S)
    return out


def is_live(files: Sequence[FileInfo], tails: Mapping[str, FileTail]) -> bool:
    """True while some pool file was written within the live window (as
    :func:`live_files`, stopping at the first: asked on every poll of a live run)."""
    since = time.time_ns() - int(LIVE_WINDOW_S * 1e9)
    if any(t.mtime_ns > since and t.info.source is None and t.info.status != "deleted"
           for t in tails.values()):
        return True
    return any(live_files(files, tails))


def files_as_read(files: Sequence[FileInfo], tails: Mapping[str, FileTail]) -> set[int]:
    """The files (by index) whose every stored record was read from the file that is at
    its path now, unchanged since: same device and inode, the size and modification time
    the reader last saw, and all the file's records from that content (none from a
    content it replaced). Their lines are still the JSON objects the reader parsed, so a
    writer of raw lines (``features.jsonl``) need not parse them again to know it."""
    out: set[int] = set()
    for tail in tails.values():
        info = tail.info
        if info.source is not None or tail.ident is None or tail.records != info.records:
            continue
        try:
            st = os.stat(info.path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == tail.ident and st.st_size == tail.size and \
                st.st_mtime_ns == tail.mtime_ns and tail.size >= tail.offset:
            out.add(info.index)
    return out
