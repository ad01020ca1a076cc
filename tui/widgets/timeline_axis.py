"""The timeline's lines of text rather than of cell codes: the time ruler, with a tick and
a label every 1-2-5 step, and the sparklines (how many at once, a process's CPU and memory).

Apart from the rasters because these are characters for the sticky lines, and know nothing
of lanes.
"""

from __future__ import annotations

import math

import numpy as np


def nice_step(spc: float, min_cells: int = 10) -> float:
    """A 1-2-5 tick spacing (seconds) at least ``min_cells`` cells apart."""
    target = spc * min_cells
    if target <= 0 or not math.isfinite(target):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(target))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * mag >= target:
            return m * mag
    return 10.0 * mag


def fmt_t(t: float, step: float) -> str:
    """A tick label with as many decimals as the spacing needs."""
    if step >= 60 and abs(t) >= 60:
        m, s = divmod(t, 60)
        return f"{int(m)}m{s:02.0f}" if step % 60 else f"{int(m)}m"
    digits = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{t:.{digits}f}s"


def ruler(c0: int, width: int, spc: float) -> str:
    """The time axis over cells ``[c0, c0 + width)``: a tick and its label every
    1-2-5 step, spaced so the labels never touch."""
    step = nice_step(spc, 12)
    chars = [" "] * width
    k = math.ceil(c0 * spc / step - 1e-9)
    while True:
        t = k * step
        c = math.floor(t / spc + 1e-9) - c0
        if c >= width:
            break
        text = "▏" + fmt_t(t, step)
        for i, ch in enumerate(text):
            if 0 <= c + i < width:
                chars[c + i] = ch
        k += 1
    return "".join(chars)


SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(conc: np.ndarray, top: int) -> str:
    """One block character per cell, scaled to ``top`` (the run's maximum)."""
    if top <= 0:
        return " " * len(conc)
    level = np.ceil(np.clip(conc, 0, top) / top * 8).astype(np.int64)
    return "".join(SPARK[v] for v in level)

