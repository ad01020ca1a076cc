"""A steering agent beside a demo run: starting it (:func:`start_steering`) and reading
back what it did (:func:`steering_history`).

Apart from :mod:`steering.demo.workflow` because both demo workflows (fibonacci and
straggler) run their steering agent the same way.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from academy.handle import Handle
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

# Records keep the logger name they had before these moved out of the workflow module.
logger = logging.getLogger('steering.demo.workflow')


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
