"""What each ``academy-tui`` subcommand runs: one ``cmd_*`` per subcommand, each
importing what it needs when it runs (see :mod:`tui.cli`), so that building the parser
and running one command costs none of the others' imports.

Apart from the parser (:mod:`tui.cli.parser`, which names these as each subcommand's
``fn``) and the dispatch (:mod:`tui.cli.commands`) because it is the commands' own work:
``runs`` and ``report`` in full, the others handed to their modules.
"""

from __future__ import annotations

import argparse
import sys

from tui.cli.common import (
    CliError,
    check_early,
    home_of,
    open_run,
    parse_duration,
    parse_expect_calls,
    warn_bad,
    with_sources,
)
from tui.firstcontact import no_runs


def cmd_runs(args: argparse.Namespace) -> int:
    from features.catalog import catalog
    from features.fmt import fmt_bytes, fmt_s

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
    check_early(args)
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
    check_early(args)
    from tui.cli.events import print_events

    run = open_run(args)
    rc = print_events(run, args)
    warn_bad(run)
    return rc


def cmd_export(args: argparse.Namespace) -> int:
    check_early(args)
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
    check_early(args)
    try:
        from tui.app import run_app
    except ImportError:
        raise CliError("the terminal app is not available in this build; use "
                       "'academy-tui report RUN' or 'academy-tui events RUN'") from None
    expected = parse_duration(args.expect) if args.expect else None
    return int(run_app(args.run, home=home_of(args), expected_s=expected,
                       sources=with_sources(args)) or 0)
