"""What the timeline's lanes hold at a time: the readout's words for a cell, the action
or steering decision under the cursor, and the next interval start to jump to.

Apart from the lane building and the rasters because these answer the user's questions
about one cell (a key pressed, a click), over the intervals, not the cells.
"""

from __future__ import annotations

import math

import numpy as np

from features.fmt import fmt_s
from features.query import And, Cmp, to_text
from features.safe import clean
from features.table import Table
from tui.widgets.timeline_model import INFLIGHT, STATUS_CODE, STATUS_WORD, WAIT, Lanes, short_id


def actions_at(data: Lanes, lane: int, ta: float, tb: float) -> tuple[np.ndarray, np.ndarray]:
    """Action rows executing (first) and waited on in ``lane`` during ``[ta, tb)``,
    each worst status first, then earliest."""
    m = (data.lane == lane) & (data.action >= 0) & (data.t0 < tb) & (data.t1 >= ta)
    idx = np.flatnonzero(m)
    order = np.lexsort((data.t0[idx], -data.code[idx].astype(np.int64)))
    idx = idx[order]
    bars = idx[data.code[idx] != WAIT]
    waits = idx[data.code[idx] == WAIT]
    return data.action[bars], data.action[waits]


def describe(data: Lanes, acts: Table, lane: int, ta: float, tb: float) -> list[str]:
    """What ``lane`` does during ``[ta, tb)``: its worst execution, its wait, or idle
    (log text cleaned, for the readout line)."""
    if data.lanes[lane].kind == "infra":
        return [f"{clean(data.lanes[lane].key, 40)}: {clean(data.lanes[lane].note, 200)}"]
    bars, waits = actions_at(data, lane, ta, tb)
    name = clean(short_id(data.lanes[lane].key), 40)
    parts = []
    if len(bars):
        b = int(bars[0])
        code = STATUS_CODE.get(acts["status"][b], INFLIGHT)
        word = STATUS_WORD[code]
        more = f" (+{len(bars) - 1} more)" if len(bars) > 1 else ""
        parts.append(f"{name}: {clean(acts['action'][b], 40)} {word} "
                     f"exec {fmt_s(float(acts['exec_s'][b]))}{more}{judged(data, b, code)}")
    elif not len(waits):
        parts.append(f"{name}: idle")
    if len(waits):
        w = int(waits[0])
        more = f" (+{len(waits) - 1} more)" if len(waits) > 1 else ""
        parts.append(f"{name} waits on {clean(acts['action'][w], 40)} "
                     f"{fmt_s(float(acts['total_s'][w]))}{more}")
    return parts


def steering_at(data: Lanes, lane: int, ta: float, tb: float) -> list[str]:
    """The steering decisions in ``lane`` during ``[ta, tb)`` (cleaned, for the
    readout): the first one's message, and how many more."""
    m = data.marks
    if m is None or not len(m):
        return []
    hit = np.flatnonzero((m["lane"] == lane) & (m["t"] >= ta) & (m["t"] < tb))
    if not len(hit):
        return []
    more = f" (+{len(hit) - 1} more)" if len(hit) > 1 else ""
    return [f"steering {clean(str(m['kind'][hit[0]]), 20)}: "
            f"{clean(str(m['message'][hit[0]]), 160)}{more}"]


def mark_at(data: Lanes, lane: int, cell: int, spc: float) -> tuple[str, int] | None:
    """``(filter, row)`` of the steering decision in ``lane`` at ``cell``: the filter
    shows every record of its suggestion (``steering.id``), or the record alone."""
    m = data.marks
    if m is None or not len(m):
        return None
    hit = np.flatnonzero((m["lane"] == lane) & (np.floor(m["t"] / spc) == cell))
    if not len(hit):
        return None
    i = int(hit[0])
    row = int(m["row"][i])
    sid, session = m["id"][i], m["session"][i]
    if isinstance(sid, str) and sid and isinstance(session, str) and session:
        return to_text(And((Cmp("steering.session", "=", session),
                            Cmp("steering.id", "=", sid)))), row
    return f"@row={row}", row


def judged(data: Lanes, row: int, code: int) -> str:
    """What the detector said about action ``row`` (``""`` when nothing)."""
    r = float(data.ratio[row]) if row < len(data.ratio) else math.nan
    if not math.isfinite(r):
        return ""
    inc = int(data.incident[row]) if row < len(data.incident) else 0
    what = "possibly hung" if code == INFLIGHT else "slow"
    return f", {what}: {r:.1f}x its median" + (f" (incident #{inc})" if inc else "")


def pick_action(data: Lanes, acts: Table, lane: int, cell: int, spc: float
                ) -> tuple[str, int] | None:
    """``(tag, row)`` of the action in ``lane`` at ``cell`` (its execution first, else a
    call it waits on; the nearest within a few cells when none is exactly there). The
    row is the execution's (or the call's start) record."""
    for reach in (0, 1, 3):
        bars, waits = actions_at(data, lane, (cell - reach) * spc, (cell + 1 + reach) * spc)
        if len(bars) or len(waits):
            break
    else:
        return None
    i = int(bars[0]) if len(bars) else int(waits[0])
    first, other = ("row_exec", "row_start") if len(bars) else ("row_start", "row_exec")
    row = int(acts[first][i]) if acts[first][i] >= 0 else int(acts[other][i])
    return str(acts["tag"][i]), row


def next_start(starts: np.ndarray, mask: np.ndarray, lo: float, hi: float,
               direction: int) -> int | None:
    """Index of the first start at or after ``hi`` (``direction`` > 0), or the last
    one before ``lo``, among ``mask``; None when there is none."""
    idx = np.flatnonzero(mask & ((starts >= hi) if direction > 0 else (starts < lo)))
    if not len(idx):
        return None
    k = np.argmin(starts[idx]) if direction > 0 else np.argmax(starts[idx])
    return int(idx[k])

