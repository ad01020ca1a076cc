"""One field of the actions compared between two groups (a selection and a baseline): the
gap between its two distributions, what chance alone reaches at these sizes, and how
the field splits the rows (so fields that split them the same way are told once).

Kept apart from :mod:`features.explain`, which ranks the fields and words the result, so
the statistics can be read and checked on their own: for numbers the gap is the
two-sample Kolmogorov-Smirnov statistic (the split is a threshold), for categories the
largest difference in the share of one value (the split is "this value or not"); chance
is the KS critical value at ``ALPHA`` shared by all the fields tested (Bonferroni).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from features.normalize import infer_numeric

ID_LIKE = ("process", "thread", "pid", "lineno", "levelno")
"""Numeric keys that name something (compared as categories, not magnitudes)."""
ALPHA = 0.01
"""Chance of calling any field different when none is (shared by all fields tested)."""
EXACT_MAX = 1000
"""Up to this many calls in all, the chance gap is computed exactly."""


@dataclass
class Difference:
    """One field, compared between the selection and the baseline."""

    field: str
    kind: str
    """``value`` (one category is over- or under-represented), ``number`` (the
    distributions are shifted) or ``presence`` (the key is there more often)."""
    score: float
    """Largest gap between the two distributions over all two-way splits, 0..1."""
    chance: float
    """What chance alone reaches at these sizes; above it counts as a difference."""
    value: Any = None
    share_selection: float | None = None
    share_baseline: float | None = None
    median_selection: float | None = None
    median_baseline: float | None = None
    also: list[str] = dataclasses.field(default_factory=list)
    """Other fields that split the actions exactly the same way."""
    sentence: str = ""

    @property
    def significant(self) -> bool:
        return self.score > self.chance

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = plain(self.value)
        d["chance"] = plain(self.chance)
        d["significant"] = self.significant
        return d


def plain(v: Any) -> Any:
    """``v`` as JSON can hold it: a Python scalar, and None for what is not finite."""
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def numeric(name: str, values: np.ndarray) -> np.ndarray | None:
    """Floats (NaN where missing) when every present value is a number, else None."""
    if name.rsplit(".", 1)[-1] in ID_LIKE or values.dtype.kind == "b":
        return None
    if values.dtype.kind in "fiu":
        return values.astype(np.float64)
    present = values[np.asarray(values != None, dtype=bool)]  # noqa: E711
    if not len(present) or infer_numeric(present.tolist()) == "str":
        return None
    out = np.full(len(values), np.nan)
    out[np.asarray(values != None, dtype=bool)] = present.astype(np.float64)  # noqa: E711
    return out


def median(x: np.ndarray) -> float | None:
    """The median of the values present (None when there are none)."""
    x = x[~np.isnan(x)]
    return float(np.median(x)) if len(x) else None


def compare(name: str, values: np.ndarray, in_sel: np.ndarray
            ) -> tuple[Difference, np.ndarray] | None:
    """Score one field over the rows of selection and baseline (``in_sel`` tells which);
    ``None`` when it cannot tell anything (one value for all, or a near-unique id).
    Also returns the field's partition of the rows (codes), to find fields that split
    the actions the same way."""
    n1, n2 = int(in_sel.sum()), int((~in_sel).sum())
    num = numeric(name, values)
    if num is not None:
        key = np.where(np.isnan(num), -np.inf, num)
        u, inv = np.unique(key, return_inverse=True)
    else:
        if values.dtype.kind == "f":  # an id-like number: a category per value
            values = np.array([None if v != v else str(int(v)) for v in values], dtype=object)
        keys = np.array(["\x00" if v is None else str(v) for v in values.tolist()], dtype=str)
        u, inv = np.unique(keys, return_inverse=True)
        n_present = int((keys != "\x00").sum())
        distinct = len(u) - int(u[0] == "\x00")
        if n_present >= 5 and distinct >= 0.9 * n_present:
            return None  # a tag, a uuid, a message with one: says nothing about a group
    if len(u) < 2:
        return None
    ca = np.bincount(inv[in_sel], minlength=len(u)) / max(n1, 1)
    cb = np.bincount(inv[~in_sel], minlength=len(u)) / max(n2, 1)
    if num is None:
        d = ca - cb
        # On a tie (two values, one up, one down) say the over-represented one.
        top = np.flatnonzero(np.isclose(np.abs(d), np.abs(d).max()))
        i = int(top[np.argmax(d[top])])
        value = None if u[i] == "\x00" else str(u[i])
        return Difference(name, "value", float(abs(d[i])), 0.0, value, float(ca[i]),
                          float(cb[i])), inv
    d = np.cumsum(ca) - np.cumsum(cb)
    i = int(np.argmax(np.abs(d)))
    diff = Difference(name, "number", float(abs(d[i])), 0.0,
                      median_selection=median(num[in_sel]),
                      median_baseline=median(num[~in_sel]))
    if np.isinf(u[i]):  # the best split is "has the key or not"
        diff.kind = "presence"
        diff.share_selection, diff.share_baseline = 1 - float(ca[0]), 1 - float(cb[0])
    return diff, inv


@functools.lru_cache(maxsize=256)
def chance_gap(n1: int, n2: int, tests: int) -> float:
    """The largest gap chance alone reaches: the two-sample Kolmogorov-Smirnov critical
    value at ``ALPHA`` with a Bonferroni correction over ``tests`` fields. Exact (lattice
    path count) for small samples, where the asymptotic formula overshoots: with 3 slow
    calls against 33 it would demand a gap above 1, so even a perfect split would never
    count; asymptotic for large ones, where it is accurate. The tail is scipy's exact
    two-sample p-value (a test holds them equal); it is computed here because this needs
    its inverse, the critical gap, which scipy offers only for one sample (``kstwo``)."""
    if not n1 or not n2:
        return math.inf
    a = ALPHA / max(tests, 1)
    if n1 + n2 > EXACT_MAX:
        return math.sqrt(-math.log(a / 2) / 2) * math.sqrt(1 / n1 + 1 / n2)
    n1, n2 = sorted((n1, n2))
    i, j = np.meshgrid(np.arange(n1 + 1), np.arange(n2 + 1), indexing="ij")
    gaps = np.unique(np.abs(i * n2 - j * n1))  # every attainable gap, times n1 * n2
    lo, hi = 0, len(gaps)  # find the smallest gap whose tail probability is <= a
    while lo < hi:
        mid = (lo + hi) // 2
        if ks_tail(n1, n2, int(gaps[mid])) <= a:
            hi = mid
        else:
            lo = mid + 1
    # Chance reaches every gap below the critical one (``score > chance`` is significant).
    return float(gaps[lo - 1]) / (n1 * n2) if lo > 0 else 0.0


def ks_tail(n1: int, n2: int, g: int) -> float:
    """P(KS gap >= g / (n1 n2)) when the n1 + n2 values are split at random: one minus
    the share of monotone lattice paths from (0, 0) to (n1, n2) that stay strictly
    inside |i n2 - j n1| < g (counted row by row; within a row the allowed j form one
    interval, so a row is a cumulative sum of the row before)."""
    prev = np.zeros(n2 + 1)
    for i in range(n1 + 1):
        # |i n2 - j n1| < g  <=>  (i n2 - g) / n1 < j < (i n2 + g) / n1
        jlo = max(0, (i * n2 - g) // n1 + 1)
        jhi = min(n2, -((-(i * n2 + g)) // n1) - 1)
        row = np.zeros(n2 + 1)
        if jlo <= jhi:
            if i == 0:
                row[jlo:jhi + 1] = 1.0 if jlo == 0 else 0.0
            else:
                row[jlo:jhi + 1] = np.cumsum(prev[jlo:jhi + 1])
        prev = row
    inside = prev[n2] / math.comb(n1 + n2, n1)
    return max(0.0, 1.0 - inside)


def split_key(inv: np.ndarray) -> bytes:
    """A partition's codes relabelled by first appearance: equal bytes, same split."""
    _, first, inv2 = np.unique(inv, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv2].tobytes()
