"""The timeline's cells: which code each cell of each lane shows at a zoom level, how many
actions run at once per cell, a sampled series per cell, and the chunked cache of them.

Apart from the lane building because it is the per-repaint half: the widget asks for a
window of cells on every scroll, and this is all numpy over the intervals of one
:class:`~tui.widgets.timeline_model.Lanes`; a raster is the highest code per cell.
"""

from __future__ import annotations

import numpy as np

from features import analyses
from tui.widgets.timeline_model import Lanes


def cell_span(t0: np.ndarray, t1: np.ndarray, spc: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last cell of each interval; an interval narrower than a cell gets one."""
    a = np.floor(t0 / spc).astype(np.int64)
    b = np.maximum(np.ceil(t1 / spc).astype(np.int64) - 1, a)
    return a, b


RASTER_CELLS = 1 << 20
"""Cells (lanes x width) rasterised at once: a run of 16k agents made each code level's
difference arrays 16k lanes by a chunk wide (4 x 134 MB) where a block of lanes at a
time costs a few MB, and gives the same cells."""


def raster(data: Lanes, spc: float, c0: int, width: int) -> np.ndarray:
    """Codes of cells ``[c0, c0 + width)`` of every lane: shape (lanes, width), uint8.

    Vectorised per code level over a block of lanes at a time (:data:`RASTER_CELLS`): a
    difference array marks where intervals of that code open and close, a cumulative
    sum says which cells they cover, and the maximum over levels is the paint order."""
    nl = len(data.lanes)
    out = np.zeros((nl, width), dtype=np.uint8)
    if not nl or not len(data.t0):
        return out
    lo, hi = c0 * spc, (c0 + width) * spc
    hit = (data.t0 < hi) & (data.t1 >= lo)
    if not hit.any():
        return out
    a, b = cell_span(data.t0[hit], data.t1[hit], spc)
    keep = (a < c0 + width) & (b >= c0)
    a = np.clip(a[keep] - c0, 0, width - 1)
    b = np.clip(b[keep] - c0, 0, width - 1)
    lane = data.lane[hit][keep]
    code = data.code[hit][keep]
    by_lane = np.argsort(lane, kind="stable")
    lane, a, b, code = lane[by_lane], a[by_lane], b[by_lane], code[by_lane]
    block = max(1, RASTER_CELLS // (width + 1))
    for l0 in range(0, nl, block):
        i, j = np.searchsorted(lane, [l0, l0 + block])
        if i < j:
            _paint(out[l0:l0 + block], lane[i:j] - l0, a[i:j], b[i:j], code[i:j])
    return out


def _paint(out: np.ndarray, lane: np.ndarray, a: np.ndarray, b: np.ndarray,
           code: np.ndarray) -> None:
    """Paint the intervals (cells ``a`` to ``b`` of ``lane``) into ``out`` (lanes,
    width), the highest code of a cell winning."""
    nl, width = out.shape
    stride = width + 1
    size = nl * stride
    for level in np.unique(code):
        m = code == level
        diff = np.bincount(lane[m] * stride + a[m], minlength=size)
        diff -= np.bincount(lane[m] * stride + b[m] + 1, minlength=size)
        cover = np.cumsum(diff.reshape(nl, stride), axis=1)[:, :width] > 0
        np.maximum(out, cover * np.uint8(level), out=out)


def concurrency_cells(data: Lanes, spc: float, c0: int, width: int) -> np.ndarray:
    """The most actions executing at once within each cell ``[c0, c0 + width)``, so
    a short peak still shows at a coarse zoom."""
    edges = (c0 + np.arange(width)) * spc
    out = analyses.sample_steps(data.conc_t, data.conc_c, edges).astype(np.int64)
    if len(data.conc_t):
        lo, hi = np.searchsorted(data.conc_t, [edges[0], (c0 + width) * spc])
        cells = np.floor(data.conc_t[lo:hi] / spc).astype(np.int64) - c0
        ok = (cells >= 0) & (cells < width)
        np.maximum.at(out, cells[ok], data.conc_c[lo:hi][ok])
    return out


CHUNK = 1024
"""Cells rasterised at once: a pan within a chunk costs nothing."""
CACHE_BYTES = 64 << 20
"""What the chunks kept by a :class:`Rasters` may take."""


class Rasters:
    """Rasters of one ``Lanes`` at one zoom, built a chunk at a time on demand (a deep
    zoom of a long run has millions of virtual cells; only the visited ones are built)."""

    def __init__(self, data: Lanes, spc: float, keep: int = 64) -> None:
        self.data = data
        self.spc = spc
        # At most ``keep`` chunks, and no more than CACHE_BYTES of them: a chunk is a
        # byte per lane and cell (16k agents: 16 MB a chunk, 1 GB for 64).
        self.keep = max(2, min(keep, CACHE_BYTES // max(1, len(data.lanes) * CHUNK)))
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last: tuple[int, int, tuple[np.ndarray, np.ndarray]] | None = None
        """The last window: every line of one repaint asks for the same one."""

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._chunks.pop(k, None)
        if hit is None:
            hit = (raster(self.data, self.spc, k * CHUNK, CHUNK),
                   concurrency_cells(self.data, self.spc, k * CHUNK, CHUNK))
            if len(self._chunks) >= self.keep:
                self._chunks.pop(next(iter(self._chunks)))
        self._chunks[k] = hit  # most recently used last
        return hit

    def window(self, c0: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes (lanes, width) and concurrency (width,) of cells ``[c0, c0 + width)``."""
        c0 = max(c0, 0)
        if self._last is not None and self._last[:2] == (c0, width):
            return self._last[2]
        ks = range(c0 // CHUNK, (c0 + width - 1) // CHUNK + 1)
        parts = [self._chunk(k) for k in ks]
        codes = np.concatenate([p[0] for p in parts], axis=1)
        conc = np.concatenate([p[1] for p in parts])
        off = c0 - ks[0] * CHUNK
        out = codes[:, off:off + width], conc[off:off + width]
        self._last = (c0, width, out)
        return out


def series_cells(t: np.ndarray, v: np.ndarray, spc: float, c0: int, width: int) -> np.ndarray:
    """A sampled series (times since the run start) per cell ``[c0, c0 + width)``: the
    largest sample in the cell, else the last one before it (a step), NaN before the
    first sample and after the last."""
    out = np.full(width, np.nan)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if not len(t):
        return out
    edges = (c0 + np.arange(width)) * spc
    i = np.searchsorted(t, edges, side="right") - 1
    inside = (i >= 0) & (edges <= t[-1])
    out[inside] = v[i[inside]]
    cells = np.floor(t / spc).astype(np.int64) - c0
    m = (cells >= 0) & (cells < width)
    if m.any():
        np.fmax.at(out, cells[m], v[m])
    return out
