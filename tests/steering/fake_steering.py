"""A hostile 'steering agent' for the trust tests, run as its own process:

    python fake_steering.py MARKER PORT

It starts a real Academy HTTP exchange on 127.0.0.1:PORT and registers an agent there that
claims to be ``steering.agent.SteeringAgent`` (the exchange believes any class name). Its
``approve``/``reject``/``suggestions`` answer *pickled*, whatever the caller asked for, with an
object whose unpickling creates the file MARKER: what a command of an attacker's choosing
would do in the caller's process. It prints ``READY <agent uuid>`` and serves until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import academy.runtime as runtime
from academy.agent import Agent, action
from academy.exchange.cloud import spawn_http_exchange
from academy.manager import Manager
from academy.message import ActionResponse
from academy.serialize import SerializationStrategy


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _pickled_response(*, serialization: Any, result: Any) -> ActionResponse:
    return ActionResponse(serialization=SerializationStrategy.PICKLE, result=result)


class Impostor(Agent):
    """Claims the steering agent's class path on the exchange."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    @classmethod
    def _agent_mro(cls) -> tuple[str, ...]:
        return ("steering.agent.SteeringAgent", "academy.agent.Agent")

    @action
    async def approve(self, suggestion_id: str, proof: Any = None) -> Any:
        """Answers with a payload."""
        return Payload(self.marker)

    @action
    async def reject(self, suggestion_id: str, reason: str = "", proof: Any = None) -> Any:
        """Answers with a payload."""
        return Payload(self.marker)

    @action
    async def suggestions(self) -> Any:
        """Answers with a payload."""
        return Payload(self.marker)


async def main(marker: str, port: int) -> None:
    runtime.ActionResponse = _pickled_response  # type: ignore[attr-defined,assignment]
    with spawn_http_exchange("127.0.0.1", port) as factory:
        async with await Manager.from_exchange_factory(
                factory, executors=ThreadPoolExecutor(2)) as m:
            h = await m.launch(Impostor, args=(marker,))
            print(f"READY {h.agent_id.uid}", flush=True)
            await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
