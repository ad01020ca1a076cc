"""Steering a run from another process: attach a steering agent to a run that is already
going, or call the one that is steering it (approve, reject), over the run's exchange.

The attached agent writes its audit records into the run's own pool (a new file in it:
the same pool uuid, the pool's Academy home), so the run's report shows them. Only shared
exchanges can be reached from here: Redis (``redis://HOST:PORT``) or Academy's HTTP
exchange (``http://HOST:PORT``); a run on the local exchange is steered from inside, with
:func:`steering.agent.launch_steering`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from academy.exchange import ExchangeFactory, HttpExchangeFactory, RedisExchangeFactory
from academy.identifier import AgentId
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from steering.agent import SteeringOptions, launch_steering
from steering.audit import LOGGER
from steering.runenv import academy_home_env, pool_logging

STEERING_CLASS = "steering.agent.SteeringAgent"


class AttachError(Exception):
    """Attaching or calling failed for a reason the user can fix (one line)."""


def exchange_factory(url: str) -> ExchangeFactory[Any]:
    """The exchange at ``url``: ``redis://HOST:PORT`` or ``http(s)://HOST:PORT``."""
    parts = urlsplit(url)
    if parts.scheme == "redis":
        return RedisExchangeFactory(parts.hostname or "127.0.0.1", parts.port or 6379)
    if parts.scheme in ("http", "https"):
        return HttpExchangeFactory(url.rstrip("/"))
    raise AttachError(f"cannot reach an exchange at {url!r}: use redis://HOST:PORT or "
                      "http://HOST:PORT (a local exchange lives inside its process)")


def exchange_url(factory: Any) -> str:
    """Where another process reaches the exchange of ``factory``: ``redis://HOST:PORT``,
    the HTTP exchange's URL, ``local`` (inside its process only) or ``""`` (unknown). No
    credentials: Redis keyword arguments and HTTP headers are left out."""
    if isinstance(factory, RedisExchangeFactory):
        info = factory.redis_info
        return f"redis://{info.hostname}:{info.port}"
    if isinstance(factory, HttpExchangeFactory):
        url = str(getattr(getattr(factory, "_info", None), "url", "") or "")
        parts = urlsplit(url)
        if parts.username or parts.password:  # never log credentials
            url = parts._replace(netloc=parts.hostname or "").geturl() if parts.hostname \
                else ""
        return url
    if type(factory).__name__ == "LocalExchangeFactory":
        return "local"
    return ""


@dataclass
class AttachResult:
    """What the attached steering agent did."""

    pool_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    """Why it stopped: ``duration``, ``idle`` (the run stopped writing) or ``interrupted``."""


def _last_write(pool_dir: Path, mine: set[Path]) -> float:
    times = [p.stat().st_mtime for p in pool_dir.glob("*.jsonlog") if p not in mine]
    return max(times, default=0.0)


async def attach(pool_dir: str | Path, exchange_url: str, *, mode: str = "suggest",
                 targets: Any = None, llm: Any = "auto", options: SteeringOptions | None = None,
                 duration_s: float | None = None, idle_s: float = 10.0,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> AttachResult:
    """Run a steering agent for the run at ``pool_dir`` until ``duration_s`` passed or the
    run's other files were not written for ``idle_s``; ``on_event`` sees each audit event."""
    pool = Path(pool_dir).resolve()
    if not pool.is_dir():
        raise AttachError(f"no pool directory at {pool}")
    factory = exchange_factory(exchange_url)
    cfg = JSONPoolLogging()
    cfg.uuid = pool.name  # our records join the run's pool
    out = AttachResult(pool)
    before = set(pool.glob("*.jsonlog"))
    with academy_home_env(pool.parent.parent), pool_logging(cfg):
        mine = set(pool.glob("*.jsonlog")) - before
        manager = await Manager.from_exchange_factory(factory, log_config=cfg)
        try:
            async with manager:
                steer = await launch_steering(manager, log_config=cfg, pool_dir=pool,
                                              mode=mode,  # type: ignore[arg-type]
                                              targets=targets, llm=llm, options=options)
                out.reason, out.history = await _follow(steer, pool, mine, duration_s,
                                                        idle_s, on_event)
                if out.reason != CLOSED:  # else nothing reaches the agent any more
                    out.history = list(await steer.history(None, 100_000))
                    out.stats = dict(await steer.stats())
                    out.suggestions = list(await steer.suggestions())
        except Exception as exc:
            if out.reason != CLOSED:
                raise AttachError(f"the exchange at {exchange_url} failed: "
                                  f"{_line(exc)}") from None
            # Shutting down needs the exchange that just went away: nothing left to do.
    return out


CLOSED = "exchange closed"
"""Why attaching stopped when the workflow's exchange went away (it usually ends with
the workflow, as Academy's HTTP exchange does)."""


def _line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


async def _follow(steer: Any, pool: Path, mine: set[Path], duration_s: float | None,
                  idle_s: float, on_event: Callable[[dict[str, Any]], None] | None
                  ) -> tuple[str, list[dict[str, Any]]]:
    t0 = time.monotonic()
    events: list[dict[str, Any]] = []
    seen = 0
    try:
        while True:
            await asyncio.sleep(0.5)
            try:
                events = list(await asyncio.wait_for(steer.history(None, 100_000), 30))
            except (KeyboardInterrupt, asyncio.CancelledError):
                raise
            except Exception:
                return CLOSED, events
            if on_event is not None:
                for e in events[seen:]:
                    on_event(e)
            seen = len(events)
            if duration_s is not None and time.monotonic() - t0 >= duration_s:
                return "duration", events
            if time.monotonic() - t0 >= idle_s and time.time() - _last_write(pool, mine) > idle_s:
                return "idle", events
    except (KeyboardInterrupt, asyncio.CancelledError):
        return "interrupted", events


def recorded_exchange(run: Any) -> str:
    """The exchange the run's last steering agent recorded at its start
    (``steering.exchange`` of its ``start`` event), or ``""``."""
    ev = run.events()
    if "steering.exchange" not in ev.store.key_shapes:
        return ""
    rows = run.select(f'steering.kind=start and name="{LOGGER}" and has:steering.exchange')
    if not len(rows):
        return ""
    return str(ev.column("steering.exchange")[rows[-1]] or "")


def steering_agents(run: Any) -> list[str]:
    """Lower-case uuids of the run's steering agents (from its launch records)."""
    ag = run.agents()
    return [str(u).lower() for u, c in zip(ag["uuid"].tolist(), ag["class"].tolist(),
                                           strict=True) if c == "SteeringAgent" and u]


async def call_steering(pool_dir: str | Path, exchange_url: str, action: str,
                        suggestion_id: str, agent: str | None = None,
                        timeout_s: float = 30.0,
                        candidates: list[str] | None = None) -> dict[str, Any]:
    """Call ``approve`` or ``reject`` on the steering agent of the run at ``pool_dir``: the
    one its pool says was launched (``agent``: a uuid prefix to choose among several) and
    the exchange confirms is a steering agent. An empty ``exchange_url`` means the one the
    agent recorded in the pool. ``candidates`` (the steering agents' uuids, for a caller that
    has the run loaded, with ``exchange_url``) saves reading the pool again."""
    if action not in ("approve", "reject"):
        raise AttachError(f"unknown steering action {action!r}")
    if candidates is None or not exchange_url:
        from features.run import Run

        run = Run(Path(pool_dir))
        run.load()
        exchange_url = exchange_url or recorded_exchange(run)
        candidates = steering_agents(run)
    if not exchange_url:
        raise AttachError("the steering agent did not record its exchange: give it "
                          "(redis://HOST:PORT or http://HOST:PORT)")
    if exchange_url == "local":
        raise AttachError("the steering agent runs on a local exchange, which only its own "
                          "process reaches: run the workflow with an HTTP or Redis exchange "
                          "to approve from elsewhere")
    found = [c.lower() for c in candidates]
    if agent:
        found = [u for u in found if u.startswith(agent.lower())]
    manager = await Manager.from_exchange_factory(exchange_factory(exchange_url))
    async with manager:
        live = {str(a.uid).lower() for a in await asyncio.wait_for(
            manager.exchange_client.discover(STEERING_CLASS), timeout_s)}
        found = [u for u in found if u in live]
        if not found:
            raise AttachError("no running steering agent of this run is on that exchange")
        if len(found) > 1:
            raise AttachError(f"{len(found)} steering agents run: choose one with --agent "
                              + ", ".join(u[:8] for u in found))
        handle: Any = manager.get_handle(AgentId(uid=uuid.UUID(found[0]), name=None, role="agent"))
        result: Any = await asyncio.wait_for(handle.action(action, suggestion_id), timeout_s)
    return dict(result)
