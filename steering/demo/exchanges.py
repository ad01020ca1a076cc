"""The exchange a demo's agents talk over: local, Redis, or an HTTP exchange spawned for
the run (:func:`exchange_factory`).

Apart from :mod:`steering.demo.workflow` because both demo workflows (fibonacci and
straggler) choose their exchange the same way, from the same three options.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any, Protocol

from academy.exchange import ExchangeFactory, LocalExchangeFactory, RedisExchangeFactory
from academy.exchange.cloud import spawn_http_exchange


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    # The port is released before the exchange binds it; a race is possible but harmless here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


class ExchangeOptions(Protocol):
    """What :func:`exchange_factory` reads (``DemoOptions`` and the straggler's options)."""

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
async def exchange_factory(opts: ExchangeOptions) -> AsyncIterator[ExchangeFactory[Any]]:
    """The factory of the exchange ``opts`` names; a spawned HTTP exchange stops on exit."""
    if opts.exchange == 'local':
        yield LocalExchangeFactory()
    elif opts.exchange == 'redis':
        yield RedisExchangeFactory(opts.redis_host, opts.redis_port)
    else:
        port = opts.http_port if opts.http_port is not None else free_port()
        cm = spawn_http_exchange('127.0.0.1', port, timeout=30)
        # Starting waits for the server socket and stopping joins its process: keep both off
        # the event loop so a UI sharing the loop stays responsive.
        factory = await asyncio.to_thread(cm.__enter__)
        try:
            yield factory
        finally:
            await asyncio.to_thread(cm.__exit__, None, None, None)
