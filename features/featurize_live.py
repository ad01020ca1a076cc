"""Features of calls as they complete, for the live models: a poll costs what arrived.

:class:`ActionFeaturizer` hands out the actions that completed since its previous call,
with the same values :func:`features.featurize.action_features` gives them over the run as
read so far. Its first call is such a pass; after it, it keeps its own action join (only
the tags whose records arrived are joined again) and, per call, what the features read
from the other calls: each caller's ends (the idle gap before a call), the execution
starts and ends (how many run at once), each (agent, action)'s calls in start order (the
call's index) and the execution windows (which untagged records are the call's), in a
:class:`features.call_context.CallContext`. On a 10M-record run a poll had rebuilt the
actions table over all 715k actions and computed that context over all of them, about
0.9 s of CPU a poll; now each structure takes the new calls in place (a sorted insert: a
memory move, no sort and no Python pass over the calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from features.action_records import action_rows, codes_of, extras, in_windows, user_keys
from features.call_context import CallContext, SortedPairs
from features.featurize import (
    DONE,
    Features,
    Vocabulary,
    action_features,
    feature_table,
    lengths,
)
from features.table import Table
from features.things.actions import ActionIndex, _actions_table, agent_classes, start_key

if TYPE_CHECKING:
    from features.events import Events
    from features.run import Run

_Pairs, _Context = SortedPairs, CallContext
"""Their names from before they moved to :mod:`features.call_context` (tests use them)."""


class _Changes(ActionIndex):
    """The action join, saying which tags changed since it was last asked, and keeping
    the tagged records of the tags not handed out yet (a call's own records, for its
    ``extra.<key>`` features, without a pass over the run)."""

    def _reset(self, store: object | None) -> None:
        super()._reset(store)
        self.touched: list[np.ndarray] = []
        self.pending_rows = np.empty(0, dtype=np.int64)
        self.pending_codes = np.empty(0, dtype=np.int64)

    def _folded(self, ev: Events, lo: int, codes: np.ndarray) -> None:
        self.touched.append(codes)
        tc = ev.cat("academy.action_tag")[0]
        more = lo + np.flatnonzero(tc[lo:] >= 0)
        self.pending_rows = np.concatenate([self.pending_rows, more])
        self.pending_codes = np.concatenate([self.pending_codes, tc[more].astype(np.int64)])

    def take_touched(self) -> np.ndarray:
        """Tag codes whose state records arrived since the last call."""
        with self.lock:
            out = np.unique(np.concatenate(self.touched)) if self.touched else \
                np.empty(0, dtype=np.int64)
            self.touched = []
        return out.astype(np.int64)

    def handed(self, handed: np.ndarray) -> None:
        """Forget the records of tags handed out (``handed``: tag code -> handed)."""
        with self.lock:
            keep = ~handed[self.pending_codes] if len(handed) else \
                np.ones(len(self.pending_codes), dtype=bool)
            self.pending_rows = self.pending_rows[keep]
            self.pending_codes = self.pending_codes[keep]


class ActionFeaturizer:
    """Features of the actions that completed since the previous call, for live models.

    What was handed out is remembered by tag; categorical codes stay stable."""

    def __init__(self, include: Sequence[str] = DONE) -> None:
        self.include = tuple(include)
        """Statuses that count as completed."""
        self.vocab = Vocabulary()
        self.seen: set[str] = set()
        """Tags already handed out."""
        self._store: object | None = None
        self._live: bool | None = None
        self._handed = np.zeros(0, dtype=bool)
        """Tag code (in the run's store) -> handed out: :attr:`seen` without a lookup
        per call."""
        self._index = _Changes()
        self._ctx: CallContext | None = None

    def update(self, run: Run) -> Features:
        """Features of the newly completed actions of ``run`` (refresh it first), in
        completion order."""
        ev = run.events()
        live = run.live
        self._index.fold(ev)
        touched = self._index.take_touched()
        ntag = len(ev.cat("academy.action_tag")[1])
        if ev.store is not self._store:  # another run: rebuilt from the tags themselves
            self._store = ev.store
            cat = ev.store.cats["academy.action_tag"]
            known = [c for c in (cat.lookup(t) for t in self.seen) if 0 <= c < ntag]
            self._handed = np.zeros(ntag, dtype=bool)
            self._handed[known] = True
            self._ctx = None
        if len(self._handed) < ntag:
            self._handed = np.concatenate(
                [self._handed, np.zeros(ntag - len(self._handed), dtype=bool)])
        if self._ctx is None or live != self._live:
            feats, codes = self._whole(run, ev)
        else:
            feats, codes = self._new(ev, live, touched, self._ctx)
        self._live = live
        self._handed[codes] = True
        self._index.handed(self._handed)
        self.seen.update(feats.table["tag"].tolist())
        return feats

    def _whole(self, run: Run, ev: Events) -> tuple[Features, np.ndarray]:
        """A pass over the run: its new calls, and the context of all calls."""
        acts = run.actions()
        codes = codes_of(ev, "academy.action_tag", acts["tag"], action_rows(acts))
        new = self._completed(acts) & (codes >= 0)
        new[new] = ~self._handed[codes[new]]
        idx = _completion_order(acts, np.flatnonzero(new), codes)
        feats = action_features(run, self.vocab, only=idx)
        ctx = CallContext()
        known = codes >= 0
        ctx.register(codes[known], ctx.values(ev, acts.take(np.flatnonzero(known))))
        self._ctx = ctx
        return feats, codes[idx]

    def _completed(self, acts: Table) -> np.ndarray:
        t_done = np.where(np.isnan(acts["t_end"]), acts["t_exec_end"], acts["t_end"])
        return np.isin(acts["status"], self.include) & np.isfinite(t_done)

    def _new(self, ev: Events, live: bool, touched: np.ndarray, ctx: CallContext
             ) -> tuple[Features, np.ndarray]:
        """The calls whose records arrived: joined again, registered, and those newly
        completed featurised against the context."""
        tags, pick, named = self._index.subset(ev, touched)
        acts = _actions_table(ev, live, None, tags, pick, named,
                              class_of=agent_classes, in_order=False)
        ctx.register(touched, ctx.values(ev, acts))
        new = self._completed(acts) & ~self._handed[touched]
        idx = _completion_order(acts, np.flatnonzero(new), touched)
        acts, codes = acts.take(idx), touched[idx]
        reg = ctx.reg
        ts = np.where(np.isnan(acts["t_start"]), acts["t_exec_start"], acts["t_start"])
        gap = np.full(len(idx), np.nan)
        for i, (cid, t) in enumerate(zip(reg["caller"][codes].tolist(), ts.tolist(),
                                         strict=True)):
            ends = ctx.ends.get(cid) if cid >= 0 and np.isfinite(t) else None
            j = int(np.searchsorted(ends.v, t, "right")) - 1 if ends is not None else -1
            if j >= 0 and ends is not None:
                gap[i] = t - ends.v[j]
        xs = acts["t_exec_start"]
        running = (np.searchsorted(ctx.starts.v, xs, "right")
                   - np.searchsorted(ctx.xends.v, xs, "right")
                   - np.where(ev.t1 <= xs, ctx.n_open, 0)).astype(np.float64)
        running[np.isnan(xs)] = np.nan
        call_index = np.array([ctx.by_group[g].rank(k, c) for g, k, c in zip(
            reg["group"][codes].tolist(), reg["key"][codes].tolist(), codes.tolist(),
            strict=True)], dtype=np.float64)
        context = {"caller_gap_s": gap, "executing_at_start": running,
                   "call_index": call_index}
        rows, act = self._own_records(ev, ctx, codes)
        keys = user_keys(ev, rows)
        sizes = lengths(ev, acts)
        return feature_table(ev, acts, self.vocab, context, sizes,
                             extras(ev, len(idx), rows, act, keys)), codes

    def _own_records(self, ev: Events, ctx: CallContext, codes: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, position in codes)`` of the records of the calls ``codes``, in (call,
        time) order, as :func:`features.action_records.extra_keys` finds them: their tagged
        records, and their agent's untagged ones inside their execution windows."""
        reg = ctx.reg
        pos = _positions(codes, self._index.pending_codes)
        mine = pos >= 0
        rows_l, act_l = [self._index.pending_rows[mine]], [pos[mine]]
        xs = reg["xs"][codes]
        xe = np.where(np.isnan(reg["xe"][codes]), np.inf, reg["xe"][codes])
        win = (reg["aid"][codes] >= 0) & (reg["file"][codes] >= 0) & np.isfinite(xs)
        if win.any():
            lo, hi = float(xs[win].min()), float(xe[win].max())
            st = ev.sorted_t[: ev.n]
            span = ev.order[np.searchsorted(st, lo, "left"):np.searchsorted(st, hi, "right")]
            span = np.sort(span[span < ev.n])
            aid_codes = ev.cat("academy.agent_id")[0]
            tcodes = ev.cat("academy.action_tag")[0]
            free = span[(aid_codes[span] >= 0) & (tcodes[span] < 0)
                        & (ev.codes["academy.message_tag"][span] < 0)]
            # The windows that may hold them: every call's that opened in the span, in
            # the actions table's order (start key, then code).
            s = ctx.starts
            cw = s.c[np.searchsorted(s.v, lo, "left"):np.searchsorted(s.v, hi, "right")]
            cw = cw[(reg["aid"][cw] >= 0) & (reg["file"][cw] >= 0)]
            cw = cw[np.lexsort((cw, reg["key"][cw]))]
            r, p = in_windows(ev, free, aid_codes, np.arange(len(cw)), reg["aid"][cw],
                              reg["file"][cw], reg["xs"][cw],
                              np.where(np.isnan(reg["xe"][cw]), np.inf, reg["xe"][cw]))
            q = _positions(codes, cw[p])
            rows_l.append(r[q >= 0])
            act_l.append(q[q >= 0])
        rows = np.concatenate(rows_l).astype(np.int64)
        act = np.concatenate(act_l).astype(np.int64)
        order = np.lexsort((ev.created[rows], act))
        return rows[order], act[order]


def _positions(codes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each of ``x``'s position in ``codes`` (distinct), -1 where absent: a search among
    a poll's few calls, not a table as long as the run's tags built on every poll."""
    o = np.argsort(codes, kind="stable")
    at = np.minimum(np.searchsorted(codes[o], x), max(len(codes) - 1, 0))
    if not len(codes):
        return np.full(len(x), -1, dtype=np.int64)
    return np.where(codes[o][at] == x, o[at], -1).astype(np.int64)


def _completion_order(acts: Table, sel: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``sel`` by completion time, ties in the actions table's order (start key, then
    tag code)."""
    t_done = np.where(np.isnan(acts["t_end"]), acts["t_exec_end"], acts["t_end"])
    return sel[np.lexsort((codes[sel], start_key(acts)[sel], t_done[sel]))]


__all__ = ["ActionFeaturizer"]
