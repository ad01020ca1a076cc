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


def raster(data: Lanes, spc: float, c0: int, width: int,
           lanes: tuple[int, int] | None = None) -> np.ndarray:
    """Codes of cells ``[c0, c0 + width)`` of every lane (of lanes ``[l0, l1)`` when
    ``lanes`` is given): shape (lanes, width), uint8.

    Vectorised per code level over a block of lanes at a time (:data:`RASTER_CELLS`): a
    difference array marks where intervals of that code open and close, a cumulative
    sum says which cells they cover, and the maximum over levels is the paint order."""
    l0, l1 = lanes if lanes is not None else (0, len(data.lanes))
    nl = max(l1 - l0, 0)
    out = np.zeros((nl, width), dtype=np.uint8)
    if not nl or not len(data.t0):
        return out
    lo, hi = c0 * spc, (c0 + width) * spc
    hit = (data.t0 < hi) & (data.t1 >= lo)
    if lanes is not None:
        hit &= (data.lane >= l0) & (data.lane < l1)
    if not hit.any():
        return out
    a, b = cell_span(data.t0[hit], data.t1[hit], spc)
    keep = (a < c0 + width) & (b >= c0)
    a = np.clip(a[keep] - c0, 0, width - 1)
    b = np.clip(b[keep] - c0, 0, width - 1)
    lane = data.lane[hit][keep] - l0
    code = data.code[hit][keep]
    by_lane = np.argsort(lane, kind="stable")
    lane, a, b, code = lane[by_lane], a[by_lane], b[by_lane], code[by_lane]
    block = max(1, RASTER_CELLS // (width + 1))
    for k0 in range(0, nl, block):
        i, j = np.searchsorted(lane, [k0, k0 + block])
        if i < j:
            _paint(out[k0:k0 + block], lane[i:j] - k0, a[i:j], b[i:j], code[i:j])
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
LANE_BLOCK = 64
"""Lanes rasterised at once: a screen shows a few dozen. All of a run's 1,656 lanes at
once took 70-80 ms of the UI thread when the timeline was first shown, and again at
each zoom."""
CACHE_BYTES = 64 << 20
"""What the chunks kept by a :class:`Rasters` may take."""


class Rasters:
    """Rasters of one ``Lanes`` at one zoom, built a chunk of cells by a block of lanes at
    a time on demand (a deep zoom of a long run has millions of virtual cells, a big run
    thousands of lanes; only the visited ones are built)."""

    def __init__(self, data: Lanes, spc: float, keep: int = 64) -> None:
        self.data = data
        self.spc = spc
        nl = len(data.lanes)
        blocks = max(1, -(-nl // LANE_BLOCK))
        # At most ``keep`` chunks of every block, and no more than CACHE_BYTES of them: a
        # chunk is a byte per lane and cell (a block of 64 lanes: 64 KB).
        self.keep = max(2, min(keep * blocks,
                               CACHE_BYTES // max(1, min(nl, LANE_BLOCK) * CHUNK)))
        self._chunks: dict[tuple[int, int], np.ndarray] = {}
        self._conc: dict[int, np.ndarray] = {}
        self._last: dict[tuple[int, int, int], np.ndarray] = {}
        """The blocks' last windows: every line of one repaint asks for the same one."""

    def _chunk(self, k: int, block: int) -> np.ndarray:
        hit = self._chunks.pop((k, block), None)
        if hit is None:
            l0 = block * LANE_BLOCK
            hit = raster(self.data, self.spc, k * CHUNK, CHUNK,
                         (l0, min(l0 + LANE_BLOCK, len(self.data.lanes))))
            if len(self._chunks) >= self.keep:
                self._chunks.pop(next(iter(self._chunks)))
        self._chunks[(k, block)] = hit  # most recently used last
        return hit

    def _conc_chunk(self, k: int) -> np.ndarray:
        hit = self._conc.get(k)
        if hit is None:
            if len(self._conc) >= 64:
                self._conc.pop(next(iter(self._conc)))
            hit = self._conc[k] = concurrency_cells(self.data, self.spc, k * CHUNK, CHUNK)
        return hit

    def _span(self, c0: int, width: int) -> tuple[range, int]:
        ks = range(c0 // CHUNK, (c0 + width - 1) // CHUNK + 1)
        return ks, c0 - ks[0] * CHUNK

    def _block_window(self, block: int, c0: int, width: int) -> np.ndarray:
        """Codes of cells ``[c0, c0 + width)`` of the lanes of ``block``."""
        key = (block, c0, width)
        got = self._last.get(key)
        if got is None:
            if len(self._last) >= 64:
                self._last.clear()
            ks, off = self._span(c0, width)
            both = np.concatenate([self._chunk(k, block) for k in ks], axis=1)
            got = self._last[key] = both[:, off:off + width]
        return got

    def codes(self, lane: int, c0: int, width: int) -> np.ndarray:
        """Codes of cells ``[c0, c0 + width)`` of ``lane``."""
        block = lane // LANE_BLOCK
        return self._block_window(block, max(c0, 0), width)[lane - block * LANE_BLOCK]

    def conc(self, c0: int, width: int) -> np.ndarray:
        """The most actions executing at once in each cell ``[c0, c0 + width)``."""
        c0 = max(c0, 0)
        ks, off = self._span(c0, width)
        return np.concatenate([self._conc_chunk(k) for k in ks])[off:off + width]

    def window(self, c0: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes (lanes, width) of every lane and concurrency (width,) of cells
        ``[c0, c0 + width)``."""
        c0 = max(c0, 0)
        blocks = range(-(-len(self.data.lanes) // LANE_BLOCK))
        codes = np.concatenate([self._block_window(b, c0, width) for b in blocks]) \
            if len(blocks) else np.zeros((0, width), dtype=np.uint8)
        return codes, self.conc(c0, width)


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
