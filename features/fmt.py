"""Numbers in words, the same everywhere: seconds, sizes, counts with their nouns,
histogram lines. Pure formatting with no run in it, so the modules that print a number do
not import the report (16 did, for ``fmt_s``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numbers in words need no numpy: the catalog's fast path imports this
    import numpy as np

__all__ = ["count", "fmt_age", "fmt_bytes", "fmt_dur", "fmt_edges", "fmt_s", "histogram_lines",
           "short_file"]


def short_file(name: str | None) -> str:
    """The first 8 characters of a pool file name (its instance uuid prefix)."""
    return (name or "?")[:8]


def fmt_dur(x: float | None) -> str:
    """Seconds, readable: 12.0 ms, 0.512 s, 1.25 s, 3 min 4 s (an answer's facts too,
    :mod:`features.facts`, which imports it from here)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) < 1:
        return f"{x * 1000:.1f} ms" if abs(x) < 0.1 else f"{x:.3f} s"
    if abs(x) < 120:
        return f"{x:.2f} s"
    return f"{int(x // 60)} min {x % 60:.0f} s"


def fmt_s(x: float | None) -> str:
    """Seconds, readable: 0.012 s, 1.25 s, 3 min 4 s."""
    return fmt_dur(x)


def fmt_bytes(n: float) -> str:
    """A size, readable: 512 B, 3.2 MB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def count(n: int, noun: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fmt_edges(edges: Sequence[float] | np.ndarray) -> list[str]:
    """Histogram bin edges in one unit, with just enough decimals that neighbouring
    edges read differently (0.5012 s - 0.5014 s, not 0.501 s - 0.501 s)."""
    xs = [float(x) for x in edges]
    top = max((abs(x) for x in xs), default=0.0)
    if top < 0.1:
        scale, unit, digits = 1000.0, "ms", 1
    elif top < 120:
        scale, unit, digits = 1.0, "s", 3 if top < 1 else 2
    else:
        scale, unit, digits = 1 / 60, "min", 1
    labels: list[str] = []
    for extra in range(6):
        labels = [f"{x * scale:.{digits + extra}f} {unit}" for x in xs]
        if all(a != b for a, b in pairwise(labels)):
            break
    return labels


def histogram_lines(values: np.ndarray, bins: int, width: int = 30, bar: str = "#",
                    dash: str = "-") -> list[str]:
    """A text histogram of durations, a line per bin: edges, count, bar."""
    from features import analyses

    counts, edges = analyses.histogram(values, bins=bins)
    if not len(counts):
        return []
    if len(counts) == 1:
        return [f"  all {int(counts[0])} took {fmt_s(float(edges[0]))}"]
    labels = fmt_edges(edges)
    w = max(map(len, labels))
    peak = max(int(counts.max()), 1)
    return [f"  {labels[i]:>{w}} {dash} {labels[i + 1]:>{w}}  {int(k):6d} "
            f"{bar * max(round(k / peak * width), 1 if k else 0)}"
            for i, k in enumerate(counts)]


def fmt_age(seconds: float) -> str:
    """How long ago, roughly: ``42 s``, ``7 min``, ``5 h``, ``3 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
