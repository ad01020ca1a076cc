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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from academy.exchange import ExchangeFactory, LocalExchangeFactory, RedisExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from steering.demo.fibagents import FibonacciLauncher, validate_sleep
from steering.demo.running import PARSL_DIR, agent_executor, run_terminable
from steering.runenv import academy_home_env, pool_logging

# Under `python -m` this module is `__main__`; keep the records under the name readers filter on.
logger = logging.getLogger('steering.demo.workflow' if __name__ == '__main__' else __name__)

T = TypeVar('T')
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


async def _timed(aw: Awaitable[T], timeout: float | None) -> T:
    return await asyncio.wait_for(aw, timeout) if timeout is not None else await aw


def _free_port() -> int:
    # The port is released before the exchange binds it; a race is possible but harmless here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


_academy_home_env = academy_home_env  # the old private name


class ExchangeOptions(Protocol):
    """What :func:`_exchange_factory` reads (``DemoOptions`` and the straggler's options)."""

    # Read-only, so a Literal-typed field satisfies it.
    @property
    def exchange(self) -> str: ...

    @property
    def redis_host(self) -> str: ...

    @property
    def redis_port(self) -> int: ...

    @property
    def http_port(self) -> int | None: ...


@contextlib.asynccontextmanager
async def _exchange_factory(opts: ExchangeOptions) -> AsyncIterator[ExchangeFactory[Any]]:
    if opts.exchange == 'local':
        yield LocalExchangeFactory()
    elif opts.exchange == 'redis':
        yield RedisExchangeFactory(opts.redis_host, opts.redis_port)
    else:
        port = opts.http_port if opts.http_port is not None else _free_port()
        cm = spawn_http_exchange('127.0.0.1', port, timeout=30)
        # Starting waits for the server socket and stopping joins its process: keep both off
        # the event loop so a UI sharing the loop stays responsive.
        factory = await asyncio.to_thread(cm.__enter__)
        try:
            yield factory
        finally:
            await asyncio.to_thread(cm.__exit__, None, None, None)


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


async def _drive_pair(
    manager: Manager[Any],
    cfg: JSONPoolLogging,
    opts: DemoOptions,
    pair: int,
    t0: float,
) -> PairResult:
    """Run one launcher/generator pair; failures are logged and returned, not raised."""
    result = PairResult(pair=pair)
    try:
        launcher = await manager.launch(FibonacciLauncher, log_config=cfg)
        result.launcher_uid = str(launcher.agent_id.uid)
        gen = await _timed(
            launcher.calc_fibs(
                opts.sleep,
                slow_at=opts.slow_at,
                slow_factor=opts.slow_factor,
                slow_len=opts.slow_len,
                fail_at=opts.fail_at,
                **({'drift': opts.drift, 'drift_len': opts.iterations}
                   if opts.drift is not None else {}),
            ),
            opts.step_timeout,
        )
        result.generator_uid = str(gen.agent_id.uid)
        await gen.ping(timeout=opts.step_timeout)
        # The pool's own records only show 8-hex ids; this one ties pair, uuid and agent together.
        logger.info(
            'pair %d: generator %s',
            pair,
            gen.agent_id,
            extra={
                'fib.pair': pair,
                'academy.agent_id': gen.agent_id,
                'fib.generator_uid': result.generator_uid,
                'fib.launcher_uid': result.launcher_uid,
            },
        )
        t_iter = time.perf_counter()
        try:
            for i in range(opts.iterations):
                if i == opts.set_sleep_at:
                    await _timed(gen.set_sleep(opts.set_sleep_to), opts.step_timeout)
                value = await _timed(gen.next_item(), opts.step_timeout)
                result.values.append(value)
                logger.info(
                    'pair %d: iteration %d value %d',
                    pair,
                    i,
                    value,
                    extra={
                        'fib.pair': pair,
                        'fib.iteration': i,
                        'fib.value': value,
                        'fib.t_rel': time.perf_counter() - t0,
                    },
                )
                await asyncio.sleep(opts.sleep)
        finally:
            result.iter_s = time.perf_counter() - t_iter
    except Exception as e:
        logger.exception('pair failed: %r', e, extra={'fib.pair': pair, 'fib.label': opts.label})
        result.error = repr(e)
    return result


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


async def _run(
    opts: DemoOptions,
    cfg: JSONPoolLogging,
    pool_dir: Path,
    on_pool: Callable[[Path], None] | None,
) -> DemoResult:
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
    if on_pool is not None:
        on_pool(pool_dir)

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    results: list[PairResult] = []
    steering: list[dict[str, Any]] | None = None
    error: str | None = None
    try:
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
            timings['mgr_ready_s'] = time.perf_counter() - t0
            # Leaving the manager shuts the agents (and through the launchers, the generators)
            # down and waits for them, so every agent's last records are in the pool.
            async with manager:
                steer = await start_steering(manager, cfg, pool_dir, opts.steer)
                results = list(
                    await asyncio.gather(
                        *(_drive_pair(manager, cfg, opts, p, t0) for p in range(opts.pairs)),
                    ),
                )
                steering = await steering_history(steer)
                t_shutdown = time.perf_counter()
            timings['shutdown_s'] = time.perf_counter() - t_shutdown
    except Exception as e:
        logger.exception('workflow failed: %r', e, extra={'fib.label': opts.label})
        error = repr(e)
    wall = time.perf_counter() - t0

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
        **timings,
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
        steering=steering,
        parsl_dir=pool_dir / PARSL_DIR if opts.executor == 'parsl' else None,
    )


async def start_steering(
    manager: Manager[Any], cfg: JSONPoolLogging, pool_dir: Path, mode: str | None,
    **kwargs: Any,
) -> Handle[Any] | None:
    """Launch a steering agent for this run in ``mode`` (None: none; ``kwargs`` go to
    ``launch_steering``); a failure to start it is logged and the workflow goes on."""
    if mode is None:
        return None
    from steering.agent import launch_steering

    try:
        steer = await launch_steering(manager, log_config=cfg, pool_dir=pool_dir,
                                      mode=mode, **kwargs)  # type: ignore[arg-type]
        # Watching before the workflow starts: a spawned worker imports for seconds.
        await steer.ping(timeout=120)
        return steer
    except Exception as e:
        logger.exception('steering agent did not start: %r', e)
        return None


async def steering_history(steer: Handle[Any] | None) -> list[dict[str, Any]] | None:
    """The steering agent's audit events so far (None without one, or if it is gone)."""
    if steer is None:
        return None
    try:
        return list(await asyncio.wait_for(steer.history(None, 10_000), 30))
    except Exception as e:
        logger.warning('steering agent did not answer: %r', e)
        return None


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
