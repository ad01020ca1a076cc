"""The tools a model may call to look at a run, with JSON schemas, checked arguments and
size-capped results.

:class:`Toolbox` is the one entry point: :meth:`Toolbox.specs` for a tool-calling model,
:meth:`Toolbox.plan_schema` for a structured-output plan, :meth:`Toolbox.call` to run
one. A call never raises: an unknown tool, arguments that are not JSON, that break the
schema or that name nothing in the run come back as an error :class:`ToolResult` the
model can read and correct. Every string in every schema has a ``maxLength`` or an
``enum`` (small models loop inside unbounded strings).

The tools themselves are listed in :mod:`steering.ask.tool_defs`; what a call returns and
how it is cut to size, in :mod:`steering.ask.tool_result`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steering.ask.lookups import ToolArgError
from steering.ask.schema import errors as schema_errors
from steering.ask.tool_defs import BRIEF, Tool, all_tools, object_schema
from steering.ask.tool_result import ToolResult, fit

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["Tool", "ToolResult", "Toolbox"]

log = logging.getLogger("academy_tui.ask")
log.addHandler(logging.NullHandler())

RESULT_CHARS = 6000
"""Default cap on one result's JSON."""


class Toolbox:
    """The tools over one run (and the other runs it may be compared with)."""

    def __init__(self, run: Run, *, others: Sequence[Run] = (), home: Path | None = None,
                 expected_s: float | None = None, result_chars: int = RESULT_CHARS) -> None:
        self.run = run
        self.others = list(others)
        """Runs the question may compare with (``--compare``), found by uuid prefix."""
        self.home = home
        """Academy home for resolving other runs by uuid; ``None``: the default."""
        self.expected_s = expected_s
        """The run time the user expected (the default of ``where_time_went``)."""
        self.result_chars = result_chars
        self.tools = {t.name: t for t in all_tools()}
        """Name -> :class:`Tool`."""
        self.results: list[ToolResult] = []
        """Every call made, in order."""

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def specs(self) -> list[dict[str, Any]]:
        """The tools in the chat-completions ``tools`` format."""
        from features.query import AST_SCHEMA

        out = []
        for t in self.tools.values():
            params = dict(t.parameters)
            if t.name == "query_events":
                params["$defs"] = AST_SCHEMA["$defs"]
            out.append({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": params}})
        return out

    def describe(self, brief: bool = False) -> str:
        """One line per tool with its arguments, for a plan prompt (``brief``: a few words
        each and no enumerations, for small models with small contexts)."""
        lines = []
        for t in self.tools.values():
            props = t.parameters["properties"]
            req = set(t.parameters["required"])
            args = ", ".join(f"{k}{'' if k in req else '?'}"
                             + ("" if brief else f": {_type_hint(v)}")
                             for k, v in props.items())
            lines.append(f"- {t.name}({args}): {BRIEF[t.name] if brief else t.description}")
        return "\n".join(lines)

    def plan_schema(self, max_calls: int) -> dict[str, Any]:
        """A JSON schema for ``{"calls": [{"tool", "arguments", "why"}]}``: one shape per
        tool (``anyOf``), every property required (optional ones nullable), filters as
        text only: what strict structured output and small models can both follow."""
        shapes = []
        for t in self.tools.values():
            params = _strict(t.parameters, flat_filter=True)
            shapes.append(object_schema({"tool": {"type": "string", "enum": [t.name]},
                                         "arguments": params,
                                         "why": {"type": "string", "maxLength": 60}},
                                        ["tool", "arguments", "why"]))
        return object_schema({"calls": {"type": "array", "maxItems": max_calls,
                                        "items": {"anyOf": shapes}}}, ["calls"])

    def other_run(self, text: str) -> Run:
        """Another run by uuid, uuid prefix or ``latest`` (paths are not accepted: a model
        must not make us read arbitrary directories)."""
        want = text.strip().lower()
        for r in self.others:
            if want and r.uuid.lower().startswith(want):
                return r
        if not want or os.sep in want or want.startswith((".", "~")):
            raise ToolArgError("give another run's uuid, a uuid prefix or 'latest'")
        from features.pools import RunError, resolve
        from features.run import Run

        try:
            path = resolve(want, self.home)
        except RunError as exc:
            raise ToolArgError(str(exc)) from None
        run = Run(path)
        run.load()
        self.others.append(run)
        return run

    def call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        """Run one tool; errors become error results, never exceptions."""
        args: Any = arguments if arguments is not None else {}
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except ValueError as exc:
                return self._keep(ToolResult(name[:64], {}, False,
                                             error=f"arguments are not JSON: {exc}"))
        tool = self.tools.get(name)
        if tool is None:
            return self._keep(ToolResult(name[:64], {}, False, error=(
                f"unknown tool {name[:64]!r}; the tools are: {', '.join(self.tools)}")))
        if not isinstance(args, dict):
            return self._keep(ToolResult(name, {}, False,
                                         error="arguments must be a JSON object"))
        args = {k: v for k, v in args.items() if v is not None}
        schema = dict(tool.parameters)
        if name == "query_events":
            from features.query import AST_SCHEMA

            schema["$defs"] = AST_SCHEMA["$defs"]
        problems = schema_errors(args, schema)
        if problems:
            return self._keep(ToolResult(name, args, False,
                                         error="bad arguments: " + "; ".join(problems)))
        try:
            data = tool.fn(self, args)
        except ToolArgError as exc:
            return self._keep(ToolResult(name, args, False, error=str(exc)))
        except Exception as exc:  # a tool bug must not end the conversation
            log.exception("tool %s failed", name)
            return self._keep(ToolResult(name, args, False,
                                         error=f"the tool failed: {type(exc).__name__}"))
        return self._keep(fit(ToolResult(name, args, True, data), self.result_chars))

    def _keep(self, result: ToolResult) -> ToolResult:
        self.results.append(result)
        return result


def _type_hint(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return "filter text"
    return str(schema.get("type", "any"))


PLAN_STRING = 80
"""Longest free string in a plan (a filter may have 120): keeps a plan from small models
well inside a few hundred tokens."""


def _strict(params: dict[str, Any], flat_filter: bool) -> dict[str, Any]:
    """Every property required; the optional ones may be null; strings shorter."""
    props = {}
    for k, v in params["properties"].items():
        v = dict(v)
        if flat_filter and "anyOf" in v:
            v = {"type": "string", "minLength": 1, "maxLength": 120}
        elif "maxLength" in v:
            v["maxLength"] = min(v["maxLength"], PLAN_STRING)
        if k not in params["required"]:
            kind = v.get("type", "string")
            v["type"] = [*([kind] if isinstance(kind, str) else kind), "null"]
            if "enum" in v:
                v["enum"] = [*v["enum"], None]
        props[k] = v
    return object_schema(props, list(props))
