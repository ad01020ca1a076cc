"""``academy-tui events`` and ``academy-tui export``: streaming output of merged events
and things."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from typing import Any

import numpy as np

from features.jsonl import jsonl, jsonl_to_fd
from features.pools import LIVE_WINDOW_S
from features.run import Run
from features.safe import clean
from features.table import Table
from tui.cli.common import THINGS, tell_where, thing_table
from tui.cli.out import escaped_binary

CHUNK = 5000


def _row_chunks(rows: np.ndarray, limit: int) -> list[np.ndarray]:
    if limit:
        rows = rows[:limit]
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _table_lines(run: Run, rows: np.ndarray, extra: list[str], absolute: bool,
                 widths: list[int] | None = None) -> tuple[list[str], list[int]]:
    """The table's lines of ``rows``, and the widths they were laid out in: ``widths``, or
    (None) the pid column's and each added column's measured on the first 1,000 rows."""
    ev = run.events()
    agents = run.event_agents_at(rows)
    # The shown rows' values only (Events.values_at), not each key's whole column.
    level, logger, action, state = (ev.values_at(k, rows) for k in (
        "levelname", "name", "academy.action", "academy.action_state"))
    pid = ev.ints["process"]
    extras = {k: ev.values_at(k, rows) for k in extra}
    if widths is None:
        widths = [pid_width(run), *extra_widths(extra, {k: v[:1000] for k, v in extras.items()})]
    out = []
    for i, r in enumerate(rows.tolist()):
        t = ev.created[r]
        if absolute:
            ts = datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3] if t == t else "-"
        else:
            ts = f"{t - ev.t0:10.4f}" if t == t else "         -"
        # Each value cleaned: a CR, LF or control inside one value never breaks the line.
        # The file is its 8-character uuid prefix; a level is never cut (WARNI reads as
        # a typo); other cut values end in "…".
        p = int(pid[r])  # -1: the record names no process (or not as an integer)
        cols = [ts, _one(ev.file_names[ev.file[r]])[:8],
                (str(p) if p >= 0 else "-").rjust(widths[0]),
                _one(level[i]).ljust(LEVEL_W), _fit(_one(logger[i]), 24),
                _fit(_one(agents[i]), 19), _fit(_one(action[i]), 12),
                _fit(_one(state[i]), 17)]
        for k, w in zip(extra, widths[1:], strict=True):
            v = _cell(extras[k][i])  # wider than the first lines: whole, up to the cap
            cols.append(_fit(v, max(w, min(len(v), EXTRA_MAX_W))))
        cols.append(_one(ev.message[r]))
        out.append(" ".join(cols))
    return out, widths


LEVEL_W = len("CRITICAL")
EXTRA_MAX_W = 40
"""The widest an added column (``--keys``) gets (a uuid, 36, fits); a longer value is
cut with ``…`` (``--format jsonl`` gives it whole)."""
SHOWN = {"process": "pid", "levelname": "level", "message": "message"}
"""Keys every table line shows already, whole, and the column that shows each. The
logger, action and state columns cut long values, and the time column shows ``created``
as a time: asked for, those are added whole."""


def extra_keys(spec: str | None) -> tuple[list[str], list[str]]:
    """The added columns ``--keys`` asks for, each once, in its order, and the keys it
    names that are columns already (told, not shown twice)."""
    keys = list(dict.fromkeys(k.strip() for k in (spec or "").split(",") if k.strip()))
    return [k for k in keys if k not in SHOWN], [k for k in keys if k in SHOWN]


def pid_width(run: Run) -> int:
    """The pid column's width: its header's or the largest pid's so far."""
    ev = run.events()
    return max(3, len(str(int(ev.ints["process"][:ev.n].max())))) if ev.n else 3


def extra_widths(extra: list[str], values: dict[str, Any]) -> list[int]:
    """Each added column's width: its name or its longest value among ``values`` (the
    first lines printed), at most :data:`EXTRA_MAX_W`."""
    return [min(EXTRA_MAX_W, max([len(k), *(len(_cell(v)) for v in values[k])]))
            for k in extra]


def _cell(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else _one(v)


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` columns: padded, or cut with ``…``."""
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _one(value: object) -> str:
    """A value on one table line, whole: controls visible, a newline as ``⏎``."""
    return clean(value, sys.maxsize)


def _header(extra: list[str], widths: list[int], absolute: bool) -> str:
    """The table's first line; ``widths``: the pid column's, then each added column's."""
    cols = ["time".rjust(12 if absolute else 10), "file    ", "pid".rjust(widths[0]),
            "level".ljust(LEVEL_W),
            "logger".ljust(24), "agent".ljust(19), "action".ljust(12), "state".ljust(17),
            *(_fit(k, w) for k, w in zip(extra, widths[1:], strict=True)), "message"]
    return " ".join(cols)


def _emit(run: Run, rows: np.ndarray, args: argparse.Namespace, extra: list[str],
          widths: list[int] | None, header: bool = False) -> list[int] | None:
    """Print ``rows``; a table's first ``header`` line is laid out in the widths of its
    first rows (measured once: a key read from the files is read once). Returns the
    widths, kept while following (the columns stay where they are)."""
    out = sys.stdout
    if args.format == "jsonl":  # on every core (features.jsonl)
        _emit_jsonl(run, rows[:args.limit] if args.limit else rows, args.raw)
        return widths
    for chunk in _row_chunks(rows, args.limit):
        lines, widths = _table_lines(run, chunk, extra, args.absolute, widths)
        if header:
            out.write(_header(extra, widths, args.absolute) + "\n")
            header = False
        out.write("\n".join(lines) + "\n")
    if header:  # no rows yet
        widths = [pid_width(run), *extra_widths(extra, {k: [] for k in extra})]
        out.write(_header(extra, widths, args.absolute) + "\n")
    return widths


def _emit_jsonl(run: Run, rows: np.ndarray, raw: bool) -> None:
    """JSON Lines to stdout. Under the command line's guard (tui.cli.out) the workers
    escape the text themselves and, when stdout is a file descriptor, leave it for the
    kernel to copy there: none of it passes through this process."""
    sys.stdout.flush()
    sink = escaped_binary(sys.stdout, "json")
    escape = sink is not None
    target = sink if sink is not None else sys.stdout.buffer
    as_read = run.files_as_read() if raw else None
    try:
        fd = target.fileno()
    except (AttributeError, OSError, ValueError):  # a stream with no descriptor
        fd = None
    if fd is not None:
        target.flush()
        jsonl_to_fd(fd, run.events(), rows, raw=raw, as_read=as_read, escape=escape)
        return
    for text in jsonl(run.events(), rows, raw=raw, as_read=as_read, escape=escape):
        target.write(text)
        target.flush()


def print_events(run: Run, args: argparse.Namespace) -> int:
    """Print events in merged time order, optionally filtered and following the run."""
    extra, shown = extra_keys(args.keys)
    if shown and args.format == "table":
        sys.stderr.write("academy-tui: --keys " + ", ".join(
            f"{k} (the {SHOWN[k]} column)" for k in shown) + ": shown already\n")
    rows = run.select(args.where)
    tell_where(run, args.where, len(rows), follow=args.follow)
    widths = _emit(run, rows, args, extra, None, header=args.format == "table")
    if not args.follow:
        return 0
    sys.stdout.flush()
    seen = run.events().n
    printed = len(rows) if not args.limit else min(len(rows), args.limit)
    while not args.limit or printed < args.limit:
        done = closed(run)
        if done:
            sys.stderr.write(f"academy-tui: {done}: stopped following\n")
            break
        wait_for_writes(run)
        run.refresh()
        ev = run.events()
        if ev.n == seen:
            continue
        new = run.select(args.where)
        new = new[new >= seen]
        seen = ev.n
        if args.limit:
            new = new[: args.limit - printed]
        _emit(run, new, _no_limit(args), extra, widths)
        printed += len(new)
        sys.stdout.flush()
    return 0


FOLLOW_TICK_S = 0.02
"""How often ``-f`` looks at the pool's files that are being written (a stat each)."""
FOLLOW_ALL_S = 1.0
"""How often it looks at all of them (and for new ones): a quiet run's files cost one
stat a second each, not fifty."""


def wait_for_writes(run: Run, most_s: float = FOLLOW_ALL_S) -> None:
    """Return as soon as a pool file grew or a file appeared, at most after ``most_s``.
    Only stats, every :data:`FOLLOW_TICK_S`, of the files written in the live window and
    of the directory: a record is printed ~20 ms after it is written (a 0.25 s sleep gave
    a p95 of 390 ms), for a few syscalls per tick."""
    now = time.time()
    files = [f for f in run.store.files if f.source is None]
    hot: list[tuple[str, int]] = []
    for f in files:
        try:
            st = os.stat(f.path)
        except OSError:
            return  # replaced or deleted: let the reader say so
        if now - st.st_mtime < LIVE_WINDOW_S or st.st_size != f.size:
            hot.append((f.path, f.size))
    try:
        dir_ns = os.stat(run.path).st_mtime_ns
    except OSError:
        return
    end = time.monotonic() + most_s
    while time.monotonic() < end:
        time.sleep(FOLLOW_TICK_S)
        try:
            if os.stat(run.path).st_mtime_ns != dir_ns:
                return
            if any(os.stat(p).st_size != size for p, size in hot):
                return
        except OSError:
            return


def closed(run: Run) -> str | None:
    """Why a run is over for ``-f``: every process of it closed (its last records include
    a closing one, no error after it), as the catalog's ``finished`` rule says; ``None``
    while a process is still open, or none has written yet."""
    procs = run.processes()
    ends = [str(e) for e in procs["end"]] if len(procs) else []
    if not ends or not all(e in ("clean", "empty", "source") for e in ends):
        return None
    n = len(run.msg_rows("Closed manager (%s)"))
    return (f"every process closed cleanly ({n} 'Closed manager' "
            f"record{'' if n == 1 else 's'})")


def _no_limit(args: argparse.Namespace) -> argparse.Namespace:
    ns = argparse.Namespace(**vars(args))
    ns.limit = 0
    return ns


def export(run: Run, args: argparse.Namespace) -> int:
    from features.export import write_sqlite
    from tui.cli.common import CliError

    if args.format == "otlp":
        from tui.cli.otlp import export_otlp

        return export_otlp(run, args)
    what = args.what or ("all" if args.format == "sqlite" else "events")
    kinds = [w.strip() for w in what.split(",") if w.strip()]
    if kinds == ["all"]:
        kinds = list(THINGS)
    bad = [k for k in kinds if k not in THINGS]
    if bad:
        raise CliError(f"cannot export {', '.join(bad)}: choose from {', '.join(THINGS)}")
    rows = run.select(args.where) if args.where else None
    if rows is not None:
        tell_where(run, args.where, len(rows))
    if args.format == "sqlite":
        if not args.output:
            raise CliError("--format sqlite needs -o FILE")
        tables = [thing_table(run, k, rows) for k in kinds]
        written = write_sqlite(tables, args.output)
        summary = ", ".join(f"{k} {n:,}" for k, n in written.items())
        sys.stderr.write(f"wrote {_where(args.output)}: SQLite, a table per kind, rows "
                         f"{summary} (_columns maps each column to its key)\n")
        return 0
    if len(kinds) != 1:
        raise CliError("csv and jsonl export one kind at a time (--what actions)")
    table = thing_table(run, kinds[0], rows)
    if args.output:
        if args.format == "csv":
            with open(args.output, "w", newline="", encoding="utf-8") as text_out:
                n = _write(table, args.format, text_out)
        else:
            with open(args.output, "wb") as bin_out:
                n = _write(table, args.format, bin_out)
        sys.stderr.write(f"wrote {n:,} {kinds[0]} ({args.format.upper()}, "
                         f"{len(table.columns)} columns) to {_where(args.output)}\n")
    else:
        _write(table, args.format, sys.stdout if args.format == "csv" else sys.stdout.buffer)
    return 0


def _where(output: str) -> str:
    """The file written, as an absolute path: ``-o run.csv`` lands in the current
    directory, which the person may not have in mind."""
    from pathlib import Path

    return str(Path(output).resolve())


def _write(table: Table, fmt: str, out: Any) -> int:
    from features.export import write_csv, write_jsonl

    if fmt == "csv":
        return write_csv(table, out)
    return write_jsonl(table.iter_records(), out)
