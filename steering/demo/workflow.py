"""The fibonacci demo workflow: a real Academy run that writes a JSON log pool.

For each pair the driver launches a ``FibonacciLauncher``, asks it (``calc_fibs``) for a
``GeneratorAgent`` running alongside it, then calls ``next_item()`` ``iterations`` times, sleeping
``sleep`` seconds between calls; the generator sleeps ``sleep`` seconds per item too, so the naive
run time of a pair is ``2 * sleep * iterations``. Pairs run concurrently.

    python -m steering.demo.workflow --iterations 8 --sleep 0.05 --executor process \\
        --exchange http --academy-home /tmp/x

With ``--executor parsl`` the agents run on Parsl's HighThroughputExecutor on this machine
(:mod:`steering.demo.htex`); Parsl's files go to ``parsl/`` in the pool directory.

Process-global side effects, for callers embedding this in a larger program: while a run is in
progress ``os.environ['ACADEMY_HOME']`` is set (when ``academy_home`` is given) and Academy's JSON
handler sits on the root logger at DEBUG; both are undone when the run ends.

Its parts live beside it: the options (:mod:`~steering.demo.fiboptions`), the results
(:mod:`~steering.demo.fibresults`), what one pair does (:mod:`~steering.demo.fibpairs`), the
exchange (:mod:`~steering.demo.exchanges`) and the steering agent alongside
(:mod:`~steering.demo.alongside`); their names stay importable from here.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

# What callers import from here lives in modules of its own; these names stay importable
# from this module, the old private ones (the straggler demo's) included.
from steering.demo.alongside import start_steering as start_steering
from steering.demo.alongside import steering_history as steering_history
from steering.demo.exchanges import ExchangeOptions as ExchangeOptions
from steering.demo.exchanges import exchange_factory as _exchange_factory
from steering.demo.fiboptions import DemoOptions as DemoOptions
from steering.demo.fiboptions import Exchanges as Exchanges
from steering.demo.fiboptions import Executors as Executors
from steering.demo.fibpairs import drive_pair as _drive_pair
from steering.demo.fibpairs import timed as _timed  # noqa: F401 (straggler imports it)
from steering.demo.fibresults import DemoResult as DemoResult
from steering.demo.fibresults import PairResult as PairResult
from steering.demo.running import PARSL_DIR, agent_executor, run_terminable
from steering.runenv import academy_home_env, pool_logging

# Under `python -m` this module is `__main__`; keep the records under the name readers filter on.
logger = logging.getLogger('steering.demo.workflow' if __name__ == '__main__' else __name__)

_academy_home_env = academy_home_env  # the old private name


def _workers(opts: DemoOptions) -> int:
    # An HTEX worker is a process that imports Parsl: start no spare one unless a steering
    # agent will take it.
    return opts.pairs + (1 if opts.executor != 'parsl' or opts.steer is not None else 0)


def _executor(opts: DemoOptions) -> Executor:
    # Each launcher holds one worker for its whole life (generators run in their launcher's
    # loop); one spare worker leaves room for a steering agent in the same manager.
    workers = _workers(opts)
    if opts.executor == 'thread':
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix='demo-agent')
    # spawn, not fork: forked writers share one pool file and interleave large records.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('spawn'))


async def run_demo_async(
    opts: DemoOptions,
    on_pool: Callable[[Path], None] | None = None,
) -> DemoResult:
    """Run the demo workflow and return where its pool is and how it went.

    ``on_pool(pool_dir)`` is called once the pool directory exists (the driver's file is open),
    before any agent starts, so a viewer can follow the run live.

    Agent failures (including ``fail_at``) and exchange failures do not raise: they are logged
    to the pool and reported in ``DemoResult.ok``/``error``; the workflow still shuts its agents
    down and writes its ``workflow end`` record.

    Raises:
        ValueError: If the options are inconsistent (e.g. ``process`` with the ``local`` exchange).
    """
    opts.validate()
    cfg = JSONPoolLogging()
    with academy_home_env(opts.academy_home):
        pool_dir = get_academy_home() / 'logs' / cfg.uuid
        with pool_logging(cfg):
            return await _run(opts, cfg, pool_dir, on_pool)


@dataclasses.dataclass
class _Progress:
    """What a run has produced so far, filled in as it goes, so a failure part-way still
    reports the pairs that finished and the timings taken before it."""

    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    results: list[PairResult] = dataclasses.field(default_factory=list)
    steering: list[dict[str, Any]] | None = None


async def _run(
    opts: DemoOptions,
    cfg: JSONPoolLogging,
    pool_dir: Path,
    on_pool: Callable[[Path], None] | None,
) -> DemoResult:
    _log_start(opts)
    if on_pool is not None:
        on_pool(pool_dir)

    t0 = time.perf_counter()
    progress = _Progress()
    error: str | None = None
    try:
        await _run_agents(opts, cfg, pool_dir, t0, progress)
    except Exception as e:
        logger.exception('workflow failed: %r', e, extra={'fib.label': opts.label})
        error = repr(e)
    wall = time.perf_counter() - t0
    return _finish(opts, cfg, pool_dir, progress, error, wall)


def _log_start(opts: DemoOptions) -> None:
    """The ``workflow start`` record: the options, and the main ones as keys of their own."""
    logger.info(
        'workflow start: %s',
        opts.as_dict(),
        extra={
            'fib.label': opts.label,
            'fib.pid': os.getpid(),
            'fib.executor': opts.executor,
            'fib.exchange': opts.exchange,
            'fib.iterations': opts.iterations,
            'fib.sleep_s': opts.sleep,
            'fib.pairs': opts.pairs,
        },
    )


async def _run_agents(
    opts: DemoOptions,
    cfg: JSONPoolLogging,
    pool_dir: Path,
    t0: float,
    progress: _Progress,
) -> None:
    """Set up the exchange, the executor and the manager, run every pair (and the steering
    agent, if asked for) and shut them all down; raises what the set-up or shutdown raised."""
    async with (
        _exchange_factory(opts) as factory,
        agent_executor(opts.executor, _workers(opts), pool_dir, lambda: _executor(opts),
                       opts.parsl_poll_s) as executor,
    ):
        manager = await Manager.from_exchange_factory(
            factory,
            executors=executor,
            log_config=cfg,
        )
        progress.timings['mgr_ready_s'] = time.perf_counter() - t0
        # Leaving the manager shuts the agents (and through the launchers, the generators)
        # down and waits for them, so every agent's last records are in the pool.
        async with manager:
            steer = await start_steering(manager, cfg, pool_dir, opts.steer)
            progress.results = list(
                await asyncio.gather(
                    *(_drive_pair(manager, cfg, opts, p, t0) for p in range(opts.pairs)),
                ),
            )
            progress.steering = await steering_history(steer)
            t_shutdown = time.perf_counter()
        progress.timings['shutdown_s'] = time.perf_counter() - t_shutdown


def _finish(
    opts: DemoOptions,
    cfg: JSONPoolLogging,
    pool_dir: Path,
    progress: _Progress,
    error: str | None,
    wall: float,
) -> DemoResult:
    """The ``workflow end`` record and the result: the run failed if it raised or any pair
    did (the first failed pair's error then stands for the run)."""
    results = progress.results
    failed = [r for r in results if r.error is not None]
    if error is None and failed:
        error = f'pair {failed[0].pair}: {failed[0].error}'
    ok = error is None
    naive = 2 * opts.sleep * opts.iterations
    summary = {
        'label': opts.label,
        'args': opts.as_dict(),
        'pool_dir': str(pool_dir),
        'naive_s_per_pair': naive,
        'wall_s': wall,
        **progress.timings,
        'results': [r.as_dict() for r in results],
        'error': error,
        'rc': 0 if ok else 1,
    }
    logger.info(
        'workflow end: %s',
        json.dumps(summary),
        extra={'fib.label': opts.label, 'fib.wall_s': wall, 'fib.ok': ok},
    )
    return DemoResult(
        pool_dir=pool_dir,
        pool_uuid=cfg.uuid,
        wall_s=wall,
        naive_s=naive,
        ok=ok,
        error=error,
        results=results,
        steering=progress.steering,
        parsl_dir=pool_dir / PARSL_DIR if opts.executor == 'parsl' else None,
    )


def run_demo(opts: DemoOptions, on_pool: Callable[[Path], None] | None = None) -> DemoResult:
    """Run the demo workflow to completion in a fresh event loop (see ``run_demo_async``)."""
    return asyncio.run(run_demo_async(opts, on_pool))


def _parser() -> argparse.ArgumentParser:
    d = DemoOptions()
    p = argparse.ArgumentParser(
        prog='python -m steering.demo.workflow',
        description='Run the fibonacci demo workflow with real Academy agents and print its pool.',
    )
    p.add_argument('--iterations', type=int, default=d.iterations)
    p.add_argument('--sleep', type=float, default=d.sleep, help='seconds (agent and driver)')
    p.add_argument('--executor', choices=['thread', 'process', 'parsl'], default=d.executor,
                   help='parsl: a Parsl HighThroughputExecutor on this machine')
    p.add_argument('--exchange', choices=['local', 'http', 'redis'], default=None,
                   help='default: local for threads, http for processes and parsl')
    p.add_argument('--pairs', type=int, default=d.pairs)
    p.add_argument('--slow-at', type=int, default=None, help='iteration where a slowdown starts')
    p.add_argument('--slow-factor', type=float, default=d.slow_factor)
    p.add_argument('--slow-len', type=int, default=d.slow_len)
    p.add_argument('--fail-at', type=int, default=None, help='iteration that raises')
    p.add_argument('--drift', type=float, default=None,
                   help='the sleep grows steadily to this many times its start over the run')
    p.add_argument('--set-sleep-at', type=int, default=None,
                   help='iteration before which the driver calls set_sleep(--set-sleep-to)')
    p.add_argument('--set-sleep-to', type=float, default=None)
    p.add_argument('--redis-host', default=d.redis_host)
    p.add_argument('--redis-port', type=int, default=d.redis_port)
    p.add_argument('--http-port', type=int, default=None, help='default: a free port')
    p.add_argument('--academy-home', default=None, help='default: $ACADEMY_HOME or Academy default')
    p.add_argument('--label', default=d.label)
    p.add_argument('--step-timeout', type=float, default=None)
    p.add_argument('--steer', choices=['suggest', 'confirm', 'apply'], default=None,
                   help='run a steering agent alongside in this mode')
    p.add_argument('--parsl-poll', dest='parsl_poll_s', type=float, default=d.parsl_poll_s,
                   help="parsl: seconds between Parsl's scaling polls (its strategy_period)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run the demo, print the pool path; 0 if the run was ok."""
    args = _parser().parse_args(argv)
    if args.exchange is None:
        args.exchange = 'local' if args.executor == 'thread' else 'http'
    try:
        opts = DemoOptions(**vars(args))
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    try:
        result = run_terminable(run_demo_async(
            opts, on_pool=lambda path: print(f'pool: {path}', flush=True)))
    except asyncio.CancelledError:
        print('terminated', file=sys.stderr)
        return 143
    print(
        f'wall {result.wall_s:.2f}s (naive {result.naive_s:.2f}s per pair); '
        + ('ok' if result.ok else f'FAILED: {result.error}'),
    )
    print(result.pool_dir)
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(main())
