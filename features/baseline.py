"""Robust per-group statistics: what is typical for one (agent class, action).

The baseline of a duration is its median, with a robust spread
``scale = max(1.4826 * MAD, 5% of the median, 1 ms)`` (1.4826 * MAD estimates the
standard deviation of normal data; the floors keep identical durations, MAD 0, from
turning a microsecond into a huge z-score) and its 99th percentile (for hang checks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from features.table import Table

MAD_TO_SIGMA = 1.4826
Group = tuple[str, str]
"""(agent class, action)."""


def group_name(group: Group) -> str:
    """``("GeneratorAgent", "next_item")`` -> ``"GeneratorAgent.next_item"``."""
    return f"{group[0]}.{group[1]}"


@dataclass
class GroupBaseline:
    """What is typical for one (agent class, action)."""

    agent_class: str
    action: str
    n: int
    """Completed calls seen in the group."""
    n_baseline: int
    """Calls the baseline is made of (non-slow, past warm-up)."""
    enough: bool
    warmup: bool
    """First calls per agent are left out (and flagged ``warm-up``)."""
    median: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    p99: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    @property
    def group(self) -> str:
        return group_name((self.agent_class, self.action))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        d = asdict(self)
        d["group"] = self.group
        return jsonable(d)


def jsonable(v: Any) -> Any:
    """``v`` with numpy scalars as Python values and NaN/inf as None, recursively."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def robust(x: np.ndarray) -> tuple[float, float, float, int]:
    """Median, robust spread, p99 and count of the finite values of ``x``."""
    x = x[np.isfinite(x)]
    if not len(x):
        return math.nan, math.nan, math.nan, 0
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    scale = max(MAD_TO_SIGMA * mad, 0.05 * abs(med), 1e-3)
    return med, scale, float(np.percentile(x, 99)), len(x)


def group_rows(groups: list[Group], mask: np.ndarray) -> Iterator[tuple[Group, np.ndarray]]:
    """Each group with its rows among ``mask``, in order of first appearance."""
    codes: dict[Group, int] = {}
    code = np.fromiter((codes.setdefault(g, len(codes)) for g in groups), dtype=np.int64,
                       count=len(groups))
    rows = np.flatnonzero(mask)
    by = np.argsort(code[rows], kind="stable")
    rows, sorted_codes = rows[by], code[rows][by]
    bounds = np.searchsorted(sorted_codes, np.arange(len(codes) + 1))
    for g, k in codes.items():
        if bounds[k] < bounds[k + 1]:
            yield g, rows[bounds[k]:bounds[k + 1]]


def groups_of(t: Table) -> list[Group]:
    """Each call's group: (agent class, action)."""
    return list(zip([str(c) for c in t["agent_class"].tolist()],
                    [str(a) for a in t["action"].tolist()], strict=True))
