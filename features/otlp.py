"""A run as one OpenTelemetry trace, in OTLP/JSON: the JSON form of an
``ExportTraceServiceRequest`` (opentelemetry-proto), for users who already run a collector
(Jaeger, Tempo, an OpenTelemetry Collector). Pure data: no network (the CLI posts it).

The shape, and why:

- **One trace per run.** Its id is the pool uuid itself (``08a98d9a-...`` ->
  ``08a98d9a...``, 32 hex), so a trace found in a backend leads back to the pool and the
  pool to the trace; a pool directory not named by a uuid gets a SHA-256 of its name. Its
  root span ``run <pool>`` goes from the run's first record to its last.
- **A span per action** (kind CLIENT, ``rpc.service``/``rpc.method`` = agent class and
  action), caller and agent sides joined by the action tag (:meth:`features.run.Run.actions`),
  from the caller's ``start`` to its ``success|exception|cancelled``, in the caller's
  resource. The caller's ``sending`` and ``waiting`` records are span events (instants).
- **The execution is a child span** (kind SERVER) in the *agent's* resource, not an event:
  it runs in another process, which OTel models as a client span with a server child, each
  in its own process; a backend then draws the caller -> agent edge (service graphs), and
  calls an agent makes from inside an action hang under that action's execution. Queue and
  reply are the two gaps between the client span and its server child: transit between two
  processes' clocks that neither process owns, so no span of their own; their seconds are
  attributes (``academy.queue_s``, ``academy.reply_s``). An action seen only on the agent
  side (orphaned) is one span, its execution, in the agent's resource.
- **Parents.** Action spans are children of the run's root span, except a call made by an
  agent while exactly one of its own executions was open (time containment in the same
  process: the pool records no causality between calls): then that execution is its
  parent (``academy.parent`` = ``contained``). With several executions open at once the
  parent is not knowable; the span stays under the root with
  ``academy.parent_candidates`` = how many.
- **Resources.** One ``ResourceSpans`` per (process, agent): ``service.name`` is the agent
  class (``service.instance.id`` its uuid), or ``academy-client`` for the user side of a
  process; ``process.pid``, the pool file and its end as attributes. Each agent also has a
  lifetime span (launched -> gone, with its start-up and shutdown steps as events), since
  start-up is where runs lose time.
- **Ids are stable**: span ids are the first 8 bytes of SHA-256 over (pool, kind, action
  tag or agent uuid), so exporting a run twice gives the same bytes.

Encoding (OTLP specification, "JSON Protobuf Encoding"): lowerCamelCase keys, trace and
span ids as hex (not base64 as in the plain protobuf JSON mapping), enums as integers,
64-bit integers (times in unix nanoseconds, ``intValue``) as decimal strings.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from features.otlp_wire import (
    MAX_REQUEST_BYTES,
    attributes,
    batches,
    dumps,
    nanos,
    number,
    span_count,
    span_id,
    text,
    trace_id,
    value,
)
from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["MAX_REQUEST_BYTES", "attributes", "batches", "build", "dumps", "exec_span",
           "nanos", "span_count", "span_id", "trace_id", "value"]


def _version() -> str:
    try:
        return metadata.version("academy-tui")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "0"


SCOPE = {"name": "academy-tui", "version": _version()}
CLIENT_SERVICE = "academy-client"

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

_AGENT_STEPS = (("launched", "t_launched"), ("starting", "t_starting"),
                ("running", "t_running"), ("shutting_down", "t_shutting_down"),
                ("shutdown", "t_shutdown"), ("crash", "t_crash"))


# -- the request -----------------------------------------------------------------------


def build(run: Run, actions: Table | None = None) -> dict[str, Any]:
    """The ``ExportTraceServiceRequest`` of ``run`` (``actions``: a subset of
    ``run.actions()``, e.g. filtered; the root and agent spans are always there).

    The garbage collector is paused meanwhile: the request is ~15 small acyclic dicts a
    span, and each full collection walks the loaded run too. 71,424 actions of a
    1M-record pool (bench/make_pool.py): 5.4 s with it running, 1.6 s paused."""
    acts = run.actions() if actions is None else actions
    paused = gc.isenabled()
    gc.disable()
    try:
        return _Builder(run, acts).request()
    finally:
        if paused:
            gc.enable()


class _Builder:
    def __init__(self, run: Run, actions: Table) -> None:
        self.run = run
        self.pool = run.uuid
        self.trace = trace_id(self.pool)
        self.acts = actions.records()
        self.agents = {a["agent_id"]: a for a in run.agents().records()}
        self.procs = {p["file"]: p for p in run.processes().records()}
        ev = run.events()
        ends = [t for a in self.acts for t in (number(a["t_end"]), number(a["t_exec_end"]))
                if t is not None]
        self.t0 = min([ev.t0, *[t for a in self.acts if (t := number(a["t_start"]))]])
        self.t1 = max([ev.t1, *ends])
        self.root = span_id(self.pool, "run", "")
        self.groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.exc = _exceptions(run)

    def request(self) -> dict[str, Any]:
        if not self.run.events().n:  # no records, no times: no envelope (OTLP: send none)
            return {"resourceSpans": []}
        first = min(self.procs.values(), key=lambda p: number(p["t_first"]) or math.inf,
                    default=None)
        self._add(first["file"] if first else "", "", self._span(
            self.root, "", f"run {self.pool}", KIND_INTERNAL, self.t0, self.t1,
            {"academy.span": "run", "academy.pool": self.pool,
             "academy.actions": len(self.acts), "academy.agents": len(self.agents),
             "academy.processes": len(self.procs),
             "academy.records": self.run.store.stats.records}))
        for a in self.agents.values():
            self._agent(a)
        parents = _Containment(self.acts)
        for a in self.acts:
            self._action(a, parents)
        out = []
        for (file, agent), spans in sorted(self.groups.items()):
            spans.sort(key=lambda s: (int(s["startTimeUnixNano"]), s["spanId"]))
            out.append({"resource": {"attributes": self._resource(file, agent)},
                        "scopeSpans": [{"scope": SCOPE, "spans": spans}]})
        return {"resourceSpans": out}

    # -- pieces --------------------------------------------------------------------------

    def _add(self, file: str | None, agent: str | None, span: dict[str, Any]) -> None:
        self.groups.setdefault((file or "", agent or ""), []).append(span)

    def _span(self, sid: str, parent: str, name: str, kind: int, t0: float, t1: float,
              attrs: dict[str, Any], events: Iterable[tuple[str, float | None]] = (),
              status: tuple[int, str] = (STATUS_UNSET, "")) -> dict[str, Any]:
        span: dict[str, Any] = {"traceId": self.trace, "spanId": sid, "name": text(name),
                                "kind": kind, "startTimeUnixNano": nanos(t0),
                                "endTimeUnixNano": nanos(max(t0, t1)),
                                "attributes": attributes(attrs)}
        if parent:
            span["parentSpanId"] = parent
        evs = [{"timeUnixNano": nanos(t), "name": n} for n, t in events if t is not None]
        if evs:
            span["events"] = evs
        if status[0]:
            span["status"] = {"code": status[0], **({"message": text(status[1])}
                                                     if status[1] else {})}
        return span

    def _resource(self, file: str, agent: str) -> list[dict[str, Any]]:
        p = self.procs.get(file, {})
        a = self.agents.get(agent, {}) if agent else {}
        return attributes({
            "service.name": (a.get("class") or "academy-agent") if agent else CLIENT_SERVICE,
            "service.namespace": "academy",
            "service.instance.id": (a.get("uuid") or agent) if agent
            else (file.removesuffix(".jsonlog") or None),
            "process.pid": p.get("pid"),
            "academy.pool": self.pool,
            "academy.process.file": file or None,
            "academy.process.name": p.get("processName"),
            "academy.process.end": p.get("end"),
            "academy.agent.id": agent or None,
            "academy.agent.uuid": a.get("uuid"),
            "academy.agent.class": a.get("class"),
            "academy.agent.name": a.get("name"),
            "academy.agent.status": a.get("status"),
        })

    def _agent(self, a: dict[str, Any]) -> None:
        times = [t for _, col in _AGENT_STEPS if (t := number(a[col])) is not None]
        if not times:
            return
        end = number(a["t_gone"]) or max(times)
        crashed = bool(a.get("crashed"))
        status = (STATUS_ERROR, a.get("crash_reason") or "crashed") if crashed else \
            (STATUS_UNSET, "")
        self._add(a["file"] or a["launch_file"], a["agent_id"], self._span(
            span_id(self.pool, "agent", a["uuid"] or a["agent_id"]), self.root,
            f"agent {a['class'] or a['agent_id']}", KIND_INTERNAL, min(times), end,
            {"academy.span": "agent", "academy.agent_id": a["agent_id"],
             "academy.agent_class": a["class"], "academy.agent.status": a["status"],
             "academy.startup_s": _diff(a["t_launched"], a["t_running"])},
            [(n, number(a[col])) for n, col in _AGENT_STEPS], status))

    def _action(self, a: dict[str, Any], parents: _Containment) -> None:
        tag, agent = a["tag"], a["agent_id"]
        cls = a["agent_class"] or "unknown"
        name = f"{cls}/{a['action']}"
        t_start, t_end = number(a["t_start"]), number(a["t_end"])
        x0, x1 = number(a["t_exec_start"]), number(a["t_exec_end"])
        caller_seen = t_start is not None
        attrs: dict[str, Any] = {
            "academy.span": "call" if caller_seen else "execute",
            "rpc.system": "academy", "rpc.service": cls, "rpc.method": a["action"],
            "academy.action": a["action"], "academy.action_tag": tag,
            "academy.status": a["status"], "academy.caller": a["caller"],
            "academy.agent_id": agent, "academy.agent_class": a["agent_class"],
            "academy.queue_s": number(a["queue_s"]), "academy.exec_s": number(a["exec_s"]),
            "academy.reply_s": number(a["reply_s"]), "academy.total_s": number(a["total_s"]),
        }
        enclosing, how = parents.parent(a)
        if how:
            attrs[how[0]] = how[1]
        parent = exec_span(self.pool, enclosing) if enclosing else self.root
        exc = self.exc.get(tag)
        status = {"ok": (STATUS_OK, ""),
                  "exception": (STATUS_ERROR, exc[1] if exc else "exception")
                  }.get(a["status"], (STATUS_UNSET, ""))
        if not caller_seen:  # the agent side only: the execution is the action's one span
            start = x0 if x0 is not None else self.t0
            self._add(a["agent_file"], agent, self._span(
                exec_span(self.pool, tag), parent, name, KIND_SERVER, start,
                x1 if x1 is not None else self.t1, attrs, status=status))
            return
        assert t_start is not None
        attrs["academy.in_flight"] = True if t_end is None else None
        call = span_id(self.pool, "call", tag)
        self._add(a["caller_file"], a["caller"] if a["caller"] in self.agents else "",
                  self._span(call, parent, name, KIND_CLIENT, t_start,
                             t_end if t_end is not None else self.t1, attrs,
                             [("sending", number(a["t_sending"])),
                              ("waiting", number(a["t_waiting"]))], status))
        if x0 is None:
            return
        x_status = (STATUS_ERROR, exc[1]) if exc else \
            ((STATUS_OK, "") if x1 is not None else (STATUS_UNSET, ""))
        x = self._span(exec_span(self.pool, tag), call, name, KIND_SERVER, x0,
                       x1 if x1 is not None else self.t1,
                       {"academy.span": "execute", "rpc.system": "academy",
                        "rpc.service": cls, "rpc.method": a["action"],
                        "academy.action_tag": tag, "academy.agent_id": agent,
                        "academy.exec_s": number(a["exec_s"])}, status=x_status)
        if exc:
            x["events"] = [{"timeUnixNano": nanos(exc[3]), "name": "exception",
                            "attributes": attributes({"exception.type": exc[0],
                                                      "exception.message": exc[1],
                                                      "exception.stacktrace": exc[2]})}]
        self._add(a["agent_file"], agent, x)


def exec_span(pool: str, tag: str) -> str:
    """The span id of an action's execution (what nested calls name as their parent)."""
    return span_id(pool, "execute", tag)


def _diff(a: Any, b: Any) -> float | None:
    x, y = number(a), number(b)
    return None if x is None or y is None else y - x


class _Containment:
    """Which execution of the calling agent was open when a call started: per agent, its
    executions sorted by start; a call's candidates are those started at or before it and
    not ended before it. One candidate: the parent; several: not knowable."""

    def __init__(self, acts: list[dict[str, Any]]) -> None:
        by: dict[str, list[tuple[float, float, str]]] = {}
        for a in acts:
            x0 = number(a["t_exec_start"])
            if x0 is None or not a["agent_id"]:
                continue
            x1 = number(a["t_exec_end"])
            by.setdefault(a["agent_id"], []).append(
                (x0, math.inf if x1 is None else max(x0, x1), a["tag"]))
        self.index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = {}
        for agent, xs in by.items():
            xs.sort()
            self.index[agent] = (np.array([x[0] for x in xs]), np.array([x[1] for x in xs]),
                                 np.sort(np.array([x[1] for x in xs])), [x[2] for x in xs])

    def parent(self, a: dict[str, Any]) -> tuple[str | None, tuple[str, Any] | None]:
        """(the tag of the enclosing execution or None, the attribute that says how)."""
        t = number(a["t_start"])
        if t is None:
            t = number(a["t_exec_start"])
        idx = self.index.get(a["caller"])
        if idx is None or t is None:
            return None, None
        starts, ends, sorted_ends, tags = idx
        k = int(np.searchsorted(starts, t, side="right"))
        open_n = k - int(np.searchsorted(sorted_ends, t, side="left"))
        if open_n > 1:
            return None, ("academy.parent_candidates", open_n)
        for j in range(k - 1, -1, -1) if open_n == 1 else ():
            if ends[j] >= t and tags[j] != a["tag"]:
                return tags[j], ("academy.parent", "contained")
        return None, None


def _exceptions(run: Run) -> dict[str, tuple[str, str, str, float]]:
    """Per action tag whose execution raised: (type, message, traceback, time), read from
    the agent's ``execute_exception`` record (the caller's record holds no traceback)."""
    ev = run.events()
    if "academy.action_state" not in ev.store.key_shapes:
        return {}
    state = ev.strings("academy.action_state")
    rows = np.flatnonzero(state == "execute_exception")
    if not len(rows):
        return {}
    tags = ev.strings("academy.action_tag")[rows]
    out = {}
    for r, tag, rec in zip(rows.tolist(), tags.tolist(), ev.records(rows), strict=True):
        tb = "" if rec is None else str(rec.get("exc_text") or "")
        tb = "" if tb == "None" else tb
        last = tb.rstrip().rsplit("\n", 1)[-1] if tb else ""
        typ, _, msg = last.partition(": ")
        if tag:
            out[str(tag)] = (typ.strip() or "exception", msg.strip() or last.strip(),
                             tb, float(ev.created[r]))
    return out
