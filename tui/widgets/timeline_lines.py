"""The timeline's lines: lanes rebuilt from each analysis, the zoom, and ``render_line``.

Apart from :mod:`tui.widgets.timeline` (the widget users meet: its keys, clicks and
messages) because this half only paints: :class:`TimelineLines` turns the state (the
lanes, the zoom, the time cursor and the selected lane) into strips, and the widget's
actions change that state. Lanes are rasterised with numpy a chunk at a time per zoom
(:mod:`tui.widgets.timeline_data`); ``render_line`` only slices a row and run-length
encodes it into segments, and strips are cached.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from features.fmt import fmt_bytes, fmt_s
from features.safe import clean
from features.table import Table
from tui.fit import ellipsize
from tui.model import Analysis, RunModel
from tui.widgets import timeline_data as td

if TYPE_CHECKING:
    from features.detect import DetectionResult

LABEL = 28
"""Cells of the label column (lane names) left of the time cells."""
TOP = 2
"""Sticky lines above the lanes: the ruler and the sparkline; the readout is below."""
MIN_SPC = 1e-5
CHARS = {td.EMPTY: " ", td.STARTUP: "┄", td.ALIVE: "─", td.WAIT: "░", td.END: "┤",
         td.OK: "█", td.INFLIGHT: "▚", td.SLOW: "▓", td.HUNG: "▒", td.CANCELLED: "▁",
         td.CRASH: "✖", td.EXCEPTION: "╳", td.STEER: "◆"}
"""Every state has a glyph of its own as well as a colour, so no two read alike without
colour (a colour-blind reader, a monochrome terminal, a pasted screenshot)."""
COMPONENT = {td.STARTUP: "timeline--startup", td.ALIVE: "timeline--alive",
             td.WAIT: "timeline--wait", td.END: "timeline--end", td.OK: "timeline--ok",
             td.INFLIGHT: "timeline--inflight", td.SLOW: "timeline--slow",
             td.HUNG: "timeline--hung", td.CANCELLED: "timeline--cancelled",
             td.CRASH: "timeline--exception", td.EXCEPTION: "timeline--exception",
             td.STEER: "timeline--steer"}
LEGEND = ((td.OK, "ok"), (td.SLOW, "slow"), (td.HUNG, "hung?"), (td.INFLIGHT, "running"),
          (td.CANCELLED, "cancelled"), (td.EXCEPTION, "failed"), (td.WAIT, "waits"))
"""The key at the right of the readout line."""
MIN_READOUT = 60
"""Cells the readout keeps before the legend is left out."""
CURSOR = 16
"""Added to a cell's code where the time cursor is (a second set of styles)."""


class TimelineLines(ScrollView):
    """Per-agent lanes over time, painted: the state the timeline's keys change, and the
    lines drawn from it. The component classes its styles name, and their colours, are
    declared by :class:`tui.widgets.timeline.Timeline`, the only class made of it."""

    def __init__(self, model: RunModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.spc = 1.0
        """Seconds per cell (the zoom)."""
        self.fit = True
        """Keep the whole run in view as it grows (left by zooming, back with ``0``)."""
        self.grouped = False
        self.cursor_t = 0.0
        """The time cursor, seconds since the run start."""
        self.selected = 0
        """Index of the selected lane in ``data.lanes``."""
        self.data: td.Lanes | None = None
        self.rows: list[tuple[str, int, str]] = []
        """Lines below the sticky ones: ("lane", lane index, "") or ("group", n, name)."""
        self._analysis: Analysis | None = None
        self._detection: DetectionResult | None = None
        """The detection result the bars were marked from (compared by identity)."""
        self._actions: Table | None = None
        self._rasters: td.Rasters | None = None
        self._gen = 0
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._styles: dict[int, Style] = {}
        self._building = False
        """Lanes are being built in a thread (:meth:`data_changed`)."""
        self._span: tuple[float, float, str | None] | None = None
        """A span to show once the lanes being built are (``Timeline.show_span``)."""

    # -- data --------------------------------------------------------------------------

    def data_changed(self) -> None:
        """A new analysis or detection: rebuild the lanes, in a thread (a 10M-record run's
        16k lanes took 0.3 s of the UI thread); zoom, scroll and cursor stay (fit
        follows). One build at a time: the newest analysis is built after it."""
        a, det = self.model.analysis, self.model.detection
        if a is None or (a is self._analysis and det is self._detection) or self._building:
            return
        self._building = True
        ev = self.model.events()
        self._build_lanes(a, det, ev.t0, max(ev.t1, ev.t0), ev.created)

    @work(thread=True, group="timeline-lanes", exit_on_error=False)
    def _build_lanes(self, a: Analysis, det: DetectionResult | None, t0: float,
                     t1: float, created: np.ndarray) -> None:
        data: td.Lanes | None = None
        try:
            data = td.build_lanes(a.agents, a.actions, a.concurrency, t0, t1, created,
                                  det.flags if det is not None else None, a.steering,
                                  a.infra)
        except Exception as e:  # the timeline must not take the app down
            with contextlib.suppress(RuntimeError):
                self.app.call_from_thread(self.notify, f"timeline: lanes not built: {e}",
                                          severity="error")
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self._built, a, det, data)

    def _built(self, a: Analysis, det: DetectionResult | None,
               data: td.Lanes | None) -> None:
        """The lanes built (None: the build failed, and said so): shown, the selected lane
        kept, then a span asked for meanwhile, then a newer analysis."""
        self._building = False
        if data is None:
            self._analysis, self._detection = a, det  # not tried again on the same
            return
        key = self.data.lanes[self.selected].key if self.data and self.data.lanes else None
        self._analysis, self._actions, self._detection = a, a.actions, det
        self.data = data
        keys = [ln.key for ln in self.data.lanes]
        self.selected = keys.index(key) if key in keys else min(self.selected, len(keys) - 1)
        self.selected = max(self.selected, 0)
        self._layout_rows()
        self._rezoom(self.spc)
        self.lanes_built()
        self.data_changed()

    def lanes_built(self) -> None:
        """Called once new lanes are shown (the timeline puts a span asked for then)."""

    def _layout_rows(self) -> None:
        assert self.data is not None
        rows = td.layout_rows(self.data.lanes, self.grouped)
        series = self._analysis.series if self._analysis is not None else {}
        out = []
        for r in rows:  # a sampled process's memory line under its group's CPU line
            out.append(r)
            pid = r[2].rsplit(" ", 1)[-1] if r[0] == "group" else ""
            if pid.isdigit() and int(pid) in series:
                out.append(("memory", int(pid), r[2]))
        self.rows = out

    def _view(self) -> tuple[int, int]:
        """Visible time cells and lines (scrollbars excluded)."""
        w = self.container_size.width - self.scrollbar_size_vertical - LABEL
        h = self.container_size.height - self.scrollbar_size_horizontal
        return max(w, 1), max(h, TOP + 1)

    def _fit_spc(self) -> float:
        dur = self.data.duration if self.data else 0.0
        return max(dur, 1e-3) / max(self._view()[0] - 1, 1)

    def _rezoom(self, spc: float, anchor: float | None = None) -> None:
        """Set the zoom (or refit), keeping time ``anchor`` at the same screen column."""
        tw, _ = self._view()
        old_spc, old_x = self.spc, self.scroll_x
        fit_spc = self._fit_spc()
        if spc >= fit_spc:
            self.fit = True
        self.spc = fit_spc if self.fit else max(spc, MIN_SPC)
        self._gen += 1
        self._cache.clear()
        if self.data is not None:
            self._rasters = td.Rasters(self.data, self.spc)
            cells = tw if self.fit else max(tw, int(self.data.duration / self.spc) + 2)
            self.virtual_size = Size(LABEL + cells, len(self.rows) + TOP + 1)
        if self.fit:
            self.scroll_to(x=0, animate=False, force=True)
        elif anchor is not None:
            col = anchor / old_spc - old_x
            self.scroll_to(x=round(anchor / self.spc - col), animate=False, force=True)
        self.refresh()

    def on_resize(self) -> None:
        self._rezoom(self.spc)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._cache.clear()

    # -- rendering ---------------------------------------------------------------------

    def _style(self, code: int) -> Style:
        if not self._styles:
            base = self.rich_style
            cursor = self.get_component_rich_style("timeline--cursor", partial=True)
            for c in range(td.NCODES):
                s = self.get_component_rich_style(COMPONENT[c]) if c in COMPONENT else base
                self._styles[c], self._styles[c + CURSOR] = s, s + cursor
        return self._styles[code]

    def _cells(self, vals: np.ndarray) -> list[Segment]:
        """Run-length segments of cell codes."""
        if not len(vals):
            return []
        cut = [0, *(np.flatnonzero(vals[1:] != vals[:-1]) + 1).tolist(), len(vals)]
        segs = []
        for a, b in itertools.pairwise(cut):
            v = int(vals[a])
            if v >= CURSOR and v - CURSOR in (td.EMPTY, td.STARTUP, td.ALIVE, td.WAIT):
                text = "│"  # the cursor line shows through the background
            elif v - CURSOR in td.BAR_CODES:
                text = "┃"  # a full block would hide the cursor's background
            else:
                text = CHARS[v % CURSOR] * (b - a)
            segs.append(Segment(text, self._style(v)))
        return segs

    def _cell(self) -> int:
        """The cell under the time cursor."""
        return math.floor(self.cursor_t / self.spc)

    def _cursor_col(self, sx: int, tw: int) -> int:
        c = self._cell() - sx
        return c if 0 <= c < tw else -1

    def _label(self, text: str, style: str) -> Segment:
        return Segment(set_cell_size(ellipsize(text, LABEL - 1), LABEL - 1) + "│",
                       self.get_component_rich_style(style))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        tw, h = self._view()
        if self.data is None or self._rasters is None:
            said = "building the lanes…" if self._building else "analysing…"
            text = said if y == 0 else ""
            return Strip([Segment(text.ljust(width), self.rich_style)], width)
        sx, sy = int(self.scroll_x), int(self.scroll_y)
        cur = self._cursor_col(sx, tw)
        index = sy + y - TOP
        if y == h - 1:
            row: tuple[str, int, str] = ("readout", self.selected, repr(self.cursor_t))
        elif y < TOP:
            row = ("top", y, "")
        elif 0 <= index < len(self.rows):
            row = self.rows[index]
        else:
            return Strip.blank(width, self.rich_style)
        selected = row[0] == "lane" and row[1] == self.selected
        key = (self._gen, row, sx, tw, width, cur, selected)
        strip = self._cache.get(key)
        if strip is None:
            if row[0] == "readout":
                strip = self._readout_strip(width)
            else:
                strip = self._build(row, sx, tw, cur, selected)
            strip = strip.adjust_cell_length(width, self.rich_style)
            self._cache[key] = strip
            if len(self._cache) > 1000:
                self._cache.popitem(last=False)
        return strip

    def _build(self, row: tuple[str, int, str], sx: int, tw: int, cur: int,
               selected: bool) -> Strip:
        assert self.data is not None and self._rasters is not None
        mark = np.zeros(tw, dtype=np.int64)
        if cur >= 0:
            mark[cur] = CURSOR
        kind, i, name = row
        if kind == "top":
            if i == 0:
                zoom = f" {fmt_s(self.spc)}/cell" + (" · fit" if self.fit else "")
                label, comp = self._label(zoom, "timeline--axis"), "timeline--axis"
                text = td.ruler(sx, tw, self.spc)
            else:
                top = self.data.conc_max
                label = self._label(f" at once (max {top})", "timeline--spark")
                comp = "timeline--spark"
                text = td.sparkline(self._rasters.conc(sx, tw), top)
            style = self.get_component_rich_style(comp)
            if cur < 0:
                return Strip([label, Segment(text, style)])
            return Strip([label, Segment(text[:cur], style),
                          Segment(text[cur], style + self._style(CURSOR)),
                          Segment(text[cur + 1:], style)])
        if kind == "memory":
            mem, top_b = self._memory_spark(i, sx, tw)
            label = self._label(f"  rss≤{fmt_bytes(top_b)}", "timeline--group")
            return Strip([label, Segment(mem, self.get_component_rich_style(
                "timeline--spark"))])
        if kind == "group":
            spark, peak = self._cpu_spark(name, sx, tw)
            # With the CPU line, its scale takes the place of the lane count.
            label = self._label(f"▾ {clean(name)} " + (f"cpu≤{peak:.0f}%" if spark
                                                       else f"({i})"), "timeline--group")
            if spark:
                return Strip([label, Segment(spark, self.get_component_rich_style(
                    "timeline--spark"))])
            return Strip([label, *self._cells(mark)])
        lane = self.data.lanes[i]
        text = clean(td.short_id(lane.key)) + " " + clean(lane.cls)
        if lane.kind == "caller":
            text = clean(lane.key) + " waits"
        elif lane.kind == "infra":
            text = clean(lane.key)
        prefix = "▶" if selected else " "
        comp = "timeline--selected" if selected else (
            "timeline--exception" if lane.crashed else "timeline--label")
        segs = self._cells(self._rasters.codes(i, sx, tw).astype(np.int64) + mark)
        return Strip([self._label(prefix + text, comp), *segs])

    def _cpu_spark(self, group: str, sx: int, tw: int) -> tuple[str, float]:
        """CPU % of the group's process per cell, from Parsl's resource samples or the
        process sampler, scaled to its peak over the run (at least 10 %; the label says
        it); ``("", 0)`` when it was not sampled."""
        a = self._analysis
        pid = group.rsplit(" ", 1)[-1]
        if a is None or not a.series or not pid.isdigit() or int(pid) not in a.series:
            return "", 0.0
        s = a.series[int(pid)]
        finite = s.cpu_pct[np.isfinite(s.cpu_pct)]
        top = max(10.0, float(finite.max()) if len(finite) else 0.0)
        t0 = self.model.events().t0
        cells = td.series_cells(s.t - t0, s.cpu_pct, self.spc, sx, tw)
        text = td.sparkline(np.nan_to_num(cells, nan=0.0) / top * 100, 100)
        return "".join(" " if np.isnan(c) else ch
                       for c, ch in zip(cells, text, strict=True)), top

    def _memory_spark(self, pid: int, sx: int, tw: int) -> tuple[str, float]:
        """Resident memory of process ``pid`` per cell, scaled to its peak over the run."""
        a = self._analysis
        if a is None or pid not in a.series:
            return "", 0.0
        s = a.series[pid]
        finite = s.rss_bytes[np.isfinite(s.rss_bytes)]
        top = float(finite.max()) if len(finite) else 0.0
        cells = td.series_cells(s.t - self.model.events().t0, s.rss_bytes, self.spc, sx, tw)
        text = td.sparkline(np.nan_to_num(cells, nan=0.0) / max(top, 1.0) * 100, 100)
        return "".join(" " if np.isnan(c) else ch
                       for c, ch in zip(cells, text, strict=True)), top

    def _readout_strip(self, width: int) -> Strip:
        """The readout, and the legend at the right unless that leaves the readout
        too little room (then the readout is cut first, so the legend stays put)."""
        style = self.get_component_rich_style("timeline--readout")
        text = " " + self.readout()
        legend: list[Segment] = []
        marks = self.data is not None and self.data.marks is not None \
            and len(self.data.marks) > 0
        for code, word in LEGEND + (((td.STEER, "steering"),) if marks else ()):
            part = self.get_component_rich_style(COMPONENT[code], partial=True)
            legend += [Segment(" " + CHARS[code], style + part), Segment(word, style)]
        room = width - sum(len(s.text) for s in legend) - 1
        if room < MIN_READOUT:
            return Strip([Segment(set_cell_size(ellipsize(text, width), width), style)])
        return Strip([Segment(set_cell_size(ellipsize(text, room), room), style), *legend,
                      Segment(" ", style)])

    def readout(self) -> str:
        """The cursor line: time, what the selected lane does then, how many at once."""
        data, acts = self.data, self._actions
        if data is None or acts is None or self._rasters is None:
            return "analysing…"
        cell = self._cell()
        ta, tb = cell * self.spc, (cell + 1) * self.spc
        parts = [f"t=+{self.cursor_t:.3f} s"]
        if data.lanes:
            parts += td.steering_at(data, self.selected, ta, tb)
            parts += td.describe(data, acts, self.selected, ta, tb)
        conc = self._rasters.conc(cell, 1)
        parts.append(f"{int(conc[0]) if len(conc) else 0} executing at once")
        return " · ".join(parts)
