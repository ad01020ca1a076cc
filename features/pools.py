"""Where pools live and what a RUN argument means: a pool directory path, a pool uuid, a
unique uuid prefix, or ``latest``. Pools live under ``$ACADEMY_HOME/logs/`` (default
``~/.local/share/academy/logs``), one directory per pool uuid. Apart from the catalog
(:mod:`features.catalog`), so that opening a run (:mod:`features.run`) needs no catalog.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import orjson

from features.normalize import to_float
from features.regular import open_regular_file


class RunError(Exception):
    """A RUN argument that does not name exactly one readable pool."""


def academy_home() -> Path:
    """``$ACADEMY_HOME`` or Academy's default (``~/.local/share/academy``)."""
    env = os.environ.get("ACADEMY_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "academy"


def logs_dir(home: Path | None = None) -> Path:
    return (home or academy_home()) / "logs"


def cache_dir() -> Path:
    """``$ACADEMY_TUI_CACHE_DIR``, else ``$XDG_CACHE_HOME/academy-tui``, else
    ``~/.cache/academy-tui``."""
    env = os.environ.get("ACADEMY_TUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "academy-tui"


def list_pools(home: Path | None = None) -> list[Path]:
    """Every pool directory under the logs directory (unsorted)."""
    root = logs_dir(home)
    try:
        return [Path(e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=True)]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RunError(f"cannot list {root}: {e.strerror or e}") from None


LATEST_TIE_S = 5.0
"""Runs last written within this many seconds of the newest are told apart by when they
started (pools copied from a cluster share their copy time)."""


def _newest(pools: list[Path]) -> Path:
    """``latest``: the run written to most recently; among runs written within
    :data:`LATEST_TIE_S` of it, the one that started last (the catalog's order)."""
    last = {p: fingerprint(p)[2] for p in pools}
    top = max(last.values())
    tied = [p for p in pools if last[p] >= top - LATEST_TIE_S]
    if len(tied) == 1:
        return tied[0]
    return max(tied, key=lambda p: (_first_time(p), last[p], p.name))


def _first_time(pool: Path) -> float:
    """When a run started, from the first record of each of its files (-inf when none
    can be read): a few small reads, not a load."""
    best = math.inf
    try:
        names = [e.path for e in os.scandir(pool) if e.name.endswith(".jsonlog")]
    except OSError:
        return -math.inf
    for path in names:
        try:
            with open_regular_file(path) as f:  # a FIFO named *.jsonlog would block
                head = f.read(1 << 16)
        except OSError:
            continue
        t = _head_start(head)
        if t < best:  # NaN never is
            best = t
    return best if math.isfinite(best) else -math.inf


def _head_start(head: bytes) -> float:
    """A file's start from its first complete lines (NaN when none has a time): the
    earliest of their times, not counting one out of line with the others (the rule of
    :func:`features.time_outliers._outliers` at a file's head, on five records)."""
    from features.record_keys import TIME_MAX, TIME_MIN
    from features.store import FAR_S, OUTLIER_S

    times = []
    for line in head.split(b"\n")[:5]:
        try:
            t = to_float(orjson.loads(line).get("created"))
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if TIME_MIN <= t < TIME_MAX:
            times.append(t)
    if not times:
        return math.nan
    mid = sorted(times)[len(times) // 2]
    if len(times) >= 3:
        times = [t for t in times if -FAR_S <= t - mid <= OUTLIER_S]
    return min(times)


def resolve(arg: str | os.PathLike[str], home: Path | None = None) -> Path:
    """The pool directory a RUN argument names, or :class:`RunError` saying why not."""
    text = os.fspath(arg)
    if not text:
        raise RunError("empty RUN argument")
    p = Path(text).expanduser()
    looks_like_path = os.sep in text or text.startswith(".") or text.startswith("~")
    if p.exists():
        if not p.is_dir():
            raise RunError(f"{text} is not a directory (a RUN is a pool directory, a pool "
                           "uuid, a uuid prefix or 'latest')")
        return p.resolve()
    if looks_like_path:
        raise RunError(f"{text}: no such directory")
    root = logs_dir(home)
    pools = list_pools(home)
    if text == "latest":
        if not pools:
            raise RunError(f"no runs under {root}")
        return _newest(pools)
    key = text.lower()
    hits = [q for q in pools if q.name.lower() == key]
    if not hits:
        hits = [q for q in pools if q.name.lower().startswith(key)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        there = "1 run" if len(pools) == 1 else f"{len(pools)} runs"
        raise RunError(f"no run matches {text!r} under {root} ({there} there; "
                       "'academy-tui runs' lists them)")
    names = ", ".join(sorted(h.name for h in hits)[:8])
    more = f" and {len(hits) - 8} more" if len(hits) > 8 else ""
    raise RunError(f"{text!r} is ambiguous: {len(hits)} runs match ({names}{more})")


LIVE_WINDOW_S = 15.0
"""A pool written to within this many seconds is considered live."""


def fingerprint(pool: Path) -> tuple[list[tuple[str, int, int]], int, float]:
    """(name, size, mtime_ns) of each pool file, total size, last write time."""
    entries = []
    total = 0
    last = 0.0
    try:
        for e in os.scandir(pool):
            if not e.name.endswith(".jsonlog"):
                continue
            try:
                st = e.stat()
            except OSError:
                continue
            entries.append((e.name, st.st_size, st.st_mtime_ns))
            total += st.st_size
            last = max(last, st.st_mtime)
    except OSError:
        pass
    entries.sort()
    return entries, total, last
