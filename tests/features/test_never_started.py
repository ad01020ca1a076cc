"""An agent that never starts (its worker cannot import its module), on a real academy-py run
(spawned process, Academy's HTTP exchange): the call to it was in flight, not idle; the
agent crashed before it ever ran, and the report says the call stalled on it (issue 13)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from academy.exchange.cloud import spawn_http_exchange
from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager
from brokenagent import Broken

from features import render, report
from features.run import Run
from steering.runenv import academy_home_env, pool_logging


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(home: Path) -> Path:
    cfg = JSONPoolLogging()
    with academy_home_env(home), pool_logging(cfg), \
            spawn_http_exchange("127.0.0.1", _free_port()) as factory:
        pool = get_academy_home() / "logs" / cfg.uuid
        ex = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            async with await Manager.from_exchange_factory(
                    factory, executors=ex, log_config=cfg) as m:
                h = await m.launch(Broken, log_config=cfg)
                with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                    await asyncio.wait_for(h.work(), 3.0)
        except Exception:  # the manager may report the failed launch on the way out
            pass
    return pool


def test_a_call_to_an_agent_that_never_started_stalled(tmp_path: Path) -> None:
    pool = asyncio.run(_run(tmp_path))
    old = time.time() - 3600  # read later, as a finished run
    for f in pool.glob("*.jsonlog"):
        os.utime(f, (old, old))
    run = Run(pool)
    run.load(workers=1)
    ag = run.agents()
    (i,) = [k for k, c in enumerate(ag["class"].tolist()) if c == "Broken"]
    # Academy reports the worker's failure: crashed, before it ever ran.
    assert ag["status"][i] == "crashed"
    assert ag["crash_reason"][i] == "it never ran: it failed while starting"
    (call,) = run.actions().records()
    assert call["status"] == "exception"  # Academy fails the call when the worker fails
    tb = run.where_time_went()
    # In flight from its send to that end: waiting for the agent, then on the dead one.
    waited = tb.seconds["agent_startup"] + tb.seconds["stalled"]
    assert waited >= 0.9 * (call["t_end"] - call["t_sending"])
    assert tb.seconds["idle"] < 0.1
    (su,) = tb.startups
    assert su["class"] == "Broken" and su["process_kind"] == "a process that never logged"
    text = render.render_text(report.build(run, expected_s=0.1, anomalies=False))
    assert "calls waited " in text and " for their agents to start" in text
    assert "had not started, in a process that never logged" in text
