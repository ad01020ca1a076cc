"""What the timeline draws: the cell codes, a lane, and the lanes with their intervals.

Apart from the lane building (:mod:`tui.widgets.timeline_data`) because every other
timeline module (rasters, lookups, the widget) needs these names and none of the building:
this module imports nothing of the timeline, so all of them can import it.

Every drawable thing (a lifecycle phase, a caller's wait, an action's execution, an end
marker) is one interval ``(lane, t0, t1, code)``; codes are numbered in paint priority,
so layering is a maximum. Times are relative seconds since the run start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from features.table import Table

# Cell codes, in paint priority (a higher code hides a lower one in the same cell).
(EMPTY, STARTUP, ALIVE, WAIT, END, OK, INFLIGHT, SLOW, HUNG, CANCELLED, CRASH,
 EXCEPTION, STEER) = range(13)
NCODES = 13
BAR_CODES = (OK, INFLIGHT, SLOW, HUNG, CANCELLED, EXCEPTION)
STATUS_CODE = {"ok": OK, "in flight": INFLIGHT, "orphaned": INFLIGHT,
               "cancelled": CANCELLED, "exception": EXCEPTION}
"""Worst status wins a cell: exception > cancelled > in flight > ok (the code order).
The detector's judgement ranks between: possibly hung > slow > in flight."""

STATUS_WORD = {OK: "ok", INFLIGHT: "unfinished", SLOW: "SLOW", HUNG: "POSSIBLY HUNG",
               CANCELLED: "cancelled", EXCEPTION: "EXCEPTION"}
JUDGED = {"slow": (OK, SLOW), "possibly hung": (INFLIGHT, HUNG)}
"""Detector flag -> (the status code it refines, the code painted instead): a slow call
that also failed stays a failure."""
_SHORT_ID = re.compile(r"^[A-Za-z]+<([^<>]*)>$")


def short_id(agent_id: str) -> str:
    """``"AgentId<39d362a2>"`` -> ``"39d362a2"`` (anything else unchanged)."""
    m = _SHORT_ID.match(agent_id)
    return m.group(1) if m else agent_id


@dataclass
class Lane:
    """One horizontal lane: an agent, or a caller that is not an agent (the driver)."""

    key: str
    """The agent or caller id (raw log text: clean it before painting)."""
    kind: str
    """``agent``, ``caller`` or ``infra`` (a Parsl block or manager: features.infra)."""
    cls: str = ""
    group: str = ""
    """Process of an agent: file prefix and pid (raw log text); for an infra lane, the
    group of the process it hosts (``Parsl`` when none of the run's is known)."""
    crashed: bool = False
    note: str = ""
    """What an infra lane's readout says (its states and times)."""


@dataclass
class Lanes:
    """Lanes and every interval drawn in them, for one analysis snapshot."""

    lanes: list[Lane]
    lane: np.ndarray
    """Lane index of each interval."""
    t0: np.ndarray
    t1: np.ndarray
    code: np.ndarray
    action: np.ndarray
    """Row in the actions table of exec/wait intervals; -1 for lifecycle ones."""
    duration: float
    """Seconds from the run's first to its last event so far."""
    conc_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    conc_c: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ratio: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Per action row: its duration against its group's median when the detector
    flagged it (slow or possibly hung), else NaN."""
    incident: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Per action row: the incident it belongs to (0: none)."""
    marks: Table | None = None
    """The steering agent's decisions (``tui.model.steering_marks``) with ``lane`` and
    ``t`` relative to the run start, in time order; drawn as :data:`STEER` instants."""

    @property
    def conc_max(self) -> int:
        return int(self.conc_c.max()) if len(self.conc_c) else 0
