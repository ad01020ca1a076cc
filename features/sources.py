"""Other sources of a run's events, joined onto its pool: each a translator into wide events
plus the keys that join them (the seed talk's point: events from every part of the system,
related by their keys; not a universal monitoring system).

A source reads something the run left beside its pool (Parsl's ``monitoring.db``, Parsl's
text logs, Slurm's ``sacct --json``) and writes what is new since its last :meth:`sync` as
JSON lines shaped like Academy's records (``created`` in epoch seconds, ``name``,
``levelname``/``levelno``, ``msg`` (a fixed template per kind of event, so events group by
it), ``message``, ``source`` and namespaced keys such as ``parsl.block``). The run's reader
reads that file like one of the pool's (:meth:`features.run.Run.add_source`), so the query
language, things, timeline, report, export and ``ask`` see every source at once. The files
live in a temporary directory of the process that reads the run (the pool is the
workflow's, and two readers must not share a file they both append to); a file of a source
is not a process of the run (``processes().end == "source"``).

Sources are found from the content of a path or from the pool itself (a Parsl driver's
records say ``Parsl run initializing in rundir: …``): :mod:`features.source_kinds`. This
module is the base every kind builds on; it knows a run only as a :class:`RunView`, so
the kinds sit below :class:`features.run.Run`, which joins them.
Everything a source reads is untrusted like the pool: values are typed when read, and
nothing read names code to run.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    import numpy as np

    from features.events import Events

__all__ = ["RunView", "Source", "SourceError", "event", "kinds", "register"]


class RunView(Protocol):
    """What a source reads of the run it is joined onto (a :class:`features.run.Run`):
    its events so far, a selection of them, whether it still grows."""

    @property
    def live(self) -> bool: ...

    def events(self) -> Events: ...

    def select(self, where: str | None = None) -> np.ndarray: ...


class SourceError(ValueError):
    """A path that is no source we can read (one line: which path, and why)."""


def event(created: float, source: str, name: str, msg: str, args: tuple[Any, ...] = (),
          level: int = 20, keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """One wide event as a source emits it: Academy's record shape, ``msg % args`` as its
    message, ``None`` keys left out."""
    try:
        message = msg % args if args else msg
    except (TypeError, ValueError):
        message = f"{msg} {args!r}"
    rec: dict[str, Any] = {"created": created, "name": name, "msg": msg, "message": message,
                           "levelname": {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR",
                                         50: "CRITICAL"}.get(level, "INFO"),
                           "levelno": level, "source": source}
    rec.update((k, v) for k, v in (keys or {}).items() if v is not None)
    return rec


class Source(ABC):
    """One source: what it reads, and how to translate what is new."""

    kind: str = ""
    """Short name (``parsl``, ``parsl-logs``, ``slurm``): the events' ``source`` key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def label(self) -> str:
        """The name of its events file in the run, stable, as evidence cites it: its first
        8 characters (``parsl-4d``) name it in ``[ev:parsl-4d:12]``."""
        h = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:8]
        return f"{self.kind}-{h}-{self.path.name}.jsonlog"

    @abstractmethod
    def new_events(self, run: RunView | None) -> Iterator[dict[str, Any]]:
        """Events not emitted before (``run``: the pool read so far, for calibration)."""

    def sync(self, out: Path, run: RunView | None = None) -> int:
        """Append the new events to ``out``; how many."""
        n = 0
        with open(out, "ab") as fh:
            for rec in self.new_events(run):
                fh.write(orjson.dumps(rec, default=str) + b"\n")
                n += 1
        return n


_KINDS: list[tuple[int, Callable[[Path], bool], Callable[[Path], Source]]] = []


def register(sniff: Callable[[Path], bool], make: Callable[[Path], Source],
             rank: int = 0) -> None:
    """A kind of source: ``sniff(path)`` says from its content whether it is one (a file,
    or a directory given as a whole). Where several kinds are in one directory the lowest
    ``rank`` is opened (Parsl's database before its text logs, which say less)."""
    _KINDS.append((rank, sniff, make))
    _KINDS.sort(key=lambda k: k[0])


def kinds() -> list[tuple[int, Callable[[Path], bool], Callable[[Path], Source]]]:
    """The kinds registered, lowest rank first (:mod:`features.source_kinds` registers
    every kind academy-tui reads)."""
    return list(_KINDS)


class SourceFiles:
    """The events files of one run's sources, in a directory removed with the run."""

    def __init__(self, owner: object) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="academy-tui-sources-"))
        weakref.finalize(owner, shutil.rmtree, str(self.dir), True)
        self.sources: list[tuple[Source, Path]] = []
        self._told: dict[int, int] = {}
        """Per source (by id), how many of its own notes were passed on."""

    def add(self, source: Source) -> Path | None:
        """The events file of ``source`` (``None`` when it is attached already)."""
        if any(s.path.resolve() == source.path.resolve() for s, _ in self.sources):
            return None
        out = self.dir / source.label
        out.touch()
        self.sources.append((source, out))
        return out

    def sync(self, run: RunView | None) -> list[str]:
        """Translate what is new in every source; notes on sources that failed, and the
        sources' own new notes (a log that cannot be read, a run directory chosen)."""
        notes = []
        for s, out in self.sources:
            try:
                s.sync(out, run)
            except Exception as exc:  # one broken source must not lose the run
                notes.append(f"{s.kind} {s.path}: {type(exc).__name__}: {exc}"[:300])
            own = getattr(s, "notes", None)
            if isinstance(own, list):
                told = self._told.get(id(s), 0)
                notes.extend(f"{s.kind}: {n}"[:300] for n in own[told:])
                self._told[id(s)] = len(own)
        return notes


def paths_of(sources: Iterable[Source]) -> list[str]:
    return [str(s.path) for s in sources]
