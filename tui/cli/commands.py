"""The ``academy-tui`` dispatch: the implicit ``tui`` command, the parse, and one line on
stderr (and an exit code) for every failure; the parser is :mod:`tui.cli.parser`, what
each subcommand runs :mod:`tui.cli.handlers` (see :mod:`tui.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tui.cli.common import CliError
from tui.cli.parser import build_parser

COMMANDS = ("runs", "events", "report", "export", "diff", "ask", "demo", "steer",
            "sample", "tui")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `academy-tui RUN` and `academy-tui` open the app: insert the implicit command.
    pos = _first_positional(argv)
    if pos is None and not any(a in ("-h", "--help") for a in argv):
        argv.append("tui")
    elif pos is not None and argv[pos] not in COMMANDS:
        argv.insert(pos, "tui")
    parser = build_parser()
    args = parser.parse_args(argv)
    from features.pools import RunError
    from features.safe import visible
    from tui.cli.out import guard

    if getattr(args, "no_cache", False):
        # For every run this process opens (the app's, a diff's other run, a tool's).
        os.environ["ACADEMY_TUI_NO_CACHE"] = "1"
    kind = _output_kind(args)
    restore = guard(kind) if kind else None
    try:
        return int(args.fn(args) or 0)
    except (CliError, RunError, _query_error()) as e:
        msg = str(e)
        if msg.startswith("no runs under "):
            msg += " ('academy-tui demo' makes one; 'academy-tui runs' says more)"
        # visible() here too: the app commands leave the streams to Textual, unguarded.
        sys.stderr.write(visible(f"academy-tui: error: {msg}\n"))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # The reader (head, less) went away: not an error. Silence the final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:
        sys.stderr.write(visible(f"academy-tui: error: {e.filename or ''}"
                                 f"{': ' if e.filename else ''}{e.strerror or e}\n"))
        return 1
    except Exception as e:  # a bug of ours: still one line, with a way to see more
        if os.environ.get("ACADEMY_TUI_DEBUG"):
            raise
        sys.stderr.write(visible(f"academy-tui: internal error: {type(e).__name__}: {e} "
                                 "(set ACADEMY_TUI_DEBUG=1 to see the traceback)\n"))
        return 1
    finally:
        if restore is not None:
            restore()


def _output_kind(args: argparse.Namespace) -> str | None:
    """How the command's stdout is escaped: ``json`` (JSON and JSONL, losslessly),
    ``csv`` (exact unless a terminal shows it) or ``text``; ``None`` for the commands
    that open the app, which paints through its own sanitizer on the real terminal."""
    if args.command == "tui" or (args.command == "demo" and not args.no_tui):
        return None
    fmt = getattr(args, "format", None)
    if fmt in ("json", "jsonl", "otlp"):
        return "json"
    return "csv" if fmt == "csv" else "text"


def _first_positional(argv: list[str]) -> int | None:
    """Index of the first argument that is neither an option nor ``--home``'s value."""
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--home":
            skip = True
            continue
        if not a.startswith("-"):
            return i
    return None


class _NoQueryError(Exception):
    """Stands for :class:`features.query.QueryError` where the query language was never
    imported: then nothing raised one."""


def _query_error() -> type[Exception]:
    """The query language's error, if it was imported (an ``except`` clause names it
    after the fact: importing it for every command cost ~10 ms of the app's first
    screen)."""
    mod = sys.modules.get("features.query_syntax")
    return mod.QueryError if mod is not None else _NoQueryError
