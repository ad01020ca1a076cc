"""What a fibonacci demo run reports: per pair (:class:`PairResult`) and as a whole
(:class:`DemoResult`).

Apart from :mod:`steering.demo.workflow` because callers that only read a finished run (the
TUI, tests) need these shapes and not the machinery that makes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class PairResult:
    """What one launcher/generator pair produced."""

    pair: int
    values: list[int] = dataclasses.field(default_factory=list)
    iter_s: float = 0.0
    """Seconds from the first ``next_item`` call to the end of the pair's loop."""
    error: str | None = None
    """``repr`` of the exception that stopped the pair, if any."""
    launcher_uid: str | None = None
    generator_uid: str | None = None
    """Full uuid of the generator agent (the one a steering agent would talk to)."""

    @property
    def count(self) -> int:
        """Number of items received."""
        return len(self.values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (values are left out: the pool has them)."""
        return {
            'pair': self.pair,
            'count': self.count,
            'last': self.values[-1] if self.values else None,
            'iter_s': self.iter_s,
            'error': self.error,
            'launcher_uid': self.launcher_uid,
            'generator_uid': self.generator_uid,
        }


@dataclasses.dataclass
class DemoResult:
    """Outcome of one demo run."""

    pool_dir: Path
    pool_uuid: str
    wall_s: float
    """Seconds from just before the manager was built to just after it closed."""
    naive_s: float
    """``2 * sleep * iterations``: the run time of a pair with zero overhead and no slowdown."""
    ok: bool
    error: str | None
    results: list[PairResult]
    steering: list[dict[str, Any]] | None = None
    """The steering agent's audit events (``DemoOptions.steer``), oldest first."""
    parsl_dir: Path | None = None
    """``parsl``: Parsl's run directory (``000/parsl.log`` ..., ``monitoring.db``)."""
