"""``academy-tui ask RUN "question"``: a question about a run, answered from its data with
cited evidence, by an LLM when one is configured and by the built-in analyst otherwise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from features.pools import resolve
from features.run import Run
from features.safe import clean, clean_block

__all__ = ["AskError", "cmd_ask", "render_text"]


def _load(arg: str, home: Path | None, sources: tuple[Any, ...] = ()) -> Run:
    run = Run(resolve(arg, home), sources=sources)
    run.load()
    return run


class AskError(Exception):
    """A user error (one line, exit status 2)."""


def cmd_ask(args: argparse.Namespace, expected: float | None = None) -> int:
    """Answer one question. ``args``: ``run``, ``question``, ``model``, ``mode``,
    ``compare``, ``format``, ``builtin`` and optionally ``home``; ``expected`` is the
    parsed ``--expect``."""
    from steering.ask import ask
    from steering.llm_config import LLMConfig, scrub

    question = " ".join(str(args.question).split())
    if not question:
        raise AskError("the question is empty")
    home = Path(args.home).expanduser() if getattr(args, "home", None) else None
    config = None
    if not args.builtin:
        try:
            config = LLMConfig.load(model=args.model, mode=args.mode)
        except ValueError as exc:
            raise AskError(str(exc)) from None
    from features.source_kinds import open_source
    from features.sources import SourceError

    try:
        sources = tuple(open_source(p) for p in getattr(args, "with_", None) or ())
    except SourceError as exc:
        raise AskError(str(exc)) from None
    run = _load(args.run, home, sources)
    if run.events().n == 0:
        raise AskError(f"{run.path} holds no records yet")
    others = [_load(args.compare, home)] if args.compare else []
    answer = ask(run, question, config, others=others, expected_s=expected, home=home,
                 builtin=args.builtin)
    key = config.api_key if config else None
    if answer.fallback_reason and config is not None and config.configured:
        sys.stderr.write(clean(scrub(f"academy-tui: note: {answer.fallback_reason}; the "
                                     "built-in analyst answered", key)) + "\n")
    if args.format == "json":
        text = orjson.dumps(answer.as_dict(), option=orjson.OPT_INDENT_2, default=str).decode()
        sys.stdout.write(scrub(text, key) + "\n")
        return 0
    sys.stdout.write(scrub(render_text(answer), key))
    return 0


def render_text(answer: Any) -> str:
    """The answer, its evidence and notes, as plain text for a terminal."""
    out = [clean_block(answer.text), ""]
    cites = answer.valid_citations
    if cites:
        out.append("Evidence:")
        out.extend(f"  [{clean(c.ref)}]  {clean(c.label, 200)}" for c in cites[:20])
        if len(cites) > 20:
            out.append(f"  ... {len(cites) - 20} more")
    if answer.notes:
        out.append("Checks:")
        out.extend(f"  - {clean(n, 400)}" for n in answer.notes)
    if answer.backend == "llm":
        calls = len(answer.steps)
        tokens = answer.usage.get("prompt_tokens", 0) + answer.usage.get("completion_tokens", 0)
        out.append(f"(Answered by {clean(answer.model)} in {answer.mode} mode: {calls} tool "
                   f"call{'s' if calls != 1 else ''}, {tokens} tokens.)")
    return "\n".join(out).rstrip() + "\n"
