"""The run catalog: every pool summarised (start, size, agents, errors, status and why),
the summaries cached under the user cache directory, keyed by each pool's file names,
sizes and mtimes, so a warm listing only stats files. Nothing is written into the log
directory. Where pools live and what a RUN argument means: :mod:`features.pools`; a run's
status: :mod:`features.status`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from features.pools import (
    LIVE_WINDOW_S,
    cache_dir,
    fingerprint,
    list_pools,
    logs_dir,
)
from features.status import status_of

__all__ = ["CACHE_VERSION", "RunSummary", "catalog", "summarise"]

CACHE_VERSION = 5


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


def summarise(pool: Path, now: float | None = None) -> RunSummary:
    """Read a pool and summarise it (slow path; :func:`catalog` caches the result)."""
    from features.run import Run  # late: a warm catalog listing never opens a run

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
