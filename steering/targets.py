"""Which workflow agents the steering agent may steer, and what each declared.

Candidates are the agents the run's pool says were launched (their uuid and class from the
``Launched agent`` records), optionally narrowed by the user's ``targets``. A candidate's
declarations must then come from an authority, never from the log text itself:

1. ``class``: the agent's class is imported in this process and the exchange confirms
   (``discover``) that this uuid is an agent of exactly that class: its declarations are
   read from the class (none: not steerable), without calling the agent;
2. ``describe``: otherwise the agent itself answers Academy's built-in ``agent_describe``
   action, whose action docs carry the declarations (see :mod:`steering.steerable`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any

from academy.agent import Agent
from academy.handle import Handle
from academy.identifier import AgentId

from steering.policy import Target
from steering.steerable import declarations, from_description

RETRY_S = 10.0
"""Seconds before asking an agent that did not answer again."""
MAX_TRIES = 3


def normalise_targets(targets: Iterable[Any] | None) -> list[str] | None:
    """``targets`` (handles, agent ids, classes, uuid strings, class names) as picklable
    strings: lower-case uuids and short class names."""
    if targets is None:
        return None
    out: list[str] = []
    for t in targets:
        if isinstance(t, Handle):
            out.append(str(t.agent_id.uid).lower())
        elif isinstance(t, AgentId):
            out.append(str(t.uid).lower())
        elif isinstance(t, type):
            out.append(t.__name__)
        elif isinstance(t, str):
            try:
                out.append(str(uuid.UUID(t)).lower())
            except ValueError:
                out.append(t.rsplit(".", 1)[-1])
        else:
            raise TypeError(f"cannot steer {t!r}: pass handles, agent ids, classes or uuids")
    return out


def agent_classes(base: type) -> dict[str, list[type]]:
    """Loaded subclasses of ``base`` (Academy's ``Agent``) by short class name: only what
    this process has imported; nothing is imported here."""
    found: dict[str, list[type]] = {}
    stack: list[type] = list(base.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.add(cls)
            stack.extend(cls.__subclasses__())
            found.setdefault(cls.__name__, []).append(cls)
    return found


class Targets:
    """The steerable agents found so far (one instance per steering agent)."""

    def __init__(self, own_uuid: str, wanted: list[str] | None, call_timeout_s: float,
                 ignore_classes: set[str]) -> None:
        self.own_uuid = own_uuid.lower()
        self.wanted = None if wanted is None else {w.lower() for w in wanted}
        self.call_timeout_s = call_timeout_s
        self.ignore_classes = ignore_classes
        self.found: dict[str, Target] = {}
        """uuid -> target."""
        self.handles: dict[str, Handle[Any]] = {}
        self._tries: dict[str, tuple[int, float]] = {}
        self._done: set[str] = set()

    def handle(self, uid: str) -> Handle[Any]:
        """A handle to the agent (built once; bound to the steering agent's exchange)."""
        if uid not in self.handles:
            self.handles[uid] = Handle(AgentId(uid=uuid.UUID(uid), name=None, role="agent"))
        return self.handles[uid]

    def _candidate(self, row: dict[str, Any]) -> str | None:
        uid, cls = row.get("uuid"), row.get("class")
        if not isinstance(uid, str) or not isinstance(cls, str):
            return None
        uid = uid.lower()
        if uid == self.own_uuid or uid in self._done or cls in self.ignore_classes:
            return None
        if row.get("status") not in ("launched", "running"):
            return None
        if self.wanted is not None and uid not in self.wanted and cls.lower() not in self.wanted:
            return None
        n, last = self._tries.get(uid, (0, 0.0))
        if n >= MAX_TRIES or (n and time.monotonic() - last < RETRY_S):
            return None
        return uid

    async def update(self, exchange: Any, rows: list[dict[str, Any]]) -> list[Target]:
        """Resolve new candidate agents among ``rows`` (the run's agents); the new targets."""
        todo = [(uid, row) for row in rows if (uid := self._candidate(row)) is not None]
        if not todo:
            return []
        local = agent_classes(Agent)
        members: dict[type, set[str]] = {}
        new: list[Target] = []
        for uid, row in todo:
            n, _ = self._tries.get(uid, (0, 0.0))
            self._tries[uid] = (n + 1, time.monotonic())
            target = await self._by_class(exchange, uid, row, local, members)
            if target is None and await self._active(exchange, uid):
                target = await self._by_describe(uid, row)
            if target is None:
                continue
            self._done.add(uid)
            if target.specs:
                self.found[uid] = target
                new.append(target)
        return new

    async def _by_class(self, exchange: Any, uid: str, row: dict[str, Any],
                        local: dict[str, list[type]], members: dict[type, set[str]]
                        ) -> Target | None:
        for cls in local.get(row["class"], []):
            if cls not in members:
                path = cls._agent_mro()[0]  # type: ignore[attr-defined]
                try:
                    ids = await asyncio.wait_for(
                        exchange.discover(path, allow_subclasses=False), self.call_timeout_s)
                except Exception:
                    ids = ()
                members[cls] = {str(a.uid).lower() for a in ids}
            if uid in members[cls]:
                try:
                    specs = declarations(cls)
                except ValueError:
                    specs = {}
                return Target(uid, str(row["agent_id"]), cls.__name__, specs, "class")
        return None

    async def _active(self, exchange: Any, uid: str) -> bool:
        """Whether the exchange has a live mailbox for ``uid``: asking an agent that does not
        exist (a forged record, or one long gone) would wait out the call time-out."""
        from academy.exchange.mailbox_status import MailboxStatus

        try:
            status = await asyncio.wait_for(exchange.status(self.handle(uid).agent_id),
                                            self.call_timeout_s)
        except Exception:
            return False
        return status in (MailboxStatus.ACTIVE, MailboxStatus.INACTIVE)

    async def _by_describe(self, uid: str, row: dict[str, Any]) -> Target | None:
        try:
            desc = await asyncio.wait_for(self.handle(uid).agent_describe(),
                                          self.call_timeout_s)
        except Exception:
            return None  # gone, busy or not an Academy agent: maybe later
        return Target(uid, str(row["agent_id"]), str(row["class"]), from_description(desc),
                      "describe")
