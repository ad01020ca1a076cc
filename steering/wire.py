"""How academy-tui talks over an Academy exchange: JSON only, to addresses the user gave.

Academy serializes a request's arguments and its reply with a strategy named in the message
itself, pickle by default, and a reply's strategy is chosen by whoever answers. Unpickling
a reply runs code of the sender's choosing, and any client that reaches a Redis server or an
HTTP exchange can answer in an agent's name (SECURITY.md R2). So everything academy-tui sends
is JSON, and every reply it reads must be JSON: :func:`json_only` sets academy-py's
``default_serializer`` and ``allowed_deserializers`` for the calling context, and
:data:`JSON_RUNTIME` does the same for the steering agent's own runtime (the requests it
accepts and the replies it reads). A pickled reply then raises
``DeserializationMethodProhibitedError`` and is never unpickled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from academy.exchange import ExchangeFactory, HttpExchangeFactory, RedisExchangeFactory
from academy.handle import Handle
from academy.identifier import AgentId
from academy.serialize import SerializationStrategy, allowed_deserializers, default_serializer

JSON = SerializationStrategy.JSON
JSON_RUNTIME: dict[str, Any] = {"allowed_deserializers": {JSON}, "default_serializer": JSON}
"""``RuntimeConfig`` keywords: accept JSON requests only, send JSON, read JSON replies only."""


class WireError(Exception):
    """An exchange address that cannot be used (one line)."""


@contextlib.contextmanager
def json_only() -> Iterator[None]:
    """In this context (and the tasks it starts) send JSON and refuse to deserialize
    anything else. Use inside the coroutine that talks, not around ``asyncio.run``."""
    t1 = default_serializer.set(JSON)
    t2 = allowed_deserializers.set({JSON})
    try:
        yield
    finally:
        allowed_deserializers.reset(t2)
        default_serializer.reset(t1)


def json_handle(agent_id: AgentId[Any], exchange: Any = None) -> Handle[Any]:
    """A handle whose requests, replies and errors travel as JSON."""
    return Handle(agent_id, exchange=exchange, request_serializer=JSON,
                  result_serializer=JSON, exception_serializer=JSON)


def exchange_factory(url: str) -> ExchangeFactory[Any]:
    """The exchange at ``url``: ``redis://HOST:PORT`` or ``http(s)://HOST:PORT``."""
    parts = urlsplit(url)
    if parts.scheme == "redis":
        return RedisExchangeFactory(parts.hostname or "127.0.0.1", parts.port or 6379)
    if parts.scheme in ("http", "https"):
        return HttpExchangeFactory(url.rstrip("/"))
    raise WireError(f"cannot reach an exchange at {url!r}: use redis://HOST:PORT or "
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


__all__ = ["JSON", "JSON_RUNTIME", "WireError", "exchange_factory", "exchange_url",
           "json_handle", "json_only"]
