"""The straggler workload: N workers, rounds of tasks spread by steerable weights, one
worker slowing down mid-run; optionally a steering agent alongside.

Each round takes as long as its slowest worker, so once worker ``slow_worker`` has done
``slow_after`` tasks every round takes ``slow_factor`` times longer, until someone moves
work away from it. With ``steer="apply"`` the steering agent does.

    python -m steering.demo.straggler --workers 4 --rounds 20 --task-s 0.1 --steer apply

Process-global side effects as in :mod:`steering.demo.workflow` (``ACADEMY_HOME`` while the
run lasts, Academy's JSON handler on the root logger), undone at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from steering.demo.running import agent_executor, run_terminable
from steering.demo.straggleragents import CoordinatorAgent, WorkerAgent
from steering.demo.workflow import _exchange_factory, _timed, start_steering, steering_history
from steering.runenv import academy_home_env, pool_logging

logger = logging.getLogger("steering.demo.straggler" if __name__ == "__main__" else __name__)
MODES = ("suggest", "confirm", "apply")


@dataclasses.dataclass
class StragglerOptions:
    """What to run. Validated on construction."""

    workers: int = 4
    rounds: int = 20
    tasks_per_round: int | None = None
    """Default: two per worker."""
    task_s: float = 0.1
    slow_worker: int = 1
    slow_after: int | None = 6
    """Tasks the slow worker does at normal speed (None: nobody slows down)."""
    slow_factor: float = 4.0
    executor: str = "thread"
    exchange: str = "local"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    http_port: int | None = None
    academy_home: str | Path | None = None
    steer: str | None = None
    """``suggest``, ``confirm`` or ``apply``: run a steering agent alongside."""
    steer_options: Any = None
    """:class:`steering.agent.SteeringOptions` for the steering agent (None: defaults)."""
    llm: Any = "auto"
    """For the steering agent: an ``LLMConfig``, None (template summaries) or ``auto``."""
    label: str = "straggler"
    step_timeout: float | None = 120.0
    confirm_wait_s: float = 120.0
    """With ``steer="confirm"``: after the last round, keep running rounds while a suggestion
    waits for a person (or its applied change is being checked), up to this long, so there
    is time to approve it and to see its effect."""

    def __post_init__(self) -> None:
        if self.workers < 2:
            raise ValueError(f"workers must be >= 2, got {self.workers!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds!r}")
        if not 0 <= self.slow_worker < self.workers:
            raise ValueError(f"slow_worker must be within 0..{self.workers - 1}")
        if self.executor not in ("thread", "process", "parsl"):
            raise ValueError("executor must be 'thread', 'process' or 'parsl', got "
                             f"{self.executor!r}")
        if self.exchange not in ("local", "http", "redis"):
            raise ValueError(f"exchange must be local, http or redis, got {self.exchange!r}")
        if self.executor != "thread" and self.exchange == "local":
            raise ValueError("the local exchange cannot reach worker processes: use "
                             f"exchange='http' or 'redis' with executor={self.executor!r}")
        if self.executor == "parsl":
            from steering.demo.htex import parsl_missing

            missing = parsl_missing()
            if missing is not None:
                raise ValueError(missing)
        if self.steer not in (None, *MODES):
            raise ValueError(f"steer must be one of {', '.join(MODES)}, got {self.steer!r}")
        if self.task_s < 0 or self.slow_factor < 0:
            raise ValueError("task_s and slow_factor must be >= 0")

    @property
    def per_round(self) -> int:
        return self.tasks_per_round or 2 * self.workers


@dataclasses.dataclass
class StragglerResult:
    """Outcome of one run."""

    pool_dir: Path
    pool_uuid: str
    makespan_s: float
    """Seconds from the first round's start to the last round's end."""
    ok: bool
    error: str | None
    rounds: list[dict[str, Any]]
    """Per round: ``counts`` (tasks per worker) and ``round_s``."""
    worker_uids: list[str]
    coordinator_uid: str | None
    weights: dict[str, float] | None
    """Final weights by worker uuid."""
    slow_uid: str | None = None
    """Uuid of the worker that slows down."""
    steering: list[dict[str, Any]] | None = None
    """The steering agent's audit events, oldest first."""


def _workers(opts: StragglerOptions) -> int:
    # Workers, the coordinator and a steering agent each hold one worker for their life.
    return opts.workers + 2


def _executor(opts: StragglerOptions) -> Executor:
    n = _workers(opts)
    if opts.executor == "thread":
        return ThreadPoolExecutor(max_workers=n, thread_name_prefix="straggler-agent")
    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))


OnRound = Callable[[int, Any], Awaitable[None]]
"""``await on_round(round_index, steering_handle_or_None)`` after each round."""


async def run_straggler_async(opts: StragglerOptions,
                              on_pool: Callable[[Path], None] | None = None,
                              on_round: OnRound | None = None) -> StragglerResult:
    """Run the workload; failures are logged and reported in the result, not raised.

    ``on_round`` runs after each round (tests approve suggestions there, benchmarks read
    the steering agent's figures)."""
    cfg = JSONPoolLogging()
    with academy_home_env(opts.academy_home):
        pool_dir = get_academy_home() / "logs" / cfg.uuid
        with pool_logging(cfg):
            return await _run(opts, cfg, pool_dir, on_pool, on_round)


async def _run(opts: StragglerOptions, cfg: JSONPoolLogging, pool_dir: Path,
               on_pool: Callable[[Path], None] | None,
               on_round: OnRound | None) -> StragglerResult:
    args = {k: v for k, v in dataclasses.asdict(opts).items() if k not in ("steer_options",
                                                                              "llm")}
    logger.info("straggler start: %s", json.dumps(args, default=str),
                extra={"straggler.label": opts.label, "straggler.workers": opts.workers,
                       "straggler.rounds": opts.rounds, "straggler.steer": opts.steer})
    if on_pool is not None:
        on_pool(pool_dir)
    rounds: list[dict[str, Any]] = []
    uids: list[str] = []
    coord_uid = None
    weights = None
    steering = None
    error = None
    makespan = 0.0
    try:
        async with (
            _exchange_factory(opts) as factory,
            agent_executor(opts.executor, _workers(opts), pool_dir,
                           lambda: _executor(opts)) as executor,
        ):
            manager = await Manager.from_exchange_factory(factory, executors=executor,
                                                          log_config=cfg)
            async with manager:
                steer = await start_steering(manager, cfg, pool_dir, opts.steer,
                                             options=opts.steer_options, llm=opts.llm)
                workers = await _launch_workers(manager, opts, cfg)
                uids = [str(w.agent_id.uid) for w in workers]
                coord = await manager.launch(CoordinatorAgent, args=(workers,), log_config=cfg)
                coord_uid = str(coord.agent_id.uid)
                makespan = await _play_rounds(opts, workers, coord, steer, rounds, on_round)
                if opts.steer == "confirm" and steer is not None:
                    await _hold_for_a_person(opts, coord, steer, rounds, on_round)
                weights = await coord.get_weights()
                steering = await steering_history(steer)
    except Exception as e:
        logger.exception("straggler failed: %r", e, extra={"straggler.label": opts.label})
        error = repr(e)
    logger.info("straggler end: makespan %.3fs", makespan,
                extra={"straggler.label": opts.label, "straggler.makespan_s": makespan,
                       "straggler.ok": error is None})
    slow_uid = uids[opts.slow_worker] if uids and opts.slow_after is not None else None
    return StragglerResult(pool_dir, cfg.uuid, makespan, error is None, error, rounds, uids,
                           coord_uid, weights, slow_uid, steering)


async def _launch_workers(manager: Manager[Any], opts: StragglerOptions,
                          cfg: JSONPoolLogging) -> list[Any]:
    """The workers, in order; only ``slow_worker`` is told when to slow down."""
    workers = []
    for i in range(opts.workers):
        slow = opts.slow_after if i == opts.slow_worker else None
        workers.append(await manager.launch(
            WorkerAgent, args=(i, opts.task_s, slow, opts.slow_factor), log_config=cfg))
    return workers


async def _play_rounds(opts: StragglerOptions, workers: list[Any], coord: Any, steer: Any,
                       rounds: list[dict[str, Any]], on_round: OnRound | None) -> float:
    """Every agent answering first, then ``opts.rounds`` rounds; returns the makespan
    (start-up is not part of it: the pings wait for it)."""
    for w in workers:
        await w.ping(timeout=opts.step_timeout)
    await coord.ping(timeout=opts.step_timeout)
    t0 = time.perf_counter()
    for r in range(opts.rounds):
        t_r = time.perf_counter()
        tasks = list(range(r * opts.per_round, (r + 1) * opts.per_round))
        counts = await _timed(coord.run_round(tasks), opts.step_timeout)
        took = time.perf_counter() - t_r
        rounds.append({"round": r, "counts": counts, "round_s": took})
        logger.info("round %d: %s in %.3fs", r, counts, took,
                    extra={"straggler.round": r, "straggler.round_s": took,
                           "straggler.counts": counts})
        if on_round is not None:
            await on_round(r, steer)
    return time.perf_counter() - t0


async def _hold_for_a_person(opts: StragglerOptions, coord: Any, steer: Any,
                             rounds: list[dict[str, Any]], on_round: OnRound | None) -> None:
    """More rounds while a suggestion waits for approval or its change is being checked
    (at most ``confirm_wait_s``): a person needs time to read it and press ``y``."""
    deadline = time.monotonic() + opts.confirm_wait_s
    waiting = ("pending", "applied")
    while time.monotonic() < deadline:
        try:
            states = [s["status"] for s in await asyncio.wait_for(steer.suggestions(), 10)]
        except Exception:
            return  # the steering agent is gone: nothing to wait for
        if not any(st in waiting for st in states):
            return
        r = len(rounds)
        if any(st == "pending" for st in states) and r % 10 == 0:
            logger.info("waiting for a person to approve or reject the pending suggestion "
                        "(at most %.0f s more)", deadline - time.monotonic(),
                        extra={"straggler.label": opts.label})
        tasks = list(range(r * opts.per_round, (r + 1) * opts.per_round))
        t_r = time.perf_counter()
        counts = await _timed(coord.run_round(tasks), opts.step_timeout)
        took = time.perf_counter() - t_r
        rounds.append({"round": r, "counts": counts, "round_s": took, "held": True})
        logger.info("round %d: %s in %.3fs", r, counts, took,
                    extra={"straggler.round": r, "straggler.round_s": took,
                           "straggler.counts": counts, "straggler.held": True})
        if on_round is not None:
            await on_round(r, steer)


def run_straggler(opts: StragglerOptions, on_pool: Callable[[Path], None] | None = None,
                  on_round: OnRound | None = None) -> StragglerResult:
    """:func:`run_straggler_async` in a fresh event loop."""
    return asyncio.run(run_straggler_async(opts, on_pool, on_round))


def _parser() -> argparse.ArgumentParser:
    d = StragglerOptions()
    p = argparse.ArgumentParser(prog="python -m steering.demo.straggler",
                                description="Run the straggler workload on real Academy "
                                            "agents and print its pool.")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--rounds", type=int, default=d.rounds)
    p.add_argument("--tasks-per-round", type=int, default=None)
    p.add_argument("--task-s", type=float, default=d.task_s)
    p.add_argument("--slow-worker", type=int, default=d.slow_worker)
    p.add_argument("--slow-after", type=int, default=d.slow_after)
    p.add_argument("--slow-factor", type=float, default=d.slow_factor)
    p.add_argument("--executor", choices=["thread", "process", "parsl"], default=d.executor)
    p.add_argument("--exchange", choices=["local", "http", "redis"], default=None,
                   help="default: local for threads, http for processes and parsl")
    p.add_argument("--redis-host", default=d.redis_host)
    p.add_argument("--redis-port", type=int, default=d.redis_port)
    p.add_argument("--http-port", type=int, default=None,
                   help="port of the HTTP exchange on 127.0.0.1 (default: a free one)")
    p.add_argument("--academy-home", default=None)
    p.add_argument("--steer", choices=MODES, default=None)
    p.add_argument("--label", default=d.label)
    p.add_argument("--confirm-wait", dest="confirm_wait_s", type=float,
                   default=d.confirm_wait_s,
                   help="with --steer confirm: seconds to keep running while a suggestion "
                        "waits for a person")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run, print the pool path (first, as soon as it exists) and the makespan."""
    args = _parser().parse_args(argv)
    if args.exchange is None:
        args.exchange = "local" if args.executor == "thread" else "http"
    try:
        opts = StragglerOptions(**vars(args))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = run_terminable(run_straggler_async(
            opts, on_pool=lambda p: print(f"pool: {p}", flush=True)))
    except asyncio.CancelledError:
        print("terminated", file=sys.stderr)
        return 143
    print(f"makespan {result.makespan_s:.2f}s; " + ("ok" if result.ok else
                                                     f"FAILED: {result.error}"))
    print(result.pool_dir)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
