"""The ``academy-tui`` argument parser: a subparser per subcommand, with its options, its
help and the ``cmd_*`` that runs it (``fn``).

Apart from the dispatch (:mod:`tui.cli.commands`) and the commands themselves
(:mod:`tui.cli.handlers`) because it is the command line's whole vocabulary in one
place: what a user can type, and what each option means.
"""

from __future__ import annotations

import argparse
from typing import Any

from tui.cli.handlers import (
    cmd_ask,
    cmd_demo,
    cmd_diff,
    cmd_events,
    cmd_export,
    cmd_report,
    cmd_runs,
    cmd_steer,
    cmd_tui,
)


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
