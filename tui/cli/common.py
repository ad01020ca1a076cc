"""What the ``academy-tui`` commands share: the user-error exception, durations, and
opening the run a command names (its sources joined, progress on a terminal)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from features.run import Run
    from features.table import Table

DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d*)?)\s*h)?\s*(?:(\d+(?:\.\d*)?)\s*m(?!s))?\s*"
                       r"(?:(\d+(?:\.\d*)?)\s*s)?\s*(?:(\d+(?:\.\d*)?)\s*ms)?\s*$")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def parse_duration(text: str) -> float:
    """Seconds from ``16``, ``16s``, ``250ms``, ``1m30s``, ``1.5h``."""
    t = text.strip().lower()
    try:
        return float(t)
    except ValueError:
        pass
    m = DURATION.match(t)
    if not m or not any(m.groups()):
        raise CliError(f"cannot read duration {text!r} (try 16s, 250ms, 1m30s)")
    h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def parse_expect_calls(items: Sequence[str]) -> dict[str, float]:
    """``["next_item=0.5s"]`` -> ``{"next_item": 0.5}``."""
    out: dict[str, float] = {}
    for item in items:
        action, sep, dur = item.partition("=")
        if not sep or not action.strip():
            raise CliError(f"cannot read --expect-call {item!r} (try next_item=0.5s)")
        out[action.strip()] = parse_duration(dur)
    return out


def home_of(args: argparse.Namespace) -> Path | None:
    return Path(args.home).expanduser() if getattr(args, "home", None) else None


def check_early(args: argparse.Namespace) -> None:
    """Start summing the saved reading of the run ``args`` names on another thread
    (:func:`features.cache.check_early`) while this process goes on importing what the
    command needs (Textual, numpy): the restore that follows takes the sums. Nothing
    when there is no run, it is not found (the command says why when it opens it) or
    its reading is not to be used."""
    if getattr(args, "run", None) is None:
        return
    from features import cache
    from features.pools import RunError, resolve

    if not cache.enabled(None):
        return
    try:
        cache.check_early(resolve(args.run, home_of(args)))
    except (RunError, OSError, ValueError):
        return


def open_run(args: argparse.Namespace) -> Run:
    from features.pools import resolve
    from features.run import Run

    path = resolve(args.run, home_of(args))
    run = Run(path, sources=with_sources(args))
    show = sys.stderr.isatty() and not getattr(args, "quiet", False)
    run.load(progress=progress if show else None)
    if show:
        control("\r\x1b[K")
    if run.store.stats.records == 0 and not run.store.files:
        odd = sum(n.endswith(".jsonlog") for n in run.reader.other_files)
        sys.stderr.write(f"academy-tui: note: {path} holds no .jsonlog files yet\n" if not odd
                         else f"academy-tui: note: {path} holds no .jsonlog file that can be "
                         f"read ({odd} not a regular file)\n")
    return run


def with_sources(args: argparse.Namespace) -> tuple[Any, ...]:
    """The sources ``--with`` names, opened (their kinds found from the content) before
    anything is read: a path that is no source is one line and exit status 2."""
    from features.source_kinds import open_source
    from features.sources import SourceError

    try:
        return tuple(open_source(p) for p in getattr(args, "with_", None) or ())
    except SourceError as exc:
        raise CliError(str(exc)) from None


def progress(done: int, total: int) -> None:
    if total:
        control(f"\rreading {done / total * 100:5.1f}% of {total / 1e6:.0f} MB")
        sys.stderr.flush()


def warn_bad(run: Run) -> None:
    from features.fmt import count

    st = run.store.stats
    if st.bad_lines:
        sys.stderr.write(f"academy-tui: {count(st.bad_lines, 'bad line')} skipped "
                         f"({count(st.recovered, 'record')} recovered from them)\n")
    for note in run.notes:
        sys.stderr.write(f"academy-tui: {note}\n")


def control(text: str) -> None:
    """Our own terminal control text (the progress line) on stderr, past its escaping."""
    from tui.cli.out import control as write

    write(sys.stderr, text)


def tell_where(run: Run, where: str | None, matched: int, follow: bool = False) -> None:
    """On stderr, how a filter met the data: a mistyped key (with close matches), a number
    compared with text..., and that nothing matched (stdout stays clean for jq)."""
    if not where:
        return
    from features import query

    ev = run.events()
    for note in query.explain(query.parse(where), ev):
        sys.stderr.write(f"academy-tui: note: {note}\n")
    if not matched and not follow:
        sys.stderr.write(f"academy-tui: no event matches {where!r} (of {ev.n:,})\n")


THINGS = ("events", "actions", "agents", "processes", "messages", "loops", "bad_lines",
          "stats")


def thing_table(run: Run, what: str, rows: np.ndarray | None) -> Table:
    """The table for one export kind; things are restricted to those with a row in
    ``rows`` when a filter was given."""
    import numpy as np

    from features.table import Table
    if what == "events":
        return run.events_table(rows)
    if what == "bad_lines":
        recs = [b.as_dict() for b in run.store.bad]
        names = [f.name for f in run.store.files]
        for r in recs:
            r["file"] = names[r["file"]] if r["file"] < len(names) else r["file"]
        cols = ["file", "line", "offset", "length", "reason", "recovered", "preview"]
        return Table({c: [r[c] for r in recs] if recs else np.empty(0, dtype=object)
                      for c in cols}, name="bad_lines")
    if what == "stats":
        return run.action_stats()
    table: Table = getattr(run, what)()
    if rows is not None and what == "actions":
        keep = np.isin(table["row_start"], rows) | np.isin(table["row_exec"], rows) | \
            np.isin(table["row_end"], rows)
        table = table.where(keep)
    return table
