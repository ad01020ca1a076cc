"""What a live call's features read from the other calls, kept up to date in place.

A call's ``caller_gap_s``, ``executing_at_start`` and ``call_index`` count over the other
calls of the run: its caller's earlier ends, the executions running when it started, its
(agent, action)'s earlier starts. :class:`CallContext` holds those per tag code as ordered
:class:`SortedPairs`, so a poll of :class:`features.featurize_live.ActionFeaturizer`
registers its new or changed calls with a sorted insert (a memory move, no sort and no
Python pass over all the calls) and answers each new call with a binary search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from features.action_records import codes_of
from features.columns import insert_at
from features.things.actions import start_key

if TYPE_CHECKING:
    from features.events import Events
    from features.table import Table


class SortedPairs:
    """``(value, code)`` pairs kept in order (values finite or inf, codes distinct), with
    in-place updates: what counting "the calls before this one" needs."""

    def __init__(self) -> None:
        self.v = np.empty(0, dtype=np.float64)
        self.c = np.empty(0, dtype=np.int64)

    def rank(self, v: float, c: int) -> int:
        """How many pairs come before ``(v, c)``."""
        lo = int(np.searchsorted(self.v, v, "left"))
        hi = int(np.searchsorted(self.v, v, "right"))
        return lo + int(np.count_nonzero(self.c[lo:hi] < c)) if hi > lo else lo

    def update(self, rem_v: np.ndarray, rem_c: np.ndarray, add_v: np.ndarray,
               add_c: np.ndarray) -> None:
        """Take the pairs ``(rem_v, rem_c)`` (held) out and put ``(add_v, add_c)`` in."""
        if len(rem_v):
            at = []
            for v, c in zip(rem_v.tolist(), rem_c.tolist(), strict=True):
                lo = int(np.searchsorted(self.v, v, "left"))
                hi = int(np.searchsorted(self.v, v, "right"))
                at.append(lo + int(np.flatnonzero(self.c[lo:hi] == c)[0]))
            self.v, self.c = np.delete(self.v, at), np.delete(self.c, at)
        if not len(add_v):
            return
        o = np.lexsort((add_c, add_v))
        av, ac = add_v[o], add_c[o]
        if len(av) > 64 and len(av) * 8 > len(self.v):  # many: one merge
            v, c = np.concatenate([self.v, av]), np.concatenate([self.c, ac])
            o = np.lexsort((c, v))
            self.v, self.c = v[o], c[o]
            return
        pos = np.searchsorted(self.v, av, "left")
        end = np.searchsorted(self.v, av, "right")
        for i in np.flatnonzero(end > pos).tolist():  # equal values: by code
            pos[i] += int(np.count_nonzero(self.c[pos[i]:end[i]] < ac[i]))
        self.v, self.c = insert_at(self.v, pos, av), insert_at(self.c, pos, ac)



_FIELDS = ("key", "xs", "xe", "end", "caller", "group", "aid", "file")
"""What the context holds per tag code: the start key (calls' order), the execution
start and end, the caller's end, caller and (agent, action) ids, the agent's id code and
the execution's file (its window)."""


class CallContext:
    """What a call's features read from the other calls of the run, per tag code, kept
    up to date call by call."""

    def __init__(self) -> None:
        self.reg = {f: np.empty(0, dtype=np.float64 if f in ("key", "xs", "xe", "end")
                                else np.int64) for f in _FIELDS}
        self.callers: dict[Any, int] = {}
        self.groups: dict[tuple[Any, Any], int] = {}
        self.ends: dict[int, SortedPairs] = {}
        """Caller id -> its calls' (end, code)."""
        self.by_group: dict[int, SortedPairs] = {}
        """(agent, action) id -> its calls' (start key, code)."""
        self.starts = SortedPairs()
        """Every call's (execution start, code), when it has one."""
        self.xends = SortedPairs()
        """Every execution's (end, code), when it has a start and an end."""
        self.n_open = 0
        """Executions with a start and no end (open until the run's last event)."""

    def _grow(self, n: int) -> None:
        for f, a in self.reg.items():
            if len(a) < n:
                pad = np.full(max(n, 2 * len(a)) - len(a),
                              np.nan if a.dtype.kind == "f" else -2, dtype=a.dtype)
                self.reg[f] = np.concatenate([a, pad])

    def values(self, ev: Events, acts: Table) -> dict[str, np.ndarray]:
        """The fields of ``acts`` as registered."""
        key = start_key(acts)
        rx = acts["row_exec"]
        ids = [self.callers.setdefault(c, len(self.callers)) if c is not None else -1
               for c in acts["caller"].tolist()]
        groups = [self.groups.setdefault(g, len(self.groups))
                  for g in zip(acts["agent_id"].tolist(), acts["action"].tolist(), strict=True)]
        return {
            "key": np.where(np.isnan(key), np.inf, key),
            "xs": np.asarray(acts["t_exec_start"], dtype=np.float64),
            "xe": np.asarray(acts["t_exec_end"], dtype=np.float64),
            "end": np.asarray(acts["t_end"], dtype=np.float64),
            "caller": np.asarray(ids, dtype=np.int64),
            "group": np.asarray(groups, dtype=np.int64),
            "aid": codes_of(ev, "academy.agent_id", acts["agent_id"], acts["row_start"]),
            "file": np.where(rx >= 0, ev.file[np.maximum(rx, 0)], -1).astype(np.int64),
        }

    def register(self, codes: np.ndarray, new: dict[str, np.ndarray]) -> None:
        """Put the calls ``codes`` in with their fields ``new`` (replacing what they
        were registered with)."""
        if not len(codes):
            return
        self._grow(int(codes.max()) + 1)
        old = {f: self.reg[f][codes] for f in _FIELDS}
        was = old["group"] != -2  # registered before
        same = {f: (old[f] == new[f]) | (np.isnan(old[f]) & np.isnan(new[f]))
                if old[f].dtype.kind == "f" else old[f] == new[f] for f in _FIELDS}

        def moved(*fields: str) -> tuple[np.ndarray, np.ndarray]:
            """(registered before and changed, changed or new)."""
            keep = np.ones(len(codes), dtype=bool)
            for f in fields:
                keep &= same[f]
            return was & ~keep, ~(keep & was)

        out, into = moved("caller", "end")  # each caller's ends
        _by(self.ends, old["caller"], old["end"], codes,
            out & (old["caller"] >= 0) & np.isfinite(old["end"]), remove=True)
        _by(self.ends, new["caller"], new["end"], codes,
            into & (new["caller"] >= 0) & np.isfinite(new["end"]))
        out, into = moved("group", "key")  # each (agent, action)'s calls in start order
        _by(self.by_group, old["group"], old["key"], codes, out, remove=True)
        _by(self.by_group, new["group"], new["key"], codes, into)
        out, into = moved("xs")  # executions: starts
        r = out & np.isfinite(old["xs"])
        a = into & np.isfinite(new["xs"])
        self.starts.update(old["xs"][r], codes[r], new["xs"][a], codes[a])
        out, into = moved("xs", "xe")  # their ends, and those still open
        r = out & np.isfinite(old["xs"])
        a = into & np.isfinite(new["xs"])
        self.n_open += int(np.count_nonzero(a & np.isnan(new["xe"]))) - \
            int(np.count_nonzero(r & np.isnan(old["xe"])))
        r &= np.isfinite(old["xe"])
        a &= np.isfinite(new["xe"])
        self.xends.update(old["xe"][r], codes[r], new["xe"][a], codes[a])
        for f in _FIELDS:
            self.reg[f][codes] = new[f]


def _by(structs: dict[int, SortedPairs], ids: np.ndarray, values: np.ndarray, codes: np.ndarray,
        mask: np.ndarray, remove: bool = False) -> None:
    """Put the pairs ``(values, codes)`` where ``mask`` into (or ``remove`` them from)
    the structure of their id: one update per id."""
    sel = np.flatnonzero(mask)
    if not len(sel):
        return
    sel = sel[np.argsort(ids[sel], kind="stable")]
    uniq, first = np.unique(ids[sel], return_index=True)
    none = np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
    for k, part in zip(uniq.tolist(), np.split(sel, first[1:]), strict=True):
        pairs = structs.setdefault(k, SortedPairs())
        these = values[part], codes[part]
        pairs.update(*(these if remove else none), *(none if remove else these))

