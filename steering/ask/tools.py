"""The tools a model may call to look at a run, with JSON schemas, checked arguments and
size-capped results.

:class:`Toolbox` is the one entry point: :meth:`Toolbox.specs` for a tool-calling model,
:meth:`Toolbox.plan_schema` for a structured-output plan, :meth:`Toolbox.call` to run
one. A call never raises: an unknown tool, arguments that are not JSON, that break the
schema or that name nothing in the run come back as an error :class:`ToolResult` the
model can read and correct. Every string in every schema has a ``maxLength`` or an
``enum`` (small models loop inside unbounded strings).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steering.ask import facts, insights, lookups
from steering.ask.lookups import ToolArgError
from steering.ask.schema import errors as schema_errors

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["Tool", "ToolResult", "Toolbox"]

log = logging.getLogger("academy_tui.ask")
log.addHandler(logging.NullHandler())

RESULT_CHARS = 6000
"""Default cap on one result's JSON."""
_REF = re.compile(r"\b(?:ev|act|agent):[^\s\"'\],;]{1,120}")


@dataclass
class ToolResult:
    """What one tool call gave back."""

    tool: str
    arguments: dict[str, Any]
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    truncated: bool = False

    def to_json(self) -> str:
        """Compact JSON for the model (what the cap applies to)."""
        body: dict[str, Any] = {"tool": self.tool, "ok": self.ok}
        if self.ok:
            body["result"] = self.data
            if self.truncated:
                body["truncated"] = "list items were left out to keep the result short"
        else:
            body["error"] = self.error
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)

    @property
    def evidence(self) -> list[str]:
        """Every evidence id in the result (``ev:...``, ``act:...``, ``agent:...``)."""
        return sorted(set(_REF.findall(self.to_json())))

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments, "ok": self.ok,
                "error": self.error, "truncated": self.truncated, "data": self.data}


@dataclass(frozen=True)
class Tool:
    """One tool: name, what it does, its parameters' JSON schema and its function."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[[Toolbox, dict[str, Any]], dict[str, Any]]


BRIEF = {
    "query_events": "events matching a filter such as levelno>=40",
    "list_things": "actions, agents or processes sorted, e.g. slowest actions by total_s",
    "group_stats": "count, p50, p95, max per action",
    "where_time_went": "the wall time split into parts, against expected_s",
    "anomalies": "slowdowns, hung or unfinished calls, crashes",
    "concurrency": "how many actions at once",
    "diff_run": "compare with another run",
    "events_at": "what an agent was doing at a time",
    "run_facts": "status and counts: agents, calls by outcome, errors, crashes",
    "steering": "what the steering agent suggested and changed, and when",
}
"""A few words per tool, for plan prompts to small models."""


def _obj(props: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


def _limit(default: int, top: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": top,
            "description": f"How many to show (default {default})."}


_FILTER_EXAMPLES = ("levelno>=40, academy.action=next_item, exc_text!=None, @t>2.5, "
                    "message~\"time ?out\"")


def _filter_schema() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": 500,
            "description": f"A filter, e.g. {_FILTER_EXAMPLES}."}
    return {"anyOf": [text, {"$ref": "#/$defs/node"}],
            "description": f"A filter as text (e.g. {_FILTER_EXAMPLES}) or as the JSON "
                           "AST of features.query."}


def _tools() -> list[Tool]:
    L, A, F = lookups, insights, facts
    return [
        Tool("query_events", "Events matching a filter: how many, per level, and the first "
             "(or last) of them with their evidence ids.",
             _obj({"where": _filter_schema(),
                   "order": {"type": "string", "enum": ["first", "last"]},
                   "limit": _limit(20, 50)}, ["where"]),
             lambda tb, a: L.query_events(tb.run, a["where"], a.get("limit") or 20,
                                          a.get("order") or "first")),
        Tool("list_things", "Actions, agents or processes, sorted (actions by total_s, "
             "exec_s, queue_s, reply_s or start_s; agents by startup_s, launched_s or "
             "shutdown_s; processes by records, errors, warnings, start_s, end_s or "
             "duration_s), optionally only one action name, status or agent.",
             _obj({"kind": {"type": "string", "enum": ["actions", "agents", "processes"]},
                   "sort": {"type": "string",
                            "enum": sorted({s for v in L.SORTS.values() for s in v})},
                   "descending": {"type": "boolean"},
                   "limit": _limit(10, 50),
                   "action": {"type": "string", "maxLength": 100},
                   "status": {"type": "string", "enum": [
                       "ok", "exception", "cancelled", "in flight", "orphaned",
                       "launched", "running", "shut down", "crashed"]},
                   "agent": {"type": "string", "maxLength": 100}}, ["kind"]),
             lambda tb, a: L.list_things(
                 tb.run, a["kind"], a.get("sort"),
                 True if a.get("descending") is None else bool(a["descending"]),
                 a.get("limit") or 10, a.get("action"), a.get("status"), a.get("agent"))),
        Tool("group_stats", "Per group of actions (by class_action, action, agent, caller "
             "or status): count, errors, p50, p95, max, mean of a duration, and the "
             "slowest call.",
             _obj({"by": {"type": "string", "enum": list(L.GROUP_BY)},
                   "value": {"type": "string", "enum": list(L.VALUES)},
                   "limit": _limit(10, 30)}),
             lambda tb, a: L.group_stats(tb.run, a.get("by") or "class_action",
                                         a.get("value") or "total_s", a.get("limit") or 10)),
        Tool("where_time_went", "The run's wall time split into execution, queue, reply, "
             "caller, startup, shutdown and idle (they add up to it), against the expected "
             "time if given.",
             _obj({"expected_s": {"type": "number", "minimum": 0, "maximum": 1e7}}),
             lambda tb, a: A.where_time_went(
                 tb.run, a["expected_s"] if a.get("expected_s") is not None
                 else tb.expected_s)),
        Tool("anomalies", "Slowdowns and possibly hung calls (with what differs about the "
             "slow calls), unfinished actions, crashed agents, processes that ended "
             "abruptly.",
             _obj({"limit": _limit(5, 10)}),
             lambda tb, a: A.anomalies(tb.run, a.get("limit") or 5)),
        Tool("concurrency", "How many at once: actions executing, calls in flight or agents "
             "alive; the maximum, when, the mean and the actions at the maximum.",
             _obj({"what": {"type": "string", "enum": ["executing", "in flight", "agents"]}}),
             lambda tb, a: A.concurrency(tb.run, a.get("what") or "executing")),
        Tool("diff_run", "Compare this run with another run of the workflow (its uuid, a "
             "uuid prefix or 'latest'): wall time, where the difference went, per action.",
             _obj({"other": {"type": "string", "minLength": 1, "maxLength": 64}}, ["other"]),
             lambda tb, a: A.diff_run(tb.run, tb.other_run(a["other"]))),
        Tool("run_facts", "The run's status (and the rule that decided it), wall time, and "
             "counts with what they count: records, files, processes (ended abruptly), "
             "agents launched and by status, calls by outcome and by action, error and "
             "warning records, incidents by kind, crashed agents with when and why, "
             "steering counts.",
             _obj({}), lambda tb, a: F.run_facts(tb.run)),
        Tool("steering", "What the steering agents did, from their verified records only: "
             "each suggestion (when, target, call, state, summary), each agent's state, and "
             "how many records with steering keys were not counted.",
             _obj({"limit": _limit(10, 30)}),
             lambda tb, a: F.steering_facts(tb.run, a.get("limit") or 10)),
        Tool("events_at", "What one agent was doing at a time (seconds since the run "
             "started): its state, the action it executed, the calls before and after, "
             "its nearest events.",
             _obj({"agent": {"type": "string", "minLength": 1, "maxLength": 100,
                             "description": "AgentId<...>, an id prefix or a class name"},
                   "time_s": {"type": "number", "minimum": 0, "maximum": 1e7},
                   "window_s": {"type": "number", "minimum": 0, "maximum": 3600}},
                  ["agent", "time_s"]),
             lambda tb, a: A.events_at(tb.run, a["agent"], float(a["time_s"]),
                                       float(a.get("window_s") or 1.0))),
    ]


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
        self.tools = {t.name: t for t in _tools()}
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
            shapes.append(_obj({"tool": {"type": "string", "enum": [t.name]},
                                "arguments": params,
                                "why": {"type": "string", "maxLength": 60}},
                               ["tool", "arguments", "why"]))
        return _obj({"calls": {"type": "array", "maxItems": max_calls,
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
        from features.run import Run
        from features.runs import RunError, resolve

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
        return self._keep(self._fit(ToolResult(name, args, True, data)))

    def _keep(self, result: ToolResult) -> ToolResult:
        self.results.append(result)
        return result

    def _fit(self, result: ToolResult) -> ToolResult:
        """Make the JSON fit the cap, never failing for size: first drop the help texts
        (:data:`HELP_KEYS`), then list items (from the longest list's end), then shorten
        the longest strings. A small model's small cap still gets the numbers."""
        data = result.data
        for key in HELP_KEYS:
            if len(result.to_json()) <= self.result_chars:
                return result
            if isinstance(data, dict) and key in data:
                del data[key]
                result.truncated = True
        while len(result.to_json()) > self.result_chars:
            lists = [lst for lst in _lists(data) if lst]
            if lists:
                longest = max(lists, key=lambda lst: len(json.dumps(lst, default=str)))
                longest.pop()
            elif not _shorten_longest_string(data):
                return ToolResult(result.tool, result.arguments, False,
                                  error="the result is too large to show; narrow it down")
            result.truncated = True
        return result


HELP_KEYS = ("meaning", "words")
"""Keys of results that explain rather than report (dropped first when space is short)."""


def _shorten_longest_string(obj: Any) -> bool:
    """Halve the longest string (over 80 characters) inside ``obj``; False when none."""
    best: tuple[int, Any, Any] | None = None
    stack = [obj]
    while stack:
        cur = stack.pop()
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) \
            if isinstance(cur, list) else ()
        for k, v in items:
            if isinstance(v, str) and len(v) > 80 and (best is None or len(v) > best[0]):
                best = (len(v), cur, k)
            elif isinstance(v, dict | list):
                stack.append(v)
    if best is None:
        return False
    _, holder, key = best
    text = holder[key]
    holder[key] = text[: max(40, len(text) // 2)] + "…"  # always shorter: len > 80
    return True


def _lists(obj: Any) -> Any:
    if isinstance(obj, list):
        yield obj
        for x in obj:
            yield from _lists(x)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _lists(v)


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
    return _obj(props, list(props))
