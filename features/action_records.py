"""Which records belong to an action, and the ``extra.<key>`` features read from them.

An action's records are those carrying its tag, plus its agent's untagged records (same
``academy.agent_id``, same file) logged inside its execution window: a user's own
``logger.info(..., extra={"fib.delay_s": ...})`` inside the action has no tag, yet says
something about that call. Every numeric user key on those records becomes a column
``extra.<key>`` (the last value in time). Kept apart from :mod:`features.featurize` (the
feature schemas and their assembly) because the window join is also what
:mod:`features.widen` and the live featurizer use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from features.events import Events
    from features.table import Table

EXTRA_PREFIX = "extra."
"""Prefix of the feature columns named after a user key (``extra.fib.delay_s``)."""

# Keys every record has (ACADEMY.md section 1) or that name a logging site: never features.
STANDARD = frozenset({
    "formatted", "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "message",
    "taskName", "asctime", "hostname"})


def codes_of(ev: Events, key: str, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per thing, the code in ``ev.cat(key)`` of its value ``values[i]``: read off
    ``rows[i]`` (a record that carries it, -1 for none) where that record has the key,
    looked up by value otherwise (rare: few things lack such a record); -1 when the
    snapshot does not know the value."""
    codes, vals = ev.cat(key)
    out = np.where(rows >= 0, codes[np.maximum(rows, 0)], -1).astype(np.int64)
    miss = np.flatnonzero(out < 0)
    if len(miss):
        cat, lim = ev.store.cats[key], len(vals)
        for i in miss.tolist():
            v = values[i]
            c = cat.lookup(v) if v is not None else -1
            out[i] = c if 0 <= c < lim else -1
    return out


def action_rows(acts: Table) -> np.ndarray:
    """Per action, one of its records that carries its tag (start, else execute_start,
    else end; -1 when it has none of them)."""
    return np.where(acts["row_start"] >= 0, acts["row_start"],
                    np.where(acts["row_exec"] >= 0, acts["row_exec"], acts["row_end"]))


def extra_rows(ev: Events, acts: Table, only: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, action index)`` of the records that belong to an action: those with its
    tag, and those of its agent (same agent id, same file, no tag) inside its execution
    window (the action that started last before the record, for concurrent ones).

    With ``only`` (positions in ``acts``), the records of those actions alone, found
    without a pass over the whole run in Python: tags through a code table, and the
    untagged records only between the first window's opening and the last one's close
    (each still matched against every window, so the answer is the full one's)."""
    n_acts = len(acts)
    sel = np.arange(n_acts) if only is None else np.asarray(only, dtype=np.int64)
    tcodes, tvals = ev.cat("academy.action_tag")
    tag_code = codes_of(ev, "academy.action_tag", acts["tag"], action_rows(acts))
    lut = np.full(len(tvals) + 1, -1, dtype=np.int64)  # code -1 lands on the last slot
    known = sel[tag_code[sel] >= 0]
    lut[tag_code[known]] = known
    act = lut[tcodes]
    rows_l = [np.flatnonzero(act >= 0)]
    act_l = [act[rows_l[0]]]
    aid_codes, _ = ev.cat("academy.agent_id")
    act_aid = codes_of(ev, "academy.agent_id", acts["agent_id"], acts["row_start"])
    rx = acts["row_exec"]
    act_file = np.where(rx >= 0, ev.file[np.maximum(rx, 0)], -1).astype(np.int64)
    xs = acts["t_exec_start"]
    xe = np.nan_to_num(acts["t_exec_end"], nan=np.inf)
    has_win = (act_aid >= 0) & (act_file >= 0) & ~np.isnan(xs)
    ok = np.flatnonzero(has_win)
    msg_codes = ev.codes["academy.message_tag"]
    if only is None:
        free = np.flatnonzero((aid_codes >= 0) & (tcodes < 0) & (msg_codes < 0))
    else:
        mine = sel[has_win[sel]]
        if len(mine):
            lo, hi = float(xs[mine].min()), float(xe[mine].max())
            st = ev.sorted_t
            span = ev.order[np.searchsorted(st, lo, "left"):np.searchsorted(st, hi, "right")]
            span = np.sort(span[span < ev.n])
            free = span[(aid_codes[span] >= 0) & (tcodes[span] < 0) & (msg_codes[span] < 0)]
        else:
            free = np.empty(0, dtype=np.int64)
    r, cand = in_windows(ev, free, aid_codes, ok, act_aid, act_file, xs, xe)
    rows_l.append(r)
    act_l.append(cand)
    return np.concatenate(rows_l).astype(np.int64), np.concatenate(act_l).astype(np.int64)


def in_windows(ev: Events, free: np.ndarray, aid_codes: np.ndarray, ok: np.ndarray,
               act_aid: np.ndarray, act_file: np.ndarray, xs: np.ndarray, xe: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, action index)``: each of the records ``free`` (rows with an agent id and
    no tag) in the execution window of an action ``ok`` of its agent in its file, the one
    that opened last before it, when that window is still open (``xe``, inf while it
    runs). One sort of (agent, file, time) over windows and records, not a loop per
    agent: used by the feature extractor and the explanation alike."""
    empty = np.empty(0, dtype=np.int64)
    if not (len(free) and len(ok)):
        return empty, empty
    nf = len(ev.file_names) + 1
    key = np.concatenate([act_aid[ok] * nf + act_file[ok],
                          aid_codes[free].astype(np.int64) * nf + ev.file[free]])
    t = np.concatenate([xs[ok], ev.created[free]])
    is_rec = np.r_[np.zeros(len(ok), bool), np.ones(len(free), bool)]
    ident = np.concatenate([ok, free])
    o = np.lexsort((is_rec, t, key))
    last_win = np.maximum.accumulate(np.where(is_rec[o], -1, np.arange(len(o))))
    rec = is_rec[o]
    p, r = last_win[rec], ident[o][rec]
    # p < 0: no window opened before the record (a live, partial pool): dropped before
    # indexing, or its row number would index the actions.
    r, p, rkey = r[p >= 0], p[p >= 0], key[o][rec][p >= 0]
    cand = ident[o][p]
    good = (key[o][p] == rkey) & (ev.created[r] <= xe[cand])
    return r[good].astype(np.int64), cand[good].astype(np.int64)


def extra_keys(ev: Events, acts: Table, only: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The actions' records as ``(rows, action index)`` in (action, time) order, and the
    user keys they carry (candidates for ``extra.<key>``). With ``only`` (positions in
    ``acts``), the records of those actions, indexed by their position in ``only``."""
    rows, act = extra_rows(ev, acts, only)
    if only is not None:
        pos = np.full(len(acts), -1, dtype=np.int64)
        pos[only] = np.arange(len(only))
        act = pos[act]
        keep = act >= 0
        rows, act = rows[keep], act[keep]
    if not len(rows):
        return rows, act, []
    order = np.lexsort((ev.created[rows], act))
    rows, act = rows[order], act[order]
    return rows, act, user_keys(ev, rows)


def user_keys(ev: Events, rows: np.ndarray) -> list[str]:
    """The user keys ``rows`` carry (candidates for ``extra.<key>``), in the order the
    store's record shapes list them: a pass over the rows' few shapes, not their records."""
    keys: dict[str, None] = {}
    for s in np.unique(ev.shape[rows]):
        keys.update(dict.fromkeys(ev.store.shape_keys[int(s)]))
    return [k for k in keys if not (k in STANDARD or k.startswith("academy."))]


def extras(ev: Events, n: int, rows: np.ndarray, act: np.ndarray,
           keys: Sequence[str], sparse: bool = False) -> dict[str, np.ndarray]:
    """``extra.<key>`` for every numeric user key of the actions' records. ``sparse``
    (a pass over a whole run) reads the keys' values for these rows alone
    (:meth:`Events.numeric_at`); otherwise from the cached numeric columns, which a live
    run extends with its new rows at each poll."""
    out: dict[str, np.ndarray] = {}
    for k in keys:
        v = ev.numeric_at(k, rows) if sparse else ev.numeric(k)
        if v is None:
            continue
        if not sparse:
            v = v[rows]
        present = ~np.isnan(v)
        col = np.full(n, np.nan)
        # Rows are in (action, time) order: assigning in order leaves the last value.
        col[act[present]] = v[present]
        out[EXTRA_PREFIX + k] = col
    return out
