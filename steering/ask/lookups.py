"""What the ask tools compute: plain dicts over :mod:`features`, with evidence ids.

Each function takes the run and already schema-checked arguments and returns a JSON-ready
dict; it raises :class:`ToolArgError` when an argument is well-formed but means nothing
here (an unknown agent, a filter that does not parse). Times are seconds since the run's
first record (``*_s`` relative, rounded); log text is clipped.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from features.record_keys import FLAG_EXC
from steering.ask.refs import act_ref, agent_ref, ev_ref

if TYPE_CHECKING:
    from features.detect import DetectionResult
    from features.run import Run
    from features.table import Table

__all__ = ["ToolArgError", "action_item", "clip", "detection", "ev_at", "event_item", "find_agent",
           "group_stats", "key_counts", "list_things", "num", "query_events", "rel"]

TEXT_LIMIT = 160
"""Characters of one log-derived string in a result."""


class ToolArgError(ValueError):
    """An argument that is valid JSON but names nothing in this run."""


def num(x: Any, digits: int = 4) -> float | int | None:
    """A plain, rounded number (``None`` for NaN and missing)."""
    if x is None:
        return None
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if not isinstance(x, float) or not math.isfinite(x):
        return None
    return round(x, digits)


def rel(run: Run, t: Any) -> float | None:
    """Seconds since the run's first record."""
    v = num(t, 9)
    return None if v is None else num(float(v) - run.events().t0)


def clip(s: Any, limit: int = TEXT_LIMIT) -> str | None:
    """Log text, one line, at most ``limit`` characters."""
    if s is None:
        return None
    text = " ".join(str(s).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ev_at(run: Run, row: Any) -> str | None:
    """The ``ev:`` id of an event row (``None`` for -1, and for a row whose line is not
    known: :meth:`features.events.Events.line_text`)."""
    r = int(row) if row is not None else -1
    ev = run.events()
    if r < 0 or r >= ev.n or ev.line[r] <= 0:
        return None
    return ev_ref(ev.file_names[ev.file[r]], int(ev.line[r]))


def detection(run: Run) -> DetectionResult:
    """:func:`features.detect.detection` of the run, kept with it until it grows (shared
    with the report; imported here: scikit-learn is a heavy import)."""
    from features import detect

    return detect.detection(run)


# -- events ------------------------------------------------------------------------------

def event_item(run: Run, row: int) -> dict[str, Any]:
    """One event as a tool shows it."""
    ev = run.events()
    tag = _cat(run, "academy.action_tag", row)
    level = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(
        int(ev.ints["levelno"][row]), str(int(ev.ints["levelno"][row])))
    item = {"ev": ev_at(run, row), "t_s": rel(run, ev.created[row]), "level": level,
            "logger": _cat(run, "name", row), "agent": run.event_agents_at(np.array([row]))[0],
            "action": _cat(run, "academy.action", row),
            "act": act_ref(tag) if tag else None,
            "state": _cat(run, "academy.action_state", row),
            "message": clip(ev.message[row]),
            "exception": _exception(run, row)}
    return {k: v for k, v in item.items() if v is not None}


def _exception(run: Run, row: int) -> str | None:
    """The last line of the record's traceback ("TimeoutError", "RuntimeError: ..."): what
    was raised, which the message often leaves out."""
    ev = run.events()
    if not (ev.flags[row] & FLAG_EXC):
        return None
    text = ev.lazy("exc_text")[row]
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    return clip(lines[-1].strip(), 160) if lines else None


def _cat(run: Run, key: str, row: int) -> str | None:
    ev = run.events()
    if key not in ev.codes:
        return None
    code = int(ev.codes[key][row])
    return None if code < 0 else str(ev.store.cats[key].values[code])


def query_events(run: Run, where: str | dict[str, Any], limit: int = 20,
                 order: str = "first") -> dict[str, Any]:
    """Events matching a filter (text or JSON AST): how many, by level, and the first (or
    last) ``limit`` of them."""
    from features import query

    try:
        node = query.from_json(where) if isinstance(where, dict) else query.parse(where)
    except query.QueryError as exc:
        where_text = f" at character {exc.position}" if exc.position is not None else ""
        raise ToolArgError(f"bad filter: {exc.message}{where_text}") from None
    ev = run.events()
    try:
        rows = query.select(ev, node)
    except query.QueryError as exc:
        raise ToolArgError(f"bad filter: {exc.message}") from None
    picked = rows[:limit] if order == "first" else rows[-limit:][::-1]
    lv = ev.ints["levelno"][rows]
    by_level = {name: int((lv == n).sum()) for n, name in ((50, "CRITICAL"), (40, "ERROR"),
                                                           (30, "WARNING"), (20, "INFO"),
                                                           (10, "DEBUG")) if (lv == n).any()}
    out: dict[str, Any] = {"filter": query.to_text(node), "count": len(rows),
                           "by_level": by_level, "order": order,
                           "events": [event_item(run, int(r)) for r in picked]}
    notes = query.explain(node, ev)[:3]
    if notes:
        out["notes"] = notes
    return out


def find_agent(run: Run, text: str) -> tuple[str, str | None]:
    """``(agent_id, class)`` of the agent ``text`` names: ``AgentId<...>``, a hex prefix
    of its id or uuid, its name, or a class with one agent. :class:`ToolArgError` says
    why not (with the candidates) otherwise."""
    from features.normalize import canonical_id

    ag = run.agents()
    ids = [str(a) for a in ag["agent_id"].tolist()]
    classes = [str(c) for c in ag["class"].tolist()]
    want = text.strip().removeprefix("agent:")
    canon = canonical_id(want) or want
    hits = [i for i, a in enumerate(ids) if a == canon]
    if not hits:
        low = want.lower().removeprefix("agentid<").rstrip(">")
        if low:
            hits = [i for i, a in enumerate(ids)
                    if a.lower().removeprefix("agentid<").rstrip(">").startswith(low)
                    or str(ag["uuid"][i] or "").startswith(low)
                    or str(ag["name"][i] or "").lower() == low]
    if not hits:
        hits = [i for i, c in enumerate(classes) if c.lower() == want.lower()]
    if len(hits) == 1:
        return ids[hits[0]], classes[hits[0]]
    shown = ", ".join(f"{ids[i]} ({classes[i]})" for i in (hits or range(len(ids)))[:8])
    if hits:
        raise ToolArgError(f"{want[:60]!r} names {len(hits)} agents: {shown}")
    raise ToolArgError(f"no agent {want[:60]!r} in this run; agents: {shown or 'none'}")


# -- things ------------------------------------------------------------------------------

ACTION_SORTS = ("total_s", "exec_s", "queue_s", "reply_s", "start_s")
AGENT_SORTS = ("startup_s", "launched_s", "shutdown_s")
PROCESS_SORTS = ("records", "errors", "warnings", "start_s", "end_s", "duration_s")
SORTS = {"actions": ACTION_SORTS, "agents": AGENT_SORTS, "processes": PROCESS_SORTS}


def action_item(run: Run, r: dict[str, Any]) -> dict[str, Any]:
    """One action (a record of ``run.actions()``) as a tool shows it."""
    row = r["row_start"] if r["row_start"] is not None and r["row_start"] >= 0 \
        else r["row_exec"]
    return {"act": act_ref(r["tag"]), "action": r["action"],
            "agent": agent_ref(r["agent_id"]) if r["agent_id"] else None,
            "agent_class": r["agent_class"], "status": r["status"],
            "start_s": rel(run, r["t_start"] if r["t_start"] is not None
                           else r["t_exec_start"]),
            "end_s": rel(run, r["t_end"] if r["t_end"] is not None and r["t_end"] == r["t_end"]
                         else r["t_exec_end"]),
            "total_s": num(r["total_s"]), "queue_s": num(r["queue_s"]),
            "exec_s": num(r["exec_s"]), "reply_s": num(r["reply_s"]),
            "ev": ev_at(run, row)}


def _sorted(table: Table, key: str, descending: bool) -> Table:
    return table.sort(key, descending=descending) if key in table else table


def list_things(run: Run, kind: str, sort: str | None = None, descending: bool = True,
                limit: int = 10, action: str | None = None, status: str | None = None,
                agent: str | None = None) -> dict[str, Any]:
    """Actions, agents or processes, filtered, sorted and cut to ``limit``."""
    sort = sort or SORTS[kind][0]
    if sort not in SORTS[kind]:
        raise ToolArgError(f"sort {sort!r} does not apply to {kind}; use one of "
                           + ", ".join(SORTS[kind]))
    ev = run.events()
    if kind == "actions":
        acts = run.actions()
        acts = acts.with_column("start_s", np.where(np.isnan(acts["t_start"]),
                                                    acts["t_exec_start"], acts["t_start"])
                                - ev.t0)
        mask = np.ones(len(acts), dtype=bool)
        if action:
            mask &= acts["action"] == action
        if status:
            mask &= acts["status"] == status
        if agent:
            aid, _ = find_agent(run, agent)
            mask &= acts["agent_id"] == aid
        picked = _sorted(acts.where(mask), sort, descending)
        items = [action_item(run, r) for r in picked.head(limit).records()]
        total = int(mask.sum())
    elif kind == "agents":
        ag = run.agents()
        ag = ag.with_column("startup_s", ag["t_running"] - ag["t_launched"]) \
            .with_column("launched_s", ag["t_launched"] - ev.t0) \
            .with_column("shutdown_s", ag["t_shutdown"] - ev.t0)
        mask = np.ones(len(ag), dtype=bool)
        if status:
            mask &= ag["status"] == status
        picked = _sorted(ag.where(mask), sort, descending)
        items = [{"agent": agent_ref(r["agent_id"]), "class": r["class"],
                  "status": r["status"], "process": (r["file"] or "?")[:8],
                  "launched_s": num(r["launched_s"]), "startup_s": num(r["startup_s"]),
                  "shutdown_s": num(r["shutdown_s"]),
                  "ev": ev_at(run, r["row_running"] if r["row_running"] >= 0
                              else r["row_launched"])}
                 for r in picked.head(limit).records()]
        total = int(mask.sum())
    else:
        procs = run.processes()
        procs = procs.with_column("start_s", procs["t_first"] - ev.t0) \
            .with_column("end_s", procs["t_last"] - ev.t0)
        first = _first_rows(run)
        procs = procs.with_column("row_first", first)
        picked = _sorted(procs, sort, descending)
        items = [{"process": str(r["file"])[:8], "pid": r["pid"],
                  "processName": clip(r["processName"], 60), "records": r["records"],
                  "errors": r["errors"], "warnings": r["warnings"],
                  "start_s": num(r["start_s"]), "end_s": num(r["end_s"]),
                  "duration_s": num(r["duration_s"]), "end": r["end"],
                  "ev": ev_at(run, r["row_first"])} for r in picked.head(limit).records()]
        total = len(procs)
    return {"kind": kind, "sort": sort, "descending": descending, "matching": total,
            "shown": len(items), "items": items}


def _first_rows(run: Run) -> np.ndarray:
    ev = run.events()
    out = np.full(len(ev.file_names), -1, dtype=np.int64)
    order = ev.order
    files = ev.file[order]
    _, first = np.unique(files, return_index=True)
    out[np.unique(files)] = order[first]
    return out


GROUP_BY = {"class_action": ("agent_class", "action"), "action": ("action",),
            "agent": ("agent_id",), "caller": ("caller",), "status": ("status",)}
VALUES = ("total_s", "exec_s", "queue_s", "reply_s")


def group_stats(run: Run, by: str = "class_action", value: str = "total_s",
                limit: int = 10) -> dict[str, Any]:
    """Per group of actions: count, errors, p50, p95, max, mean and the slowest call."""
    from features.analyses import group_stats as stats

    acts = run.actions()
    keys = GROUP_BY[by]
    table = stats(acts, by=keys, value=value)
    groups = []
    for rec in table.records()[:limit]:
        mask = np.ones(len(acts), dtype=bool)
        for k in keys:
            mask &= acts[k] == rec[k]
        idx = np.flatnonzero(mask & ~np.isnan(acts[value]))
        slowest = None
        if len(idx):
            slowest = action_item(run, acts.row(int(idx[np.argmax(acts[value][idx])])))
        groups.append({**{k: rec[k] for k in keys}, "count": rec["count"],
                       "errors": rec["errors"], "unfinished": rec["unfinished"],
                       "p50_s": num(rec["p50_s"]), "p95_s": num(rec["p95_s"]),
                       "max_s": num(rec["max_s"]), "mean_s": num(rec["mean_s"]),
                       "sum_s": num(rec["sum_s"]),
                       "slowest": {k: slowest[k] for k in ("act", "total_s", "ev")}
                       if slowest else None})
    return {"by": by, "value": value, "groups": groups, "total_groups": len(table)}


def key_counts(run: Run, skip: Collection[str] = (), limit: int = 40) -> list[tuple[str, int]]:
    """Keys beyond the standard logging ones, with how many events carry each."""
    counts = run.events().key_counts()
    std = set(skip)
    keys = sorted(((k, c) for k, c in counts.items() if k not in std), key=lambda kc: -kc[1])
    return keys[:limit]
