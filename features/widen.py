"""Every action widened into one row of fields, for comparing slow calls with the rest
(:mod:`features.explain`): its own columns, its agent's and its processes', how many
actions were executing or in flight when it started, and every wide key of its records
(agent side first, then caller side; the first non-null value wins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.action_records import in_windows
from features.analyses import sample_steps
from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

DURATIONS = ("total_s", "queue_s", "exec_s", "reply_s")
OWN = ("action", "agent_class", "status", "caller", "agent_id", "caller_file", "agent_file",
       *DURATIONS)
AGENT_COLS = ("pid", "uuid", "name", "status", "startup_s")
LOCATION_KEYS = ("process", "threadName", "taskName", "hostname")
"""Record keys also taken from the caller's side alone (as ``caller.<key>``)."""
SKIP_KEYS = frozenset({"formatted", "msg", "args", "created", "msecs", "relativeCreated",
                       "exc_info", "stack_info", "asctime", "academy.action_tag",
                       "academy.message_tag", "pathname", "filename", "module", "funcName",
                       "lineno", "thread", "processName"})
"""Record keys left out: they repeat another field (``formatted`` is ``message``,
``thread`` is ``threadName``, ``processName`` is the process file's, joined instead), are
times, or are the same for every action by construction (the first agent-side record is
always the runtime's ``execute_start``, so its logging site never varies). Each lazy key
is a pass over the pool's files, so this also keeps big runs quick."""
STANDARD_KEYS = frozenset({"name", "levelname", "levelno", "pathname", "filename", "module",
                           "exc_text", "lineno", "funcName", "message", "processName",
                           *LOCATION_KEYS,
                           *SKIP_KEYS})
def action_fields(run: Run) -> Table:
    """Every field of every action of ``run``, row for row with ``run.actions()``:
    its own columns (durations, status, caller, agent, files), ``start_s`` and how many
    actions were executing / in flight when it started, ``agent.*`` (the agent's pid,
    uuid, start-up time and the user keys of its records outside actions),
    ``processName`` and ``caller.processName`` (of the two sides' process files), every
    record key of its records and ``caller.<location key>``. Cached until the run
    grows."""
    return run.cached("explain.action_fields", lambda: _widen(run))


def _widen(run: Run) -> Table:
    ev = run.events()
    acts = run.actions()
    cols: dict[str, np.ndarray] = {k: acts[k] for k in OWN}
    t_start = np.where(np.isnan(acts["t_start"]), acts["t_exec_start"], acts["t_start"])
    t_exec = acts["t_exec_start"]
    cols["start_s"] = t_start - ev.t0
    for name, what, at in (("executing_at_start", "executing", t_exec),
                           ("in_flight_at_start", "in flight", t_start)):
        times, counts = run.concurrency(what)
        # The count just after the start: the action itself is one of them.
        vals = sample_steps(times, counts, np.nan_to_num(at)).astype(np.float64)
        vals[np.isnan(at)] = np.nan
        cols[name] = vals
    ag = run.agents()
    ag = ag.with_column("startup_s", ag["t_running"] - ag["t_launched"])
    ag = ag.with_column("pid", np.where(ag["pid"] < 0, np.nan, ag["pid"]))
    joined = acts.join(ag, on="agent_id", fields=list(AGENT_COLS), prefix="agent.")
    procs = run.processes()
    for f in AGENT_COLS:
        cols["agent." + f] = joined["agent." + f]
    for side, prefix in (("agent_file", ""), ("caller_file", "caller.")):
        cols[prefix + "processName"] = acts.join(procs, on=(side, "file"),
                                                 fields=["processName"])["processName"]
    cols.update(_record_fields(run, acts))
    return Table(cols, name="action_fields")


def _assign(run: Run, acts: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of each action's records: ``(rows, action index, side)`` sorted by
    action, side (0 agent, 1 caller) and time. Agent side: its ``execute_*`` records and
    the records in its agent's file between execute start and end that carry its agent id
    but no tag; caller side: the other records with its tag as action or message tag."""
    ev = run.events()
    tag_pos = {t: i for i, t in enumerate(acts["tag"].tolist())}
    rows_l, act_l, side_l = [], [], []
    st_codes, st_vals = ev.cat("academy.action_state")
    agent_states = np.array([str(v).startswith("execute_") for v in st_vals] + [False])
    no_tag = ev.codes["academy.action_tag"] < 0
    for tag_key in ("academy.action_tag", "academy.message_tag"):
        codes, values = ev.cat(tag_key)
        lut = np.array([tag_pos.get(v, -1) for v in values] + [-1], dtype=np.int64)
        act = lut[codes]
        rows = np.flatnonzero((act >= 0) & (no_tag if tag_key == "academy.message_tag" else True))
        rows_l.append(rows)
        act_l.append(act[rows])
        side_l.append(np.where(agent_states[st_codes[rows]], 0, 1))
    # Records with only an agent id: the action of that agent, in that file, that started
    # last before the record and had not ended (one sort instead of a loop per agent).
    aid_codes, aids = ev.cat("academy.agent_id")
    free = np.flatnonzero((aid_codes >= 0) & no_tag & (ev.codes["academy.message_tag"] < 0))
    aid_pos = {v: i for i, v in enumerate(aids)}
    act_aid = np.array([aid_pos.get(a, -1) for a in acts["agent_id"].tolist()], dtype=np.int64)
    rx = acts["row_exec"]
    act_file = np.where(rx >= 0, ev.file[np.maximum(rx, 0)], -1).astype(np.int64)
    xs, xe = acts["t_exec_start"], np.nan_to_num(acts["t_exec_end"], nan=np.inf)
    ok = np.flatnonzero((act_aid >= 0) & (act_file >= 0) & ~np.isnan(xs))
    r, cand = in_windows(ev, free, aid_codes, ok, act_aid, act_file, xs, xe)
    rows_l.append(r)
    act_l.append(cand)
    side_l.append(np.zeros(len(r), dtype=np.int64))
    rows, act, side = (np.concatenate(x).astype(np.int64) for x in (rows_l, act_l, side_l))
    o = np.lexsort((ev.created[rows], side, act))
    return rows[o], act[o], side[o]


def _first(col: np.ndarray, rows: np.ndarray, group: np.ndarray, size: int,
           missing_int: bool) -> np.ndarray:
    """Per group 0..size-1, the first non-null value of ``col`` among ``rows`` (in order)."""
    vals = col[rows]
    if vals.dtype.kind == "f":
        present = ~np.isnan(vals)
    elif vals.dtype.kind in "iu":
        present = vals != -1 if missing_int else np.ones(len(vals), bool)
    else:
        present = np.asarray(vals != None, dtype=bool)  # noqa: E711 (elementwise)
    u, first = np.unique(group[present], return_index=True)
    out = np.full(size, np.nan) if vals.dtype.kind in "fiu" else np.empty(size, dtype=object)
    out[u] = vals[present][first]
    return out


def _keys_of(run: Run, rows: np.ndarray) -> list[str]:
    ev = run.events()
    keys: dict[str, None] = {}
    for s in np.unique(ev.shape[rows]):
        keys.update(dict.fromkeys(ev.store.shape_keys[int(s)]))
    return [k for k in keys if k not in SKIP_KEYS]


def _record_fields(run: Run, acts: Table) -> dict[str, np.ndarray]:
    ev = run.events()
    n = len(acts)
    rows, act, side = _assign(run, acts)
    out: dict[str, np.ndarray] = {}
    if not len(rows):
        return out
    caller = side == 1
    for k in _keys_of(run, rows):
        col = ev.column(k)
        out[k] = _first(col, rows, act, n, k in ev.ints)
        if k in LOCATION_KEYS and caller.any():
            out["caller." + k] = _first(col, rows[caller], act[caller], n, k in ev.ints)
    # The agent's own user keys outside its actions (the driver's ``fib.pair`` record
    # names the generator it drives): one value per agent, joined to its actions.
    aid_codes, aids = ev.cat("academy.agent_id")
    mask = aid_codes >= 0
    mask[rows] = False
    arows = np.flatnonzero(mask)
    if len(arows):
        arows = arows[np.argsort(ev.created[arows], kind="stable")]
        aid_pos = {v: i for i, v in enumerate(aids)}
        act_aid = np.array([aid_pos.get(a, -1) for a in acts["agent_id"].tolist()])
        # Keys the actions' own records carry would mean something else here.
        own = set(out)
        for k in _keys_of(run, arows):
            if k in STANDARD_KEYS or k.startswith("academy.") or k in own:
                continue
            per_agent = _first(ev.column(k), arows, aid_codes[arows].astype(np.int64),
                               len(aids) + 1, False)
            out["agent." + k] = per_agent[np.where(act_aid >= 0, act_aid, len(aids))]
    return out
