"""Agents on Parsl's HighThroughputExecutor (HTEX) on this machine, for the demo workloads.

``parsl_executor`` starts a Parsl DataFlowKernel with one HTEX (``LocalProvider``, one block,
workers on 127.0.0.1) and Parsl monitoring, and hands Academy a
``parsl.concurrent.ParslPoolExecutor`` over it: each agent becomes one Parsl task that holds
one HTEX worker process for its life. Everything Parsl writes goes under ``run_dir`` (its
``000/`` run directory with ``parsl.log``, the interchange and worker-pool logs, and
``monitoring.db`` beside it), never into the current directory.

Parsl is a guest in the caller's process: its loggers get their level and handlers back when
the kernel is cleaned up (the kernel adds a file handler to ``parsl`` and
``concurrent.futures`` and lowers their levels; it removes the handler but neither closes it
nor restores the levels), and the root logger is never touched. The kernel is cleaned up on
every way out (success, a failed workflow, cancellation), which stops the interchange, the
monitoring processes and the worker block.

Parsl is optional (``pip install 'academy-tui[parsl]'``): this module imports it only when a
run asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import shlex
import sys
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LABEL = "htex_local"
"""The HTEX's label, as in Parsl's own local examples and the shared Parsl sample."""
PARSL_LOGGERS = ("parsl", "concurrent.futures")
"""Loggers the DataFlowKernel configures in the submitting process."""
INSTALL_HINT = "pip install 'academy-tui[parsl]'"


def parsl_missing() -> str | None:
    """Why the ``parsl`` executor cannot run here (one line), or None when it can."""
    try:
        # sqlalchemy: Parsl monitoring writes monitoring.db with it (the [monitoring] extra).
        for name in ("parsl.concurrent", "parsl.monitoring", "sqlalchemy"):
            importlib.import_module(name)
    except ImportError as e:
        return f"the parsl executor needs Parsl with monitoring ({e}): {INSTALL_HINT}"
    return None


def parsl_config(run_dir: Path, workers: int, *, monitoring: bool = True,
                 strategy_period: float = 5.0, workflow_name: str = "academy-tui demo") -> Any:
    """A ``parsl.Config`` for ``workers`` HTEX workers in one local block on 127.0.0.1.

    ``strategy_period`` is Parsl's scaling poll: with ``strategy='none'`` the block is
    submitted at the first poll after the executor is added (5 s is Parsl's default).
    The interchange and the worker pool are started with this interpreter
    (``python -m ...``), so they need no ``PATH`` set up and import the same packages.
    """
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD
    from parsl.monitoring import MonitoringHub
    from parsl.providers import LocalProvider

    python = shlex.quote(sys.executable)
    # .format() runs over the launch command: braces in the interpreter's path must not count.
    python = python.replace("{", "{{").replace("}", "}}")
    htex = HighThroughputExecutor(
        label=LABEL,
        address="127.0.0.1",
        loopback_address="127.0.0.1",
        max_workers_per_node=workers,
        # Agents sleep and wait on messages: let every worker fit whatever the core count.
        cores_per_worker=0.01,
        heartbeat_period=2,
        heartbeat_threshold=30,
        launch_cmd=DEFAULT_LAUNCH_CMD.replace(
            "process_worker_pool.py",
            f"{python} -m parsl.executors.high_throughput.process_worker_pool", 1),
        interchange_launch_cmd=[sys.executable, "-m",
                                "parsl.executors.high_throughput.interchange"],
        provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
    )
    hub = MonitoringHub(workflow_name=workflow_name,
                        logging_endpoint=f"sqlite:///{run_dir}/monitoring.db",
                        resource_monitoring_interval=1) if monitoring else None
    return Config(executors=[htex], run_dir=str(run_dir), strategy="none",
                  strategy_period=strategy_period, monitoring=hub, usage_tracking=0,
                  initialize_logging=True)


class _LoggerGuard:
    """Put back the level, propagation and handlers of some loggers; close what was added."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.saved = {n: (lg.level, lg.propagate, list(lg.handlers))
                      for n in names for lg in [logging.getLogger(n)]}
        self.added: list[logging.Handler] = []

    def note_added(self) -> None:
        """Remember the handlers added since construction (their owner may detach them
        later without closing them)."""
        for name, (_, _, before) in self.saved.items():
            self.added += [h for h in logging.getLogger(name).handlers
                           if h not in before and h not in self.added]

    def restore(self) -> None:
        self.note_added()
        for name, (level, propagate, _) in self.saved.items():
            lg = logging.getLogger(name)
            for h in self.added:
                lg.removeHandler(h)
            lg.setLevel(level)
            lg.propagate = propagate
        for h in self.added:
            h.close()


def _start(config: Any) -> Any:
    """A started DataFlowKernel, not registered as Parsl's global one (no ``parsl.load``)."""
    from parsl.dataflow.dflow import DataFlowKernel

    try:
        return DataFlowKernel(config)
    except BaseException:
        # Half started: stop what may be running (the kernel object never existed).
        for ex in config.executors:
            with contextlib.suppress(Exception):
                ex.shutdown()
        if config.monitoring is not None:
            with contextlib.suppress(Exception):
                config.monitoring.close()
        raise


def _cleanup(dfk: Any) -> None:
    try:
        dfk.cleanup()
    except Exception:
        logger.exception("Parsl cleanup failed (run dir %s)", dfk.run_dir)


def _agent_pool(dfk: Any) -> Executor:
    from parsl.concurrent import ParslPoolExecutor

    class AgentPool(ParslPoolExecutor):
        """Parsl's pool; ``shutdown`` ignores ``cancel_futures``."""

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            # Academy's manager asks to cancel once its agents have stopped; Parsl cannot
            # cancel and warns on every such call, about tasks that are finished anyway.
            super().shutdown(wait=wait)

    return AgentPool(dfk=dfk)


@contextlib.asynccontextmanager
async def parsl_executor(run_dir: Path, workers: int, *, monitoring: bool = True,
                         strategy_period: float = 5.0,
                         workflow_name: str = "academy-tui demo") -> AsyncIterator[Executor]:
    """An executor for Academy agents on a fresh local HTEX; stopped when the block exits.

    Starting (seconds: the monitoring router, the interchange) and stopping run in a thread,
    off the event loop. Raises ``ValueError`` when Parsl is not installed."""
    missing = parsl_missing()
    if missing is not None:
        raise ValueError(missing)
    config = parsl_config(run_dir, workers, monitoring=monitoring,
                         strategy_period=strategy_period, workflow_name=workflow_name)
    guard = _LoggerGuard(PARSL_LOGGERS)
    try:
        start = asyncio.ensure_future(asyncio.to_thread(_start, config))
        try:
            dfk = await asyncio.shield(start)
        except asyncio.CancelledError:
            # The kernel goes on starting in its thread: let it finish, then stop it.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(_cleanup, await start)
            raise
        guard.note_added()
        try:
            yield _agent_pool(dfk)
        finally:
            await asyncio.to_thread(_cleanup, dfk)
    finally:
        guard.restore()
