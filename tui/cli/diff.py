"""``academy-tui diff RUN_A RUN_B``: where B is slower (or faster) than A."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from features.diff import RunDiff, diff
from features.pools import resolve
from features.render import Section, render_markdown, render_text
from features.run import Run


def _load(arg: str, home: Path | None) -> Run:
    # RunError (no such run, ambiguous prefix) propagates: the CLI prints it as one line.
    run = Run(resolve(arg, home))
    run.load()
    return run


def sections(d: RunDiff, markdown: bool = False) -> list[Section]:
    """The diff as report sections (shared by the text and Markdown renderings)."""
    lines = d.lines()
    if markdown:  # one bullet per sentence, or Markdown runs them into one paragraph
        lines = [lines[0], "", *(f"- {ln}" for ln in lines[1:] if ln)]
    head = [f"A         {d.a['uuid']}  ({d.a['path']})",
            f"B         {d.b['uuid']}  ({d.b['path']})"]
    return [Section("Runs", head), Section("B against A", lines),
            Section("Per action and phase", table=d.readable_table())]


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two runs; ``args``: ``run_a``, ``run_b``, ``format`` (text, json,
    markdown) and optionally ``home``."""
    from tui.cli.common import CliError

    fmt = getattr(args, "format", "text") or "text"
    if fmt not in ("text", "json", "markdown"):
        raise CliError(f"unknown format {fmt!r} (text, json or markdown)")
    home = Path(args.home).expanduser() if getattr(args, "home", None) else None
    run_a, run_b = _load(args.run_a, home), _load(args.run_b, home)
    for name, run in (("RUN_A", run_a), ("RUN_B", run_b)):
        if run.events().n == 0:
            raise CliError(f"{name} ({run.path}) holds no records yet")
    d = diff(run_a, run_b)
    if fmt == "json":
        sys.stdout.write(orjson.dumps(d.as_dict(), option=orjson.OPT_INDENT_2
                                      | orjson.OPT_SERIALIZE_NUMPY, default=str).decode())
        sys.stdout.write("\n")
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(sections(d, markdown=True)))
    else:
        sys.stdout.write(render_text(sections(d)))
    return 0
