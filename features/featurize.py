"""Numeric feature vectors for things (actions, agents, processes), for models.

>>> from features.featurize import action_features, ACTION_FEATURES
>>> feats = action_features(run)          # every action of the run
>>> feats.table["exec_s"], feats.X.shape, feats.names

Each function returns a :class:`Features`: a :class:`~features.table.Table` (the
identity columns, the raw group strings and every feature as a column) and the float
matrix ``X`` of the feature columns named in ``names`` (NaN where a value is undefined:
an in-flight action has no ``total_s``, a caller's first call has no idle gap).

For a live run, :class:`features.featurize_live.ActionFeaturizer` hands out only the
actions that completed since its previous call, with categorical codes that stay stable
from call to call.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

# Which records are an action's lives in action_records; its public names are still
# imported from here (forest, widen, notebooks), hence the re-exports.
from features.action_records import EXTRA_PREFIX as EXTRA_PREFIX
from features.action_records import action_rows as action_rows
from features.action_records import codes_of as codes_of
from features.action_records import extra_keys, extras
from features.action_records import in_windows as in_windows
from features.analyses import concurrency, sample_steps
from features.record_keys import PAYLOAD_ARGS, PAYLOAD_RESULT
from features.table import Table
from features.typed import payload_length

if TYPE_CHECKING:
    from features.events import Events
    from features.run import Run

ACTION_FEATURES: list[tuple[str, str]] = [
    ("queue_s", "queue/transit: caller 'sending' -> agent 'execute_start', seconds"),
    ("exec_s", "execution: agent 'execute_start' -> 'execute_success|exception', seconds"),
    ("reply_s", "reply: agent end -> caller 'success|exception', seconds"),
    ("total_s", "caller 'start' -> caller end, seconds"),
    ("caller_gap_s", "caller idle gap: time since the same caller's previous call ended, "
                     "seconds (NaN for its first call)"),
    ("args_len", "characters of academy.action_args + academy.action_kwargs on the "
                 "caller's start record"),
    ("result_len", "characters of academy.result on the caller's success record"),
    ("executing_at_start", "actions executing just after this one started executing "
                           "(itself included)"),
    ("start_offset_s", "time from the run's first event to the call's start, seconds"),
    ("call_index", "earlier calls of this action on the same agent (0: its first call, "
                   "the warm-up)"),
    ("agent_class_code", "integer code of the agent class (raw string: agent_class)"),
    ("action_code", "integer code of the action name (raw string: action)"),
    ("process_code", "integer code of the agent's process file (raw string: agent_file)"),
]
"""The action feature schema: (name, description). Besides these, every numeric user key
logged on the action's records (``fib.delay_s``, ...) becomes ``extra.<key>``: the last
value among the records with the action's tag and the records of its agent (same
``academy.agent_id``, same file, no tag) inside its execution window (see
:mod:`features.action_records`)."""

ACTION_IDENTITY = ("tag", "action", "agent_class", "agent_id", "caller", "agent_file",
                   "status", "t_start", "t_exec_start", "t_done", "row_start", "row_exec",
                   "row_end")
"""Columns of the action table that say which action a row is (not features)."""
CATEGORICAL = {"agent_class_code": "agent_class", "action_code": "action",
               "process_code": "agent_file"}
DONE = ("ok", "exception", "cancelled", "orphaned")
"""Statuses of an action that will not change any more (in a finished run)."""

AGENT_FEATURES: list[tuple[str, str]] = [
    ("startup_s", "'Launched agent' -> 'Running agent', seconds"),
    ("lifetime_s", "running (or launched) -> shutdown, crash or the last event, seconds"),
    ("actions", "actions called on the agent"),
    ("mean_exec_s", "mean execution time of its actions, seconds"),
    ("max_exec_s", "longest execution of its actions, seconds"),
    ("errors", "its actions that raised, plus one if the agent crashed"),
]
"""The agent feature schema: (name, description)."""

PROCESS_FEATURES: list[tuple[str, str]] = [
    ("records", "records in the process's file"),
    ("errors", "records at ERROR or above"),
    ("duration_s", "first -> last record, seconds"),
    ("start_offset_s", "run's first event -> the process's first record, seconds"),
]
"""The process feature schema: (name, description)."""


class Features(NamedTuple):
    """Rows of things with their features."""

    table: Table
    """Identity columns, raw group strings and every feature as a column."""
    X: np.ndarray
    """Float matrix, one row per table row, one column per name in ``names``."""
    names: list[str]
    """The feature columns of ``X``, in order."""


class Vocabulary:
    """Stable integer codes for categorical values (first seen, first coded)."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, int]] = {}

    def encode(self, field: str, values: np.ndarray) -> np.ndarray:
        """Codes of ``values`` (None -> -1), extending the field's vocabulary."""
        known = self.codes.setdefault(field, {})
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values.tolist()):
            out[i] = -1 if v is None else known.setdefault(str(v), len(known))
        return out


def _matrix(table: Table, names: Sequence[str]) -> np.ndarray:
    if not len(table):
        return np.empty((0, len(names)))
    return np.column_stack([np.asarray(table[n], dtype=np.float64) for n in names])


# -- actions ---------------------------------------------------------------------------


def action_features(run: Run, vocab: Vocabulary | None = None,
                    only: np.ndarray | Sequence[int] | None = None) -> Features:
    """Features of every action of ``run`` (see :data:`ACTION_FEATURES`), in start order.

    ``vocab`` keeps categorical codes stable across calls (a live featurizer passes
    its own); by default codes follow first appearance in this run. ``only`` (positions
    in ``run.actions()``) gives the features of those actions alone, in that order, with
    the same values as the full computation (what depends on other calls, such as
    ``call_index``, is still computed over all of them)."""
    ev = run.events()
    acts_all = run.actions()
    vocab = vocab if vocab is not None else Vocabulary()
    n_all = len(acts_all)
    idx = np.arange(n_all) if only is None else np.asarray(only, dtype=np.int64)
    acts = acts_all if only is None else acts_all.take(idx)
    # Columns that depend on other calls: over all actions, then taken.
    ts_all = np.where(np.isnan(acts_all["t_start"]), acts_all["t_exec_start"],
                      acts_all["t_start"])
    gap = _caller_gap(acts_all["caller"], ts_all, acts_all["t_end"],
                      None if only is None else idx)
    times, counts = concurrency(acts_all["t_exec_start"], acts_all["t_exec_end"], ev.t1)
    xs = acts["t_exec_start"]
    # The count just after the start, so the action itself is one of them.
    running = sample_steps(times, counts, np.nan_to_num(xs)).astype(np.float64)
    running[np.isnan(xs)] = np.nan
    call_index = _call_index(acts_all["agent_id"], acts_all["action"])[idx]
    xrows, xact, xkeys = extra_keys(ev, acts_all, None if only is None else idx)
    # User keys not kept at ingest (long or nested values) are read in one pass; the
    # arguments and results from the actions' own records only, uncached (see lengths).
    ev.prefetch([k for k in xkeys if not ev.store.user_kept(k)])
    extra = extras(ev, len(acts), xrows, xact, xkeys, sparse=True)
    del xrows, xact  # every record of every action: 87 MB at 10M records
    return feature_table(ev, acts, vocab, {"caller_gap_s": gap, "executing_at_start": running,
                                           "call_index": call_index}, lengths(ev, acts),
                         extra)


def feature_table(ev: Events, acts: Table, vocab: Vocabulary, context: dict[str, np.ndarray],
                  lengths: tuple[np.ndarray, np.ndarray], extras: dict[str, np.ndarray]
                  ) -> Features:
    """The features of actions ``acts``, given what depends on the other calls
    (``context``: ``caller_gap_s``, ``executing_at_start``, ``call_index``), the lengths of
    their arguments and result, and their ``extra.<key>`` columns: one assembly for a
    pass over the run and for a live featurizer's new calls."""
    n = len(acts)
    t_start = np.where(np.isnan(acts["t_start"]), acts["t_exec_start"], acts["t_start"])
    t_done = np.where(np.isnan(acts["t_end"]), acts["t_exec_end"], acts["t_end"])
    cols: dict[str, np.ndarray] = {
        "tag": acts["tag"],
        "action": acts["action"],
        "agent_class": np.array([c if c is not None else "?" for c in acts["agent_class"]],
                                dtype=object) if n else np.empty(0, dtype=object),
        "agent_id": acts["agent_id"],
        "caller": acts["caller"],
        "agent_file": acts["agent_file"],
        "status": acts["status"],
        "t_start": t_start,
        "t_exec_start": acts["t_exec_start"],
        "t_done": t_done,
        "row_start": acts["row_start"],
        "row_exec": acts["row_exec"],
        "row_end": acts["row_end"],
    }
    for ph in ("queue_s", "exec_s", "reply_s", "total_s"):
        cols[ph] = np.asarray(acts[ph], dtype=np.float64)
    cols["caller_gap_s"] = context["caller_gap_s"]
    cols["args_len"], cols["result_len"] = lengths
    cols["executing_at_start"] = context["executing_at_start"]
    cols["start_offset_s"] = t_start - ev.t0
    cols["call_index"] = context["call_index"]
    for code, raw in CATEGORICAL.items():
        cols[code] = vocab.encode(raw, cols[raw])
    cols.update(extras)
    names = [name for name, _ in ACTION_FEATURES] + sorted(extras)
    table = Table(cols, name="action_features")
    return Features(table, _matrix(table, names), names)


def _caller_gap(caller: np.ndarray, t_start: np.ndarray, t_end: np.ndarray,
                only: np.ndarray | None = None) -> np.ndarray:
    """Per action (or per position of ``only``), ``t_start`` minus the latest end of the
    same caller's calls that ended at or before it; NaN when none had.

    One sort over (caller, end) for all callers at once: a run with a thousand callers
    costs what a run with one does."""
    n = len(caller)
    q = np.arange(n) if only is None else np.asarray(only, dtype=np.int64)
    out = np.full(len(q), np.nan)
    names = caller.tolist()
    ids = {c: i for i, c in enumerate(dict.fromkeys(names))}  # C-level passes only
    ids[None] = -1
    code = np.fromiter(map(ids.__getitem__, names), dtype=np.int64, count=n)
    e = np.flatnonzero((code >= 0) & np.isfinite(t_end))
    qi = np.flatnonzero((code[q] >= 0) & np.isfinite(t_start[q]))
    if not len(e) or not len(qi):
        return out
    qa = q[qi]
    # Exact ranks of the times (equal times, equal ranks) make one integer key per
    # (caller, time): the latest end at or before a start is one binary search.
    vals, inv = np.unique(np.concatenate([t_end[e], t_start[qa]]), return_inverse=True)
    inv = inv.reshape(-1)
    m = len(vals) + 1
    ekey = code[e] * m + inv[: len(e)]
    srt = np.argsort(ekey, kind="stable")
    ek, ends = ekey[srt], t_end[e][srt]
    qkey = code[qa] * m + inv[len(e):]
    pos = np.searchsorted(ek, qkey, side="right") - 1
    hit = pos >= 0
    hit[hit] = ek[pos[hit]] // m == code[qa[hit]]
    out[qi[hit]] = t_start[qa[hit]] - ends[pos[hit]]
    return out


def _call_index(agent_id: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Per action (rows in start order), how many earlier rows share agent and action."""
    seen: dict[tuple[object, object], int] = {}
    out = np.empty(len(agent_id), dtype=np.float64)
    for i, key in enumerate(zip(agent_id.tolist(), action.tolist(), strict=True)):
        out[i] = seen.get(key, 0)
        seen[key] = int(out[i]) + 1
    return out


def lengths(ev: Events, acts: Table) -> tuple[np.ndarray, np.ndarray]:
    """``args_len`` and ``result_len`` of the actions ``acts``: the summed lengths of
    their typed arguments (on the start record) and result (on the success record);
    NaN where the record has none of them. The parse worked them out for every record
    that carries them (:attr:`features.store.EventStore.payload_rows`); a record it did
    not (a source's) is read back from its file, a file span at a time, and not kept:
    whole columns of these keys took 240 MB at 10M records, and reading two records a
    call back was a quarter of judging every call of a run."""
    starts = np.asarray(acts["row_start"], dtype=np.int64)
    ends = np.where(acts["status"] == "ok", acts["row_end"], -1).astype(np.int64)
    wanted = {k for k in (*PAYLOAD_ARGS, *PAYLOAD_RESULT) if k in ev.store.key_shapes}
    if not wanted:
        return np.full(len(starts), np.nan), np.full(len(ends), np.nan)
    rows = np.concatenate([starts, ends])
    has = np.zeros(len(rows), dtype=bool)
    ok = rows >= 0
    # Which rows carry any of the keys, from their key sets (a live poll asks this of a
    # few calls: a mask as long as the run per key would cost what the run holds).
    shape_keys = ev.store.shape_keys
    codes = ev.shape[rows[ok]]
    n_shapes = int(codes.max()) + 1 if len(codes) else 0
    carries = np.fromiter((not wanted.isdisjoint(shape_keys[c]) for c in range(n_shapes)),
                          dtype=bool, count=n_shapes)
    has[ok] = carries[codes]
    need = np.unique(rows[has])
    args_len, result_len = np.full(len(need), np.nan), np.full(len(need), np.nan)
    found = np.zeros(len(need), dtype=bool)
    store = ev.store
    with store.lock:
        known = store.payload_rows.view()
        known_args = store.payload_args.view(len(known))
        known_result = store.payload_result.view(len(known))
    if len(known) and len(need):
        at = np.minimum(np.searchsorted(known, need), len(known) - 1)
        found = known[at] == need
        for out, lens in ((args_len, known_args), (result_len, known_result)):
            got = lens[at[found]].astype(np.float64)
            got[got < 0] = np.nan  # (stored as -1)
            out[found] = got
    _read_lengths(ev, need, ~found, args_len, result_len)
    pos = np.searchsorted(need, rows[has])
    out = np.full(len(rows), np.nan)
    out[has] = np.where(np.flatnonzero(has) < len(starts), args_len[pos], result_len[pos])
    return out[:len(starts)], out[len(starts):]


def _read_lengths(ev: Events, need: np.ndarray, missing: np.ndarray, args_len: np.ndarray,
                  result_len: np.ndarray) -> None:
    """The payload lengths of the records ``need[missing]``, read from their files (each
    once, in the order the files are read), into ``args_len`` and ``result_len``."""
    rows = need[missing]
    if not len(rows):
        return
    shape_keys = ev.store.shape_keys
    shape = ev.shape
    # Per key set: which of the keys a record of it has, as it was read (a scan of its
    # keys per record and key was a fifth of the pass).
    present = {c: (tuple(k for k in PAYLOAD_ARGS if k in shape_keys[c]),
                   tuple(k for k in PAYLOAD_RESULT if k in shape_keys[c]))
               for c in np.unique(shape[rows]).tolist()}
    # In C arrays (a dict of tuples by row held 1.4M of each, ~250 MB, at 10M records).
    got, got_args, got_result = array("q"), array("d"), array("d")
    for row, rec in ev._iter_records(rows, None):
        args, result = present[int(shape[row])]
        got.append(row)
        got_args.append(_length(rec, args))
        got_result.append(_length(rec, result))
    at = np.searchsorted(need, np.frombuffer(got, dtype=np.int64))
    args_len[at] = np.frombuffer(got_args)
    result_len[at] = np.frombuffer(got_result)


def _length(rec: dict[str, Any] | None, keys: tuple[str, ...]) -> float:
    """Summed lengths of the typed values of ``keys``, those the record has as it was
    read (a value missing from ``rec`` now, or ``rec`` unreadable, counts 0); NaN when
    there are none."""
    if not keys:
        return math.nan
    if rec is None:
        return 0.0
    return float(sum(payload_length(rec.get(k)) for k in keys))


# -- agents and processes --------------------------------------------------------------


def agent_features(run: Run) -> Features:
    """Features of every agent of ``run`` (see :data:`AGENT_FEATURES`)."""
    ev = run.events()
    ag = run.agents()
    acts = run.actions()
    start = np.where(np.isnan(ag["t_running"]), ag["t_launched"], ag["t_running"])
    end = np.fmin(ag["t_shutdown"], ag["t_crash"])
    end = np.where(np.isnan(end), ev.t1, end)
    n = len(ag)
    count = np.zeros(n)
    mean_x = np.full(n, np.nan)
    max_x = np.full(n, np.nan)
    errors = ag["crashed"].astype(np.float64) if n else np.zeros(0)
    for i, aid in enumerate(ag["agent_id"].tolist()):
        m = acts["agent_id"] == aid
        count[i] = m.sum()
        x = acts["exec_s"][m]
        x = x[np.isfinite(x)]
        if len(x):
            mean_x[i], max_x[i] = x.mean(), x.max()
        errors[i] += np.sum(acts["status"][m] == "exception")
    table = Table({
        "agent_id": ag["agent_id"], "class": ag["class"], "file": ag["file"],
        "status": ag["status"],
        "startup_s": ag["t_running"] - ag["t_launched"],
        "lifetime_s": end - start,
        "actions": count, "mean_exec_s": mean_x, "max_exec_s": max_x, "errors": errors,
    }, name="agent_features")
    names = [name for name, _ in AGENT_FEATURES]
    return Features(table, _matrix(table, names), names)


def process_features(run: Run) -> Features:
    """Features of every process (pool file) of ``run`` (see :data:`PROCESS_FEATURES`)."""
    ev = run.events()
    pr = run.processes()
    table = Table({
        "file": pr["file"], "processName": pr["processName"], "end": pr["end"],
        "records": pr["records"].astype(np.float64),
        "errors": pr["errors"].astype(np.float64),
        "duration_s": pr["duration_s"],
        "start_offset_s": pr["t_first"] - ev.t0,
    }, name="process_features")
    names = [name for name, _ in PROCESS_FEATURES]
    return Features(table, _matrix(table, names), names)
