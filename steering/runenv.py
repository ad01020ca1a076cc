"""Process-wide set-up for writing a run's pool: ``ACADEMY_HOME`` and Academy's log context.

Shared by the demo workloads and by a steering agent attached from another process. Both
helpers undo what they did, so a caller embedding a run in a larger program keeps its own
environment and root-logger level.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from academy.logging import helpers as academy_logging
from academy.logging.configs.base import LogConfig


@contextlib.contextmanager
def academy_home_env(home: str | Path | None) -> Iterator[None]:
    """Point ``ACADEMY_HOME`` at ``home`` for the duration; it is read by each writing process."""
    if home is None:
        yield
        return
    saved = os.environ.get("ACADEMY_HOME")
    os.environ["ACADEMY_HOME"] = str(Path(home).expanduser().resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ACADEMY_HOME", None)
        else:
            os.environ["ACADEMY_HOME"] = saved


@contextlib.contextmanager
def pool_logging(cfg: LogConfig) -> Iterator[None]:
    """Academy's ``log_context(cfg)``, with the root logger's level put back afterwards."""
    root = logging.getLogger()
    saved = root.level
    try:
        with academy_logging.log_context(cfg):
            # Academy assigns root.level directly, which leaves loggers that were used
            # earlier with a stale "INFO/DEBUG disabled" cache; setLevel clears it.
            root.setLevel(root.level)
            yield
    finally:
        # Academy lowers the root level to DEBUG and never raises it again. Put it back
        # unless another Academy log context in this process still wants the DEBUG records.
        if not academy_logging.initialized_log_contexts:
            root.setLevel(saved)
