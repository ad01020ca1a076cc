"""The ``academy-tui`` parser and its dispatch: one ``cmd_*`` per subcommand, each
importing what it needs when it runs (see :mod:`tui.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tui.cli.common import (
    CliError,
    home_of,
    open_run,
    parse_duration,
    parse_expect_calls,
    warn_bad,
    with_sources,
)
from tui.firstcontact import no_runs

if TYPE_CHECKING:
    pass

COMMANDS = ("runs", "events", "report", "export", "diff", "ask", "demo", "steer",
            "sample", "tui")

# -- commands ----------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from features.fmt import fmt_bytes, fmt_s
    from features.runs import catalog

    rows = catalog(home_of(args))
    if args.format == "json":
        import orjson

        sys.stdout.write(orjson.dumps([r.as_dict() for r in rows],
                                      option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    from datetime import datetime

    from features.table import Table

    table = Table({
        "pool": [r.pool for r in rows],
        "start": [datetime.fromtimestamp(r.start).strftime("%Y-%m-%d %H:%M:%S")
                  if r.start else "-" for r in rows],
        "duration": [fmt_s(r.duration_s) for r in rows],
        "files": [r.files for r in rows],
        "records": [r.records for r in rows],
        "agents": [r.agents for r in rows],
        "errors": [r.errors for r in rows],
        "status": [r.status for r in rows],
        "size": [fmt_bytes(r.size) for r in rows],
        "rule": [r.rule for r in rows],
    }, name="runs")
    if args.format == "csv":
        from features.export import write_csv

        write_csv(table, sys.stdout)
        return 0
    if not rows:
        print(no_runs(home_of(args)))
        return 0
    # A pipe gets each status rule whole; a terminal, cut at 60 columns with "…".
    print(table.format(max_rows=args.limit or 10**9,
                       max_width=60 if sys.stdout.isatty() else sys.maxsize))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import orjson

    from features import render, report

    expected = parse_duration(args.expect) if args.expect else None
    per_call = parse_expect_calls(args.expect_call)
    run = open_run(args)
    # The ranking forest only adds each incident call's mv_score, which only JSON shows.
    secs = report.build(run, expected_s=expected, top=args.top,
                        anomalies=not args.no_anomalies, expected_calls=per_call,
                        ranking=args.format == "json")
    if args.format == "json":
        sys.stdout.write(orjson.dumps(render.to_json(secs), option=orjson.OPT_INDENT_2
                                      | orjson.OPT_SERIALIZE_NUMPY, default=str).decode())
        sys.stdout.write("\n")
    elif args.format == "markdown":
        sys.stdout.write(render.render_markdown(secs))
    else:
        # A pipe or a file gets every value whole; a terminal, cells cut with "…".
        sys.stdout.write(render.render_text(secs, width=40 if sys.stdout.isatty() else None))
    warn_bad(run)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from tui.cli.events import print_events

    run = open_run(args)
    rc = print_events(run, args)
    warn_bad(run)
    return rc


def cmd_export(args: argparse.Namespace) -> int:
    from tui.cli.events import export

    if args.format == "otlp" or args.otlp_endpoint:  # a bad URL fails before the read
        from tui.cli.otlp import check_args

        check_args(args)
    run = open_run(args)
    rc = export(run, args)
    warn_bad(run)
    return rc


def cmd_diff(args: argparse.Namespace) -> int:
    from tui.cli.diff import cmd_diff as diff

    return diff(args)


def cmd_ask(args: argparse.Namespace) -> int:
    from tui.cli.ask import AskError
    from tui.cli.ask import cmd_ask as ask

    expected = parse_duration(args.expect) if args.expect else None
    try:
        return ask(args, expected)
    except AskError as e:  # raised as this module's CliError, also under `python -m`
        raise CliError(str(e)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from tui.cli.demo import demo

    return demo(args)


def cmd_steer(args: argparse.Namespace) -> int:
    from tui.cli.steer import steer

    return steer(args)


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from tui.app import run_app
    except ImportError:
        raise CliError("the terminal app is not available in this build; use "
                       "'academy-tui report RUN' or 'academy-tui events RUN'") from None
    expected = parse_duration(args.expect) if args.expect else None
    return int(run_app(args.run, home=home_of(args), expected_s=expected,
                       sources=with_sources(args)) or 0)


# -- parser ------------------------------------------------------------------------------


def _no_cache(s: argparse.ArgumentParser) -> None:
    s.add_argument("--no-cache", action="store_true",
                   help="read the pool from scratch and save no reading of it (a big pool's "
                        "reading is saved, so opening it again costs what changed)")


def _reading_options(s: argparse.ArgumentParser) -> None:
    """The options of every command that reads a run."""
    s.add_argument("--with", dest="with_", action="append", default=[], metavar="PATH",
                   help="join another source onto the run: Parsl's monitoring.db or its run "
                        "directory (repeatable; sources the pool names are joined anyway)")
    _no_cache(s)


def _parse_tui(sub: Any) -> None:
    s = sub.add_parser("tui", help="open the terminal app (the default command)")
    s.add_argument("run", nargs="?", help="run to open (default: the run catalog)")
    s.add_argument("--expect", help="the time you expected the run to take, e.g. 16s")
    _reading_options(s)
    s.set_defaults(fn=cmd_tui)


def _parse_runs(sub: Any) -> None:
    s = sub.add_parser("runs", help="list runs, newest first")
    s.add_argument("--format", choices=("table", "json", "csv"), default="table")
    s.add_argument("--limit", type=int, default=0, help="show at most N runs")
    s.set_defaults(fn=cmd_runs)


def _parse_report(sub: Any) -> None:
    s = sub.add_parser("report", help="where the time went, with numbers and evidence")
    s.add_argument("run")
    s.add_argument("--expect", help="the time you expected, e.g. 16s, 1m30s")
    s.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    s.add_argument("--top", type=int, default=10, help="rows in the 'slowest' lists")
    s.add_argument("--no-anomalies", action="store_true",
                   help="leave out slowdown detection (faster on very large runs)")
    s.add_argument("--expect-call", action="append", default=[], metavar="ACTION=TIME",
                   help="what one call of an action should take, e.g. next_item=0.5s "
                        "(repeatable): the excess is then compared like with like")
    _reading_options(s)
    s.set_defaults(fn=cmd_report)


def _parse_events(sub: Any) -> None:
    s = sub.add_parser("events", help="print merged events in time order")
    s.add_argument("run")
    s.add_argument("--where", help="filter, e.g. 'levelno>=30 or exc_text!=None'")
    s.add_argument("--format", choices=("table", "jsonl"), default="table")
    s.add_argument("--raw", action="store_true",
                   help="jsonl: the records exactly as written, plus @file/@line")
    s.add_argument("--keys", help="table: extra columns, comma separated (e.g. fib.iteration)")
    s.add_argument("--limit", type=int, default=0, help="print at most N events")
    s.add_argument("--absolute", action="store_true", help="table: absolute times")
    s.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new events as the run writes them (Ctrl-C stops)")
    _reading_options(s)
    s.set_defaults(fn=cmd_events)


def _parse_export(sub: Any) -> None:
    s = sub.add_parser("export", help="export events or things as CSV, JSONL or SQLite; "
                                      "actions as an OpenTelemetry trace (otlp)")
    s.add_argument("run")
    s.add_argument("--what", default=None,
                   help="events (default for csv/jsonl), actions, agents, processes, messages,"
                        " loops, bad_lines, stats, or all (default for sqlite); comma separated")
    s.add_argument("--format", choices=("csv", "jsonl", "sqlite", "otlp"), default="csv",
                   help="otlp: OTLP/JSON, one trace, a span per action")
    s.add_argument("--where", help="filter events (and things by their events' rows)")
    s.add_argument("-o", "--output", help="file to write (default stdout; required for sqlite)")
    s.add_argument("--otlp-endpoint", metavar="URL",
                   help="otlp: POST to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318; "
                        "/v1/traces is added to a bare host) instead of printing")
    _reading_options(s)
    s.set_defaults(fn=cmd_export)


def _parse_diff(sub: Any) -> None:
    s = sub.add_parser("diff", help="compare two runs of one workflow: where is B slower?")
    s.add_argument("run_a", help="the reference run")
    s.add_argument("run_b", help="the run to explain")
    _no_cache(s)
    s.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    s.set_defaults(fn=cmd_diff)


def _parse_ask(sub: Any) -> None:
    s = sub.add_parser("ask", help="ask a question about a run; the answer cites evidence")
    s.add_argument("run")
    s.add_argument("question", help='e.g. "I expected 16 s: where did the time go?"')
    s.add_argument("--model", help="model name (default: $ACADEMY_TUI_MODEL or gpt-4o-mini)")
    s.add_argument("--mode", choices=("auto", "tools", "plan", "kinds"), default=None,
                   help="tools: a tool-calling loop; plan: a JSON plan, then an answer; "
                        "kinds: the model picks the question's kind and phrases the "
                        "built-in analyst's facts (small local models); auto (default) "
                        "picks by model and server")
    s.add_argument("--compare", metavar="RUN_B", help="another run to compare with")
    s.add_argument("--expect", help="the time you expected the run to take, e.g. 16s")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--builtin", action="store_true",
                   help="answer with the built-in analyst even when an LLM is configured")
    _reading_options(s)
    s.set_defaults(fn=cmd_ask)


def _parse_demo(sub: Any) -> None:
    s = sub.add_parser("demo", help="run a demo workflow (fibonacci, straggler) on real "
                                    "academy-py")
    s.add_argument("--no-tui", action="store_true", help="print the pool path and report")
    s.add_argument("--scenario", choices=("fib", "straggler"), default="fib",
                   help="fib: launcher/generator pairs; straggler: a coordinator and workers, "
                        "one of which slows down")
    s.add_argument("--steer", choices=("suggest", "confirm", "apply"), default=None,
                   help="run a steering agent alongside in this mode")
    s.add_argument("--workers", type=int, default=4, help="straggler: worker agents")
    s.add_argument("--iterations", type=int, default=16, help="fib: steps; straggler: rounds")
    s.add_argument("--sleep", type=float, default=None,
                   help="fib: seconds per sleep (x2 per step, default 0.5); straggler: "
                        "seconds per task (default 0.1)")
    s.add_argument("--pairs", type=int, default=1, help="launcher/generator pairs")
    s.add_argument("--executor", choices=("thread", "process", "parsl"), default="thread",
                   help="parsl: a Parsl HighThroughputExecutor on this machine (the "
                        "[parsl] extra)")
    s.add_argument("--exchange", choices=("local", "http", "redis"), default=None,
                   help="default: local for threads, http for processes and parsl")
    s.add_argument("--slow-at", type=int, default=None, help="iteration to slow down")
    s.add_argument("--slow-factor", type=float, default=3.0)
    s.add_argument("--slow-len", type=int, default=1, help="how many iterations are slow")
    s.add_argument("--fail-at", type=int, default=None, help="iteration that raises")
    s.add_argument("--redis", default="127.0.0.1:6379", help="HOST:PORT for --exchange redis")
    s.set_defaults(fn=cmd_demo)


def _parse_steer(sub: Any) -> None:
    s = sub.add_parser("steer", help="a run's steering trail; attach a steering agent; "
                                     "approve or reject its suggestions")
    s.add_argument("run")
    s.add_argument("--exchange", help="the run's exchange: redis://HOST:PORT or "
                                      "http://HOST:PORT (attach; approve and reject default "
                                      "to the one the steering agent recorded)")
    s.add_argument("--mode", choices=("suggest", "confirm", "apply"), default="suggest")
    s.add_argument("--targets", help="attach: agents it may steer, comma separated: "
                                     "module:Class paths of the workflow's agent classes "
                                     "(imported here for their @steerable declarations), "
                                     "class names or uuids")
    s.add_argument("--knobs", metavar="FILE",
                   help="attach: knobs declared outside the workflow's code (TOML or JSON: "
                        "the setters it already has, e.g. set_param(name, value) with a "
                        "range per name; see steering/knobs.py)")
    s.add_argument("--approve", metavar="ID", help="apply a pending suggestion (mode confirm)")
    s.add_argument("--reject", metavar="ID", help="drop a pending suggestion")
    s.add_argument("--agent", help="uuid prefix of the steering agent, when several run")
    s.add_argument("--duration", type=float, default=None,
                   help="attach: stop after this many seconds")
    s.add_argument("--idle", type=float, default=10.0,
                   help="attach: stop when the run wrote nothing for this many seconds")
    s.add_argument("--poll", type=float, default=0.25, help="attach: seconds between polls")
    s.add_argument("--no-llm", action="store_true", help="template summaries only")
    s.add_argument("--format", choices=("text", "json"), default="text",
                   help="the trail: text for people, json (one document) for programs")
    s.add_argument("--records", action="store_true",
                   help="the trail: also every verified record, one line each")
    s.set_defaults(fn=cmd_steer)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="academy-tui",
        description="Observability for Academy workflows: pooled events, things, analyses.",
        epilog="RUN is a pool directory, a pool uuid, a unique uuid prefix or 'latest'. "
               "Runs are found under $ACADEMY_HOME/logs (default ~/.local/share/academy/logs).",
    )
    p.add_argument("--home", help="Academy home directory (default: $ACADEMY_HOME or "
                                  "~/.local/share/academy)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _parse_tui(sub)
    _parse_runs(sub)
    _parse_report(sub)
    _parse_events(sub)
    _parse_export(sub)
    _parse_diff(sub)
    _parse_ask(sub)
    _parse_demo(sub)
    _parse_steer(sub)
    from tui.cli.sample import add_parser as add_sample

    add_sample(sub)
    return p


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
    from features.runs import RunError
    from features.safe import visible
    from tui.cli.out import guard

    try:
        from features.query import QueryError
    except ImportError:  # pragma: no cover
        QueryError = RunError  # type: ignore[misc,assignment]
    if getattr(args, "no_cache", False):
        # For every run this process opens (the app's, a diff's other run, a tool's).
        os.environ["ACADEMY_TUI_NO_CACHE"] = "1"
    kind = _output_kind(args)
    restore = guard(kind) if kind else None
    try:
        return int(args.fn(args) or 0)
    except (CliError, RunError, QueryError) as e:
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
