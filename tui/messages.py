"""Messages the ingest and analysis workers post to the UI (past tense, one per batch),
and the screens' requests to the app to move between them (the screens do not import
each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message


@dataclass
class LoadProgressed(Message):
    """The first load of a run read ``done`` of ``total`` bytes."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        # A later progress says all an earlier one did: when the UI falls behind, only the
        # newest of the queued ones is handled (Textual drops this one for it).
        return isinstance(message, LoadProgressed)


@dataclass
class AnomaliesDetected(Message):
    """The detector judged a snapshot of ``events`` rows (``RunModel.detection``)."""

    events: int


@dataclass
class EventsIngested(Message):
    """The store grew to ``total`` events (``new`` since the last message)."""

    total: int
    new: int
    loading: bool

    def can_replace(self, message: Message) -> bool:
        """A later ingest supersedes this one (the handler re-reads the store): a UI that
        fell behind a fast writer handles one message for the queued batches, not one per
        batch. Its ``new`` keeps the count of the batches it replaces."""
        if isinstance(message, EventsIngested):
            message.new += self.new
            return True
        return False


@dataclass
class RunNoted(Message):
    """The reader noticed something about the pool (a file replaced, deleted, ...)."""

    note: str


@dataclass
class ThingsUpdated(Message):
    """Actions, agents and analyses were recomputed for a snapshot of ``events`` rows."""

    events: int


@dataclass
class FilterApplied(Message):
    """A filter finished evaluating (in a worker) with ``matches`` rows."""

    expr: str
    matches: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    """How the filter meets the data: keys no event has (with close matches), numbers
    compared with text... (:func:`features.query.explain`)."""


@dataclass
class OpenRun(Message):
    """A screen asks the app to open the run at ``path`` over the run catalog."""

    path: Path


class ShowCatalog(Message):
    """A screen asks the app to show the run catalog in its place."""
