"""What a fibonacci demo run is asked to do: :class:`DemoOptions`, checked as it is made.

Apart from :mod:`steering.demo.workflow` (which runs the demo) because the options and
their rules are read on their own: by the command line, by the TUI that builds a demo's
arguments, and by tests, none of which need the run itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from steering.demo.fibagents import validate_sleep

Executors = Literal['thread', 'process', 'parsl']
Exchanges = Literal['local', 'http', 'redis']


@dataclasses.dataclass
class DemoOptions:
    """What to run. Validated on construction and again when a run starts."""

    iterations: int = 16
    sleep: float = 0.5
    executor: Executors = 'thread'
    exchange: Exchanges = 'local'
    pairs: int = 1
    slow_at: int | None = None
    slow_factor: float = 3.0
    slow_len: int = 1
    fail_at: int | None = None
    drift: float | None = None
    """The generators' sleep grows steadily (geometrically) to this many times its start over
    the iterations; None: no drift."""
    set_sleep_at: int | None = None
    """Before this iteration the driver calls ``set_sleep(set_sleep_to)`` on its generator (a
    deliberate change, as a steering agent makes); None: never."""
    set_sleep_to: float | None = None
    redis_host: str = '127.0.0.1'
    redis_port: int = 6379
    http_port: int | None = None
    """Port of the spawned HTTP exchange; a free one is picked when ``None``."""
    academy_home: str | Path | None = None
    """Where the pool goes (``<home>/logs/<pool uuid>/``); Academy's default home when ``None``."""
    label: str = 'demo'
    step_timeout: float | None = None
    """Seconds to wait for one agent call (the first includes worker start-up); None: no limit."""
    steer: str | None = None
    """Run a steering agent alongside: ``suggest``, ``confirm`` or ``apply``; None: no steering."""
    parsl_poll_s: float = 5.0
    """``parsl``: Parsl's scaling poll (``strategy_period``, Parsl's default 5 s); the worker
    block is submitted at the first poll after the executor has started."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` if the options cannot describe a run."""
        if self.executor not in ('thread', 'process', 'parsl'):
            raise ValueError(
                f"executor must be 'thread', 'process' or 'parsl', got {self.executor!r}",
            )
        if self.exchange not in ('local', 'http', 'redis'):
            raise ValueError(f"exchange must be 'local', 'http' or 'redis', got {self.exchange!r}")
        if self.executor != 'thread' and self.exchange == 'local':
            raise ValueError(
                'the local exchange lives in one process and cannot reach agents in worker '
                f"processes: use exchange='http' or 'redis' with executor={self.executor!r}",
            )
        if self.executor == 'parsl':
            from steering.demo.htex import parsl_missing

            missing = parsl_missing()
            if missing is not None:
                raise ValueError(missing)
            if not self.parsl_poll_s > 0:
                raise ValueError(f'parsl_poll_s must be > 0, got {self.parsl_poll_s!r}')
        if self.iterations < 0:
            raise ValueError(f'iterations must be >= 0, got {self.iterations!r}')
        if self.pairs < 1:
            raise ValueError(f'pairs must be >= 1, got {self.pairs!r}')
        validate_sleep(self.sleep)
        if self.slow_len < 1:
            raise ValueError(f'slow_len must be >= 1, got {self.slow_len!r}')
        if self.slow_factor < 0:
            raise ValueError(f'slow_factor must be >= 0, got {self.slow_factor!r}')
        if self.drift is not None and not self.drift > 0:
            raise ValueError(f'drift must be > 0, got {self.drift!r}')
        if self.set_sleep_at is not None:
            if self.set_sleep_to is None:
                raise ValueError('set_sleep_at needs set_sleep_to (the new sleep, seconds)')
            validate_sleep(self.set_sleep_to)
        if self.step_timeout is not None and self.step_timeout <= 0:
            raise ValueError(f'step_timeout must be > 0, got {self.step_timeout!r}')
        if self.steer not in (None, 'suggest', 'confirm', 'apply'):
            raise ValueError(f"steer must be 'suggest', 'confirm' or 'apply', got {self.steer!r}")

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (paths as strings)."""
        d = dataclasses.asdict(self)
        if d['academy_home'] is not None:
            d['academy_home'] = str(d['academy_home'])
        return d
