"""Finding runs: where pools live, what a RUN argument means, and the run catalog.

Pools live under ``$ACADEMY_HOME/logs/`` (default ``~/.local/share/academy/logs``), one
directory per pool uuid. A RUN argument is a pool directory path, a pool uuid, a unique
uuid prefix, or ``latest``. The catalog summarises every pool; summaries are cached
under the user cache directory, keyed by each pool's file names, sizes and mtimes, so a
warm listing only stats files. Nothing is ever written into the log directory.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from features.normalize import to_float

CACHE_VERSION = 5


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
            with open(path, "rb") as f:
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
    :func:`features.store._outliers` at a file's head, on five records)."""
    from features.parse import TIME_MAX, TIME_MIN
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


@dataclass
class RunSummary:
    """One row of the run catalog."""

    pool: str
    path: str
    start: float | None
    duration_s: float | None
    files: int
    records: int
    agents: int
    errors: int
    actions: int
    failed_actions: int
    bad_lines: int
    status: str
    """finished | failed | live | unknown"""
    rule: str
    """Why the status is what it is, in words."""
    size: int
    last_write: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def status_of(run: Any, last_write: float, now: float | None = None) -> tuple[str, str]:
    """Status and the rule used, from a loaded :class:`features.run.Run`."""
    now = time.time() if now is None else now
    age = now - last_write if last_write else float("inf")
    import numpy as np

    ev = run.events()
    procs = run.processes()
    side = steering_side(run) if ev.n else set()
    names = np.asarray(ev.file_names, dtype=object)
    ours = ~np.isin(names[ev.file], list(side)) if side else np.ones(ev.n, dtype=bool)
    acts, ags = run.actions(), run.agents()
    failed_actions = int(((acts["status"] == "exception")
                          & ~np.isin(acts["agent_file"], list(side))).sum()) if ev.n else 0
    errors = int(((ev.ints["levelno"] >= 40) & ours).sum()) if ev.n else 0
    crashed = int((ags["crashed"] & ~np.isin(ags["file"], list(side))).sum()) if ev.n else 0
    ends = [e for f, e in zip(procs["file"], procs["end"], strict=True) if f not in side] \
        if len(procs) else []
    all_closed = bool(ends) and all(e in ("clean", "empty", "source") for e in ends)
    if age < LIVE_WINDOW_S and not all_closed:
        return "live", f"a file was written {age:.0f} s ago (live window {LIVE_WINDOW_S:.0f} s)"
    if ev.n == 0:
        return "unknown", "no records"
    state, rule = _status(run, now, age, ends, all_closed, crashed, failed_actions, errors,
                          side)
    if side:
        noise = int(((ev.ints["levelno"] >= 40) & ~ours).sum())
        if noise:
            rule += (f"; the steering agent's own process logged {noise} ERROR "
                     f"record{'s' if noise != 1 else ''}, not counted as the workflow's")
    return state, rule


def steering_side(run: Any) -> set[str]:
    """Files of a steering agent attached from its own process: files holding verified
    steering records (signed with this user's session secret: a forged record counts
    for nothing) whose agents are all steering agents. What goes wrong there (its exchange
    closing when the workflow ends, its shutdown) is the observer's, not the run's."""
    import numpy as np

    from features.trail import read_trail

    ev = run.events()
    if "steering.kind" not in ev.store.key_shapes:
        return set()

    trail = read_trail(run)
    if not len(trail.verified):
        return set()
    files = {ev.file_names[int(f)] for f in np.unique(ev.file[trail.verified])}
    ags = run.agents()
    workflow = {str(f) for f, c in zip(ags["file"], ags["class"], strict=True)
                if c != "SteeringAgent"}
    return files - workflow


def _status(run: Any, now: float, age: float, ends: list[str], all_closed: bool,
            crashed: int, failed_actions: int, errors: int, side: set[str]
            ) -> tuple[str, str]:
    if crashed or failed_actions or errors:
        parts = _hangs(run, now, side)
        if crashed:
            parts.append(f"{crashed} agent(s) crashed")
        if failed_actions:
            parts.append(f"{failed_actions} action(s) raised")
        if errors:
            parts.append(f"{errors} ERROR record(s)")
        return "failed", ", ".join(parts)
    managers = len(run.msg_rows("Closed manager (%s)"))
    if all_closed:
        return "finished", f"every process closed cleanly ({managers} 'Closed manager' records)"
    abrupt = sum(1 for e in ends if e == "abrupt")
    if managers == 0:
        return "unknown", (f"no 'Closed manager' record and nothing written for "
                           f"{_age(age)}: stopped or killed?")
    return "failed", f"{abrupt} process(es) stopped without closing (file just ends)"


def _hangs(run: Any, now: float, side: set[str] | None = None) -> list[str]:
    """What hung, first in a failed run's rule: shutdowns that took many times the others'
    or ran into a TimeoutError, and calls their callers gave up on after waiting long
    (cheap: no detector fit)."""
    import numpy as np

    from features.hangs import shutdowns
    from features.report import fmt_s

    ags = run.agents()
    observers = {str(a) for a, f in zip(ags["agent_id"], ags["file"], strict=True)
                 if f in (side or ())}
    out = []
    for inc in shutdowns(run, now, False):
        if inc.agents and set(inc.agents) <= observers:
            continue  # the steering agent's own shutdown: not the run's
        d = inc.detail or {}
        who = inc.agents[0] if inc.agents else "the run"
        out.append(f"shutdown of {who} hung {fmt_s(float(d.get('waited_s', inc.excess_s)))}"
                   + (" until a TimeoutError" if d.get("timeout") else ""))
    acts = run.actions()
    if len(acts):
        gave_up = (acts["status"] == "cancelled") & (acts["total_s"] >= 10.0)
        if gave_up.any():
            i = int(np.flatnonzero(gave_up)[np.argmax(acts["total_s"][gave_up])])
            out.append(f"{int(gave_up.sum())} call(s) cancelled after waiting "
                       f"(up to {fmt_s(float(acts['total_s'][i]))} for "
                       f"{acts['action'][i]})")
    return out


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def summarise(pool: Path, now: float | None = None) -> RunSummary:
    """Read a pool and summarise it (slow path; :func:`catalog` caches the result)."""
    from features.run import Run  # the run loads this module; import late

    entries, total, last = fingerprint(pool)
    run = Run(pool)
    run.load()
    ev = run.events()
    st, rule = status_of(run, last, now)
    acts = run.actions() if ev.n else None
    return RunSummary(
        pool=pool.name, path=str(pool),
        start=ev.t0 if ev.n else None,
        duration_s=(ev.t1 - ev.t0) if ev.n else None,
        files=len(entries), records=ev.n,
        agents=len(run.agents()) if ev.n else 0,
        errors=int((ev.ints["levelno"] >= 40).sum()) if ev.n else 0,
        actions=len(acts) if acts is not None else 0,
        failed_actions=int((acts["status"] == "exception").sum()) if acts is not None else 0,
        bad_lines=run.store.stats.bad_lines,
        status=st, rule=rule, size=total, last_write=last,
    )


def _cache_path(home: Path | None) -> Path:
    root = str(logs_dir(home).resolve()) if logs_dir(home).exists() else str(logs_dir(home))
    digest = orjson.dumps(root).hex()[:48]
    return cache_dir() / f"runs-{digest}.json"


def catalog(home: Path | None = None, now: float | None = None,
            progress: Any = None) -> list[RunSummary]:
    """Every run, newest first. Cached summaries are reused when a pool's files are
    unchanged; live pools are always re-read (their status depends on the clock)."""
    now = time.time() if now is None else now
    pools = list_pools(home)
    path = _cache_path(home)
    try:
        cached = orjson.loads(path.read_bytes())
        if cached.get("version") != CACHE_VERSION:
            cached = {}
    except (OSError, orjson.JSONDecodeError):
        cached = {}
    entries: dict[str, Any] = cached.get("runs", {}) if cached else {}
    out: list[RunSummary] = []
    fresh: dict[str, Any] = {}
    dirty = False
    for i, pool in enumerate(pools):
        files, total, last = fingerprint(pool)
        key = [list(f) for f in files]
        ent = entries.get(pool.name)
        live = bool(last) and now - last < LIVE_WINDOW_S
        if ent is not None and ent.get("key") == key and not live and \
                ent["summary"].get("status") != "live":
            summary = RunSummary(**ent["summary"])
        else:
            try:
                summary = summarise(pool, now)
            except Exception as e:  # a broken pool must not hide the others
                summary = RunSummary(pool.name, str(pool), None, None, len(files), 0, 0, 0,
                                     0, 0, 0, "unknown", f"cannot read: {e}", total, last)
            dirty = True
        fresh[pool.name] = {"key": key, "summary": summary.as_dict()}
        out.append(summary)
        if progress is not None:
            progress(i + 1, len(pools))
    if dirty or set(fresh) != set(entries):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps({"version": CACHE_VERSION, "runs": fresh}))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache directory only costs speed
    out.sort(key=lambda s: (s.start or s.last_write or 0.0), reverse=True)
    return out
