"""Driving one launcher/generator pair of the fibonacci demo (:func:`drive_pair`): launch,
ask for the generator, then call it ``iterations`` times, logging each value to the pool.

Apart from :mod:`steering.demo.workflow` (which sets up the exchange, the executor and the
manager, and runs the pairs together) because what one pair does is the demo's workload,
read and changed on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from academy.handle import Handle
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from steering.demo.fibagents import FibonacciLauncher, GeneratorAgent
from steering.demo.fiboptions import DemoOptions
from steering.demo.fibresults import PairResult

# Records keep the logger name they had before this moved out of the workflow module:
# readers of a pool see the driver's records under one name.
logger = logging.getLogger('steering.demo.workflow')

T = TypeVar('T')


async def timed(aw: Awaitable[T], timeout: float | None) -> T:
    """``await aw``, within ``timeout`` seconds when one is given."""
    return await asyncio.wait_for(aw, timeout) if timeout is not None else await aw


async def drive_pair(
    manager: Manager[Any],
    cfg: JSONPoolLogging,
    opts: DemoOptions,
    pair: int,
    t0: float,
) -> PairResult:
    """Run one launcher/generator pair; failures are logged and returned, not raised."""
    result = PairResult(pair=pair)
    try:
        gen = await _start_pair(manager, cfg, opts, pair, result)
        t_iter = time.perf_counter()
        try:
            await _iterate(gen, opts, pair, t0, result)
        finally:
            result.iter_s = time.perf_counter() - t_iter
    except Exception as e:
        logger.exception('pair failed: %r', e, extra={'fib.pair': pair, 'fib.label': opts.label})
        result.error = repr(e)
    return result


async def _start_pair(
    manager: Manager[Any],
    cfg: JSONPoolLogging,
    opts: DemoOptions,
    pair: int,
    result: PairResult,
) -> Handle[GeneratorAgent]:
    """Launch the pair's launcher, have it start the generator, and wait until the
    generator answers; the uids go into ``result`` as soon as they are known."""
    launcher = await manager.launch(FibonacciLauncher, log_config=cfg)
    result.launcher_uid = str(launcher.agent_id.uid)
    gen = await timed(
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
    return gen


async def _iterate(
    gen: Handle[GeneratorAgent],
    opts: DemoOptions,
    pair: int,
    t0: float,
    result: PairResult,
) -> None:
    """Ask the generator for ``opts.iterations`` items, one per ``opts.sleep``; each value
    goes into ``result`` as it comes, so a failure part-way keeps the ones before it."""
    for i in range(opts.iterations):
        if i == opts.set_sleep_at:
            await timed(gen.set_sleep(opts.set_sleep_to), opts.step_timeout)
        value = await timed(gen.next_item(), opts.step_timeout)
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
