"""Every kind of source academy-tui reads, found from a path's content or named by the
pool itself. The kinds (Parsl's ``monitoring.db``, Parsl's text logs, Slurm's
``sacct``/``squeue`` JSON) register themselves when their modules are imported, which
:func:`open_source` does at its first call: a run that names no source (most) does not
import them (sqlite3, the log formats, the query language Slurm's steps are read with:
~10 ms of an app's first screen). :mod:`features.sources` is the base they build on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from features.sources import RunView, Source, SourceError, kinds

__all__ = ["discover", "open_source"]


def open_source(path: str | os.PathLike[str]) -> Source:
    """The source at ``path``, its kind found from the content (a directory is searched
    for a known file, kind by kind: ``--with runinfo`` opens Parsl's ``monitoring.db``
    when there is one, its text logs otherwise; ``--with runinfo/000`` the logs). Raises
    :class:`SourceError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise SourceError(f"--with {p}: no such file or directory")
    candidates = [p] if p.is_file() else [p, *sorted(
        q for q in p.rglob("*") if q.is_file() and q.stat().st_size)[:2000]]
    from features import parsl_db, parsl_logs, slurm  # noqa: F401  (each registers its kind)

    for _, sniff, make in kinds():
        for q in candidates:
            try:
                if sniff(q):
                    return make(q)
            except OSError:
                continue
    raise SourceError(f"--with {p}: not a source academy-tui reads (Parsl's monitoring.db "
                      "or its run directory, Slurm's `sacct --json` or `squeue --json` output)")


def discover(run: RunView) -> list[Source]:
    """Sources the pool itself names: a Parsl driver's ``Parsl run initializing in rundir:
    DIR`` (its ``monitoring.db`` is in DIR or DIR's parent, Parsl's default; without one,
    the text logs in DIR: Parsl writes them whether monitoring is on or not)."""
    found: list[Source] = []
    ev = run.events()
    if not ev.n or "name" not in ev.codes:
        return found
    codes, names = ev.cat("name")
    dfk = [i for i, n in enumerate(names) if str(n).startswith("parsl.dataflow")]
    rows = np.flatnonzero(np.isin(codes, dfk)) if dfk else np.empty(0, dtype=np.int64)
    prefix = "Parsl run initializing in rundir: "
    dirs = {m[len(prefix):].strip() for m in (ev.message[r] for r in rows.tolist())
            if isinstance(m, str) and m.startswith(prefix)}
    for d in sorted(dirs):
        for cand in (Path(d) / "monitoring.db", Path(d).parent / "monitoring.db",
                     Path(d) / "parsl.log"):
            try:
                if cand.is_file():
                    found.append(open_source(cand))
                    break
            except (OSError, SourceError):
                continue
    return found
