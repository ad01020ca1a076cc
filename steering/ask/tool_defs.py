"""The tools a model may call, as data: each one's name, description, argument schema and
the function of :mod:`~steering.ask.lookups`, :mod:`~steering.ask.insights` or
:mod:`~steering.ask.facts` it runs.

Apart from :mod:`steering.ask.tools` (the :class:`~steering.ask.tools.Toolbox` that checks
arguments and caps results) so the long list of tools reads on its own and a new tool is
one entry here. Every string in every schema has a ``maxLength`` or an ``enum`` (small
models loop inside unbounded strings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from steering.ask import facts, insights, lookups

if TYPE_CHECKING:
    from features.run import Run


class ToolHost(Protocol):
    """What a tool's function reads from the toolbox that calls it (the
    :class:`~steering.ask.tools.Toolbox`; a protocol, so this module need not import it)."""

    run: Run
    expected_s: float | None

    def other_run(self, text: str) -> Run: ...


@dataclass(frozen=True)
class Tool:
    """One tool: name, what it does, its parameters' JSON schema and its function."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[[ToolHost, dict[str, Any]], dict[str, Any]]


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


def object_schema(props: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A closed JSON-schema object with these properties."""
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


def all_tools() -> list[Tool]:
    """Every tool, in the order a model is shown them."""
    return [*_lookup_tools(), *_whole_run_tools(), *_fact_tools(), _events_at_tool()]


def _lookup_tools() -> list[Tool]:
    """Events, things and groups as the run's tables hold them (:mod:`~steering.ask.lookups`)."""
    L = lookups
    return [
        Tool("query_events", "Events matching a filter: how many, per level, and the first "
             "(or last) of them with their evidence ids.",
             object_schema({"where": _filter_schema(),
                            "order": {"type": "string", "enum": ["first", "last"]},
                            "limit": _limit(20, 50)}, ["where"]),
             lambda tb, a: L.query_events(tb.run, a["where"], a.get("limit") or 20,
                                          a.get("order") or "first")),
        Tool("list_things", "Actions, agents or processes, sorted (actions by total_s, "
             "exec_s, queue_s, reply_s or start_s; agents by startup_s, launched_s or "
             "shutdown_s; processes by records, errors, warnings, start_s, end_s or "
             "duration_s), optionally only one action name, status or agent.",
             object_schema({
                 "kind": {"type": "string", "enum": ["actions", "agents", "processes"]},
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
             object_schema({"by": {"type": "string", "enum": list(L.GROUP_BY)},
                            "value": {"type": "string", "enum": list(L.VALUES)},
                            "limit": _limit(10, 30)}),
             lambda tb, a: L.group_stats(tb.run, a.get("by") or "class_action",
                                         a.get("value") or "total_s", a.get("limit") or 10)),
    ]


def _whole_run_tools() -> list[Tool]:
    """Analyses of the whole run's time (:mod:`~steering.ask.insights`)."""
    A = insights
    return [
        Tool("where_time_went", "The run's wall time split into execution, queue, reply, "
             "caller, startup, shutdown and idle (they add up to it), against the expected "
             "time if given.",
             object_schema({"expected_s": {"type": "number", "minimum": 0, "maximum": 1e7}}),
             lambda tb, a: A.where_time_went(
                 tb.run, a["expected_s"] if a.get("expected_s") is not None
                 else tb.expected_s)),
        Tool("anomalies", "Slowdowns and possibly hung calls (with what differs about the "
             "slow calls), unfinished actions, crashed agents, processes that ended "
             "abruptly.",
             object_schema({"limit": _limit(5, 10)}),
             lambda tb, a: A.anomalies(tb.run, a.get("limit") or 5)),
        Tool("concurrency", "How many at once: actions executing, calls in flight or agents "
             "alive; the maximum, when, the mean and the actions at the maximum.",
             object_schema({"what": {"type": "string",
                                     "enum": ["executing", "in flight", "agents"]}}),
             lambda tb, a: A.concurrency(tb.run, a.get("what") or "executing")),
        Tool("diff_run", "Compare this run with another run of the workflow (its uuid, a "
             "uuid prefix or 'latest'): wall time, where the difference went, per action.",
             object_schema({"other": {"type": "string", "minLength": 1, "maxLength": 64}},
                           ["other"]),
             lambda tb, a: A.diff_run(tb.run, tb.other_run(a["other"]))),
    ]


def _fact_tools() -> list[Tool]:
    """Counted facts about the run and its steering (:mod:`~steering.ask.facts`)."""
    F = facts
    return [
        Tool("run_facts", "The run's status (and the rule that decided it), wall time, and "
             "counts with what they count: records, files, processes (ended abruptly), "
             "agents launched and by status, calls by outcome and by action, error and "
             "warning records, incidents by kind, crashed agents with when and why, "
             "steering counts.",
             object_schema({}), lambda tb, a: F.run_facts(tb.run)),
        Tool("steering", "What the steering agents did, from their verified records only: "
             "each suggestion (when, target, call, state, summary), each agent's state, and "
             "how many records with steering keys were not counted.",
             object_schema({"limit": _limit(10, 30)}),
             lambda tb, a: F.steering_facts(tb.run, a.get("limit") or 10)),
    ]


def _events_at_tool() -> Tool:
    """One agent at one moment (:mod:`~steering.ask.insights`); kept last, where it has
    always been: the order of the tools is part of every prompt that lists them."""
    return Tool(
        "events_at", "What one agent was doing at a time (seconds since the run "
        "started): its state, the action it executed, the calls before and after, "
        "its nearest events.",
        object_schema({"agent": {"type": "string", "minLength": 1, "maxLength": 100,
                                 "description": "AgentId<...>, an id prefix or a class name"},
                       "time_s": {"type": "number", "minimum": 0, "maximum": 1e7},
                       "window_s": {"type": "number", "minimum": 0, "maximum": 3600}},
                      ["agent", "time_s"]),
        lambda tb, a: insights.events_at(tb.run, a["agent"], float(a["time_s"]),
                                         float(a.get("window_s") or 1.0)))
