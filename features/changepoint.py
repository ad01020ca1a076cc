"""Change points in one series of call durations: level shifts up or down, and drift.

>>> from features.changepoint import analyse
>>> a = analyse(durations)            # seconds, in start order
>>> [(c.kind, c.at, round(c.ratio, 1)) for c in a.changes]
[('level_shift', 20, 4.0)]

Everything is computed on log durations: jitter and changes are multiplicative (a call
twice as slow is the same step at 10 ms as at 10 s), and the log makes them additive.

**Level shifts**: binary segmentation (Vostrikova 1981) with a two-window median test.
In a stretch of calls, a split ``k`` is a candidate when the median of the ``window`` (16)
calls from ``k`` on and the median of the 16 before it (fewer at the stretch's ends) are
at least ``min_ratio`` apart; among the candidates the split is where the calls sit
closest to their own side's median (least absolute deviations: the jump itself, not a
call beside it). It is kept when the tests below pass; when they fail, the next best jump
of the stretch is tried (a stretch can hold two, and the one with few calls beyond it may
fit best yet be too short to pass). A split is kept when

- at least ``min_seg`` (5) calls on each side sit on their side's level (nearer its median
  than the other side's), and
- the two-sided Mann-Whitney p-value of the two windows, times the number of splits the
  stretch offers (Bonferroni), is below ``alpha`` (1%);

then both sides are searched again, and neighbouring segments that end up less than
``min_ratio`` apart are merged. Local windows, not whole sides: a long excursion in the
middle of a run would otherwise mix both levels into one side's median.

Why these numbers:

- 5 calls a side: with 5 against 5 the smallest exact two-sided p-value is
  2 / C(10, 5) = 0.008, under 1% only when the two sides do not overlap at all; 4 against
  4 can never get there (2 / C(8, 4) = 0.029). Fewer than 5 calls after a jump are a
  burst, which the per-call detector reports (``features.anomaly``).
- ``min_ratio`` 1.6: a shift is meant to be found from 2x (``bench/eval_anomaly.py``
  injects 2-6x shifts: 10 of 10 found). A 2x slower sleep measures 1.95-2.0x (each call
  has a fixed ~1 ms of overhead) and a 5-call median jitters by a few percent, so
  reporting from 2.0x would miss about half of them; 1.6x leaves that margin and stays
  far above what clean runs show (4 clean demo runs, 6 generators of 60 calls:
  neighbouring 16-call medians within 1.03x, 5-call ones within 1.06x; 0 of 200 noisy
  synthetic series with 3% of calls 2.5x slow give a change, ``tests``).
- The rank test keeps noisy groups quiet: when durations are bimodal and the modes
  alternate at random, two windows can have medians 2x apart by chance, but their ranks
  interleave and the p-value stays high.

A change that comes back (the level returns to within ``min_ratio`` of the one before it)
after fewer than ``min_lasting`` calls (16: the count after which the live detector takes
a group to have changed speed for good, ``SlowdownDetector.shift_after``) is an
*excursion*: a long burst of slow calls, judged call by call against the level around it,
not a new normal. One that lasts longer, or is still going at the end, is a change.

**Drift**: the Mann-Kendall trend test with a Theil-Sen slope (both robust to outliers).
Kendall's tau between call order and log duration must be significant (p < ``alpha``)
and the Theil-Sen line's fitted end-to-start ratio at least ``drift_ratio`` (2.5x, or
1/2.5 for a drift to faster: a 3x drift measures 2.8-3.0x, as above), and the line must
fit the series better than the segments do (a smaller sum of absolute residuals): a step
is monotone too, but a line fits it badly, and a ramp cut into steps leaves a saw-tooth
the line does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

MIN_SEG = 5
MIN_RATIO = 1.6
DRIFT_RATIO = 2.5
ALPHA = 0.01
MIN_LASTING = 16
MAX_TRIES = 8
"""Jumps tried per stretch when the best one fails its tests."""
MAX_TREND_POINTS = 1500
"""Theil-Sen is quadratic in the number of points: longer series are thinned evenly."""


@dataclass
class Change:
    """One change of a series (positions index the series)."""

    kind: str
    """``level_shift`` (to slower), ``speedup`` (to faster) or ``drift``."""
    at: int
    """First call of the new level (a drift: its first call)."""
    until: int
    """One past its last call."""
    before_s: float
    """Typical duration before it (the median of the segment before; a drift: the fitted
    duration at its first call)."""
    after_s: float
    """Typical duration after it (the median of its segment; a drift: the fitted duration
    at its last call)."""
    p_value: float
    """Of the test that found it (Bonferroni-corrected for a split)."""
    ended: bool = False
    """The calls went back to the level before (at ``until``)."""

    @property
    def ratio(self) -> float:
        """``after_s / before_s`` (below 1: faster)."""
        return self.after_s / self.before_s if self.before_s > 0 else math.inf


@dataclass
class Analysis:
    """A series cut into regimes."""

    changes: list[Change] = field(default_factory=list)
    regime: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per call, its regime (0, 1, ...): calls of one regime share a baseline."""
    excursion: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per call, part of a short excursion: judged against its regime, not part of its
    baseline."""
    trend_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per call, the drift line's duration where its regime drifts (NaN elsewhere)."""

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _window_gap(y: np.ndarray, lo: int, hi: int, ks: np.ndarray, window: int
                ) -> np.ndarray:
    """Per split ``k`` of ``y[lo:hi]``: median of the ``window`` calls from ``k`` on minus
    the median of the ``window`` calls before it (fewer where the stretch ends first)."""
    from numpy.lib.stride_tricks import sliding_window_view

    seg = y[lo:hi]
    n = len(seg)
    # Rolling medians where a full window fits, one by one near the ends.
    full = np.median(sliding_window_view(seg, window), axis=1) if n >= window else \
        np.zeros(0)
    out = np.empty(len(ks))
    for i, k in enumerate((ks - lo).tolist()):
        left = full[k - window] if k >= window else float(np.median(seg[:k]))
        right = full[k] if k + window <= n else float(np.median(seg[k:]))
        out[i] = right - left
    return out


def _lad(left: np.ndarray, right: np.ndarray) -> float:
    """Mean absolute deviation of two samples from their own medians."""
    dev = np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum()
    return float(dev) / (len(left) + len(right))


def _per_jump(cand: np.ndarray, cost: np.ndarray) -> list[int]:
    """The least-cost split of each run of consecutive candidates, least cost first."""
    runs = np.split(np.arange(len(cand)), np.flatnonzero(np.diff(cand) > 1) + 1)
    best = [int(r[np.argmin(cost[r])]) for r in runs]
    return [int(cand[i]) for i in sorted(best, key=lambda i: float(cost[i]))]


def _accept(y: np.ndarray, lo: int, hi: int, best: int, window: int, min_seg: int,
            alpha: float, tries: int) -> tuple[int, float] | None:
    """``(best, p)`` when splitting ``y[lo:hi]`` at ``best`` passes: at least ``min_seg``
    calls on each side sit on their side's level (nearer its median than the other's:
    four slow calls and a normal one are a burst), and the Mann-Whitney p-value of the two
    windows times ``tries`` (Bonferroni) is below ``alpha``."""
    left, right = y[max(lo, best - window):best], y[best:min(hi, best + window)]
    ml, mr = float(np.median(left)), float(np.median(right))
    mid, up = (ml + mr) / 2, mr > ml
    if min(int(((left < mid) if up else (left > mid)).sum()),
           int(((right > mid) if up else (right < mid)).sum())) < min_seg:
        return None
    # Imported here, at the first candidate that gets this far: scipy.stats takes 0.6 s
    # to import, more than a small run's whole report without it.
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(left, right, alternative="two-sided").pvalue) * tries
    return (best, min(p, 1.0)) if p < alpha else None


def _steps(y: np.ndarray, min_seg: int, min_ratio: float, alpha: float, window: int
           ) -> tuple[list[int], dict[int, float]]:
    """Split points of ``y`` (sorted, each the first index of a new segment) and the
    p-value each was accepted at."""
    cuts: dict[int, float] = {}
    todo = [(0, len(y))]
    step = math.log(min_ratio) - 1e-12
    while todo:
        lo, hi = todo.pop()
        if hi - lo < 2 * min_seg:
            continue
        ks = np.arange(lo + min_seg, hi - min_seg + 1)
        gap = _window_gap(y, lo, hi, ks, window)
        cand = ks[np.abs(gap) >= step]
        if not len(cand):
            continue
        # Where the calls on either side sit closest to their own side's median (least
        # absolute deviations): the jump itself, not a call or two beside it (the medians
        # move as soon as a window holds a majority of one side, and ranks cannot tell a
        # first slow call that happens to be the fastest of the slow ones).
        cost = [_lad(y[max(lo, k - window):k], y[k:min(hi, k + window)])
                for k in cand.tolist()]
        # The best split that passes both tests below. Not only the very best: where a
        # stretch has two jumps (slower at call 10, back at call 30 of 36), the one with
        # few calls beyond it can fit a hair better and still fail the rank test (16
        # against 6 calls cannot get under 1% after the correction), and giving up there
        # would lose the other jump too.
        # One try per jump (a run of neighbouring candidates: its best split), best first,
        # at most MAX_TRIES: a noisy stretch costs a few rank tests, not one per call.
        found = None
        for k in _per_jump(cand, np.asarray(cost))[:MAX_TRIES]:
            found = _accept(y, lo, hi, k, window, min_seg, alpha, len(ks))
            if found is not None:
                break
        if found is None:
            continue
        best, p = found
        cuts[best] = min(p, 1.0)
        todo += [(lo, best), (best, hi)]
    points = sorted(cuts)
    # Neighbours that ended up less than min_ratio apart are one segment.
    while True:
        bounds = [0, *points, len(y)]
        med = [float(np.median(y[a:b])) for a, b in pairwise(bounds)]
        gaps = [abs(med[i + 1] - med[i]) for i in range(len(points))]
        if not gaps or min(gaps) >= step:
            break
        points.pop(int(np.argmin(gaps)))
    return points, cuts


def _drift(y: np.ndarray, alpha: float, drift_ratio: float
           ) -> tuple[np.ndarray, float] | None:
    """The Theil-Sen line of ``y`` against call order and the trend's p-value, when the
    trend is significant and at least ``drift_ratio`` from start to end. The line comes
    first: most groups have none that steep, and only the p-value needs scipy.stats,
    whose import (0.6 s) was most of a small run's report."""
    n = len(y)
    t = np.arange(n, dtype=np.float64)
    pick = np.unique(np.linspace(0, n - 1, min(n, MAX_TREND_POINTS)).astype(np.int64))
    slope, icpt = theil_sen(y[pick], t[pick])
    ratio = math.exp(slope * (n - 1))
    if 1 / drift_ratio < ratio < drift_ratio:
        return None
    from scipy.stats import kendalltau

    p = float(kendalltau(t, y).pvalue)
    if not math.isfinite(p) or p >= alpha:
        return None
    return icpt + slope * t, p


def theil_sen(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line, computed as ``scipy.stats.theilslopes``
    does (the median of the pairwise slopes; the intercept ``median(y) - slope *
    median(x)``), without its confidence interval or its import."""
    y = np.asarray(y, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    dx = x[:, np.newaxis] - x
    dy = y[:, np.newaxis] - y
    up = dx > 0
    slopes = np.sort(dy[up] / dx[up])
    slope = float(np.median(slopes)) if len(slopes) else math.nan
    return slope, float(np.median(y) - slope * np.median(x))


def _cost(y: np.ndarray, points: list[int]) -> float:
    bounds = [0, *points, len(y)]
    return float(sum(np.abs(y[a:b] - np.median(y[a:b])).sum()
                     for a, b in pairwise(bounds)))


def analyse(durations: np.ndarray, min_seg: int = MIN_SEG, min_ratio: float = MIN_RATIO,
            drift_ratio: float = DRIFT_RATIO, alpha: float = ALPHA,
            min_lasting: int = MIN_LASTING) -> Analysis:
    """Level shifts, speed-ups and drift in ``durations`` (seconds, in start order, all
    finite and positive). Without a change, one regime and no changes."""
    d = np.maximum(np.asarray(durations, dtype=np.float64), 1e-6)
    n = len(d)
    out = Analysis(regime=np.zeros(n, dtype=np.int64), excursion=np.zeros(n, dtype=bool),
                   trend_s=np.full(n, np.nan))
    if n < 2 * min_seg:
        return out
    y = np.log(d)
    points, pvals = _steps(y, min_seg, min_ratio, alpha, min_lasting)
    trend = _drift(y, alpha, drift_ratio)
    if trend is not None and float(np.abs(y - trend[0]).sum()) < _cost(y, points):
        line, p = trend
        out.trend_s = np.exp(line)
        out.changes = [Change("drift", 0, n, float(out.trend_s[0]), float(out.trend_s[-1]), p)]
        return out
    if not points:
        return out
    return _regimes(y, points, pvals, min_ratio, min_lasting, out)


def _regimes(y: np.ndarray, points: list[int], pvals: dict[int, float], min_ratio: float,
             min_lasting: int, out: Analysis) -> Analysis:
    """Segments to regimes: short excursions that come back are folded into the level
    around them; every other boundary is a change, and one that returns to the level
    before the previous change ends that change instead of being one of its own."""
    n = len(y)
    step = math.log(min_ratio) - 1e-12
    segs = [[a, b] for a, b in zip([0, *points], [*points, n], strict=True)]
    exc = np.zeros(n, dtype=bool)
    merged = True
    while merged and len(segs) >= 3:
        merged = False
        for j in range(1, len(segs) - 1):
            a, b = segs[j]
            before = float(np.median(y[segs[j - 1][0]:segs[j - 1][1]][~exc[segs[j - 1][0]:
                                                                             segs[j - 1][1]]]))
            after = float(np.median(y[segs[j + 1][0]:segs[j + 1][1]]))
            if b - a < min_lasting and abs(after - before) < step:
                exc[a:b] = True
                segs[j - 1:j + 2] = [[segs[j - 1][0], segs[j + 1][1]]]
                merged = True
                break
    out.excursion = exc
    level = []
    for r, (a, b) in enumerate(segs):
        out.regime[a:b] = r
        keep = ~exc[a:b]
        level.append(float(np.median(y[a:b][keep])))
    changes: list[Change] = []
    for j in range(1, len(segs)):
        a = segs[j][0]
        prev = changes[-1] if changes else None
        if prev is not None and prev.until == a and not prev.ended and \
                abs(level[j] - math.log(prev.before_s)) < step:
            prev.ended = True  # back to where it was: the end of that change
            continue
        kind = "level_shift" if level[j] > level[j - 1] else "speedup"
        changes.append(Change(kind, a, segs[j][1], math.exp(level[j - 1]),
                              math.exp(level[j]), pvals.get(a, math.nan)))
    out.changes = changes
    return out


__all__ = ["ALPHA", "DRIFT_RATIO", "MIN_LASTING", "MIN_RATIO", "MIN_SEG", "Analysis",
           "Change", "analyse"]
