"""Which workflow agents the steering agent may steer, who they are, and what each declared.

Nothing here is taken from the pool's word alone (SECURITY.md R2, R4):

- **Declarations** come from agent classes loaded in the steering agent's own process: the
  classes the launching workflow had imported (:func:`class_paths`, passed along by
  ``launch_steering``) or that the user named (``targets=[MyAgent]``, ``--targets
  pkg.mod:MyAgent``). The pool's text never names a module to import. Academy's
  ``agent_describe`` is not called: its reply can only travel pickled, and the steering
  agent accepts JSON only.
- **Identity**: the exchange lists the agents of exactly each such class (``discover``); only
  those uuids are targets. A display id (``AgentId<5b2acff4>``, what action records name)
  maps to a uuid only when the exchange confirms it and no record contradicts it: a display
  id claimed by two uuids in ``Launched agent`` records, or claimed by a uuid that does not
  start with its 8 hex digits, is a *conflict*: shown (a ``conflict`` audit event) and never
  steered, as the target or as the agent a call is about.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from academy.agent import Agent
from academy.handle import Handle
from academy.identifier import AgentId
from academy.serialize import SerializationStrategy

from steering.knobs import Knobs
from steering.policy import Target
from steering.steerable import SteerableSpec, declarations

RETRY_S = 10.0
"""Seconds before the exchange is asked again about a class."""
_PREFIX = re.compile(r"^AgentId<([0-9a-f]{8})>$")
JSON = SerializationStrategy.JSON


def normalise_targets(targets: Iterable[Any] | None) -> list[str] | None:
    """``targets`` (handles, agent ids, classes, uuid strings, class names, ``module:Class``
    paths) as picklable strings: lower-case uuids, short class names and, for classes, their
    ``module:qualname`` (so the steering agent's process can import them)."""
    if targets is None:
        return None
    out: list[str] = []
    for t in targets:
        if isinstance(t, Handle):
            out.append(str(t.agent_id.uid).lower())
        elif isinstance(t, AgentId):
            out.append(str(t.uid).lower())
        elif isinstance(t, type):
            out.append(f"{t.__module__}:{t.__qualname__}")
        elif isinstance(t, str):
            try:
                out.append(str(uuid.UUID(t)).lower())
            except ValueError:
                out.append(t.strip())
        else:
            raise TypeError(f"cannot steer {t!r}: pass handles, agent ids, classes or uuids")
    return out


def class_paths(base: type = Agent, skip: Iterable[str] = ()) -> list[str]:
    """``module:qualname`` of every loaded agent class that declares steerable actions (the
    launching process's own classes; ``__main__`` classes cannot be imported elsewhere)."""
    out = []
    for classes in agent_classes(base).values():
        for cls in classes:
            if cls.__name__ in skip or cls.__module__ == "__main__":
                continue
            try:
                if declarations(cls):
                    out.append(f"{cls.__module__}:{cls.__qualname__}")
            except ValueError:
                continue
    return sorted(out)


def import_class(path: str) -> type:
    """The agent class at ``module:qualname`` (or ``module.Class``), imported."""
    mod, sep, name = path.partition(":")
    if not sep:
        mod, _, name = path.rpartition(".")
    if not mod or not name:
        raise ValueError(f"{path!r} is not module:Class")
    obj: Any = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Agent)):
        raise ValueError(f"{path} is not an Academy agent class")
    return obj


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


@dataclass(frozen=True)
class Claim:
    """One ``Launched agent`` record: what the pool says (untrusted)."""

    agent_id: str
    uuid: str
    cls: str
    row: int = -1


@dataclass
class Conflict:
    """A display id that is not steered, and why."""

    agent_id: str
    reason: str
    uuids: tuple[str, ...] = ()


def conflicts(claims: Iterable[Claim]) -> dict[str, Conflict]:
    """Display ids the records contradict: claimed by several uuids, or by a uuid that does
    not start with the display id's hex digits."""
    by_display: dict[str, set[str]] = {}
    for c in claims:
        by_display.setdefault(c.agent_id, set()).add(c.uuid.lower())
    out: dict[str, Conflict] = {}
    for disp, uids in by_display.items():
        m = _PREFIX.match(disp)
        wrong = sorted(u for u in uids if m and not u.startswith(m.group(1)))
        if len(uids) > 1:
            out[disp] = Conflict(disp, f"{len(uids)} agents claim the id {disp} in the "
                                 "pool's launch records", tuple(sorted(uids)))
        elif wrong:
            out[disp] = Conflict(disp, f"a launch record maps {disp} to {wrong[0]}, "
                                 "whose uuid does not start with its digits", tuple(wrong))
    return out


class Targets:
    """The steerable agents found so far (one instance per steering agent)."""

    def __init__(self, own_uuid: str, wanted: list[str] | None, call_timeout_s: float,
                 ignore_classes: set[str], classes: Iterable[type] = (),
                 knobs: Knobs | None = None) -> None:
        self.own_uuid = own_uuid.lower()
        self.wanted = wanted
        self.wanted_uuids = {w.lower() for w in wanted or () if _is_uuid(w)}
        self.wanted_classes = {_short(w) for w in wanted or () if not _is_uuid(w)}
        self.call_timeout_s = call_timeout_s
        self.ignore_classes = ignore_classes
        self.extra_classes = list(classes)
        """Classes named by the user or the launching process (imported here)."""
        self.knobs: Knobs = dict(knobs or {})
        """Declarations given from outside the workflow's code (``module.Class`` ->
        action -> declaration): their classes need not be importable here."""
        self.found: dict[str, Target] = {}
        """uuid -> target."""
        self.conflicts: dict[str, Conflict] = {}
        """Display id -> why it is not steered."""
        self.claims: list[Claim] = []
        self.handles: dict[str, Handle[Any]] = {}
        self._asked: dict[str, float] = {}
        """Class path -> when the exchange was last asked for its agents."""
        self._confirmed: dict[str, set[str]] = {}
        """Class path -> uuids the exchange listed."""
        self._active: dict[str, tuple[bool, float]] = {}
        self._dirty = True
        """New launch records arrived since the exchange was last asked."""
        self.exchange: Any = None
        """The steering agent's exchange client (set by :meth:`update`)."""

    def handle(self, uid: str) -> Handle[Any]:
        """A handle to the agent that speaks JSON only (built once; bound to the steering
        agent's exchange by context): a reply that is not JSON is refused, not unpickled."""
        if uid not in self.handles:
            self.handles[uid] = Handle(AgentId(uid=uuid.UUID(uid), name=None, role="agent"),
                                       request_serializer=JSON, result_serializer=JSON,
                                       exception_serializer=JSON)
        return self.handles[uid]

    def classes(self) -> list[tuple[str, str, dict[str, SteerableSpec], str]]:
        """(exchange path ``module.Class``, class name, declarations, source) of every
        class with declarations: decorated classes loaded here (``class``) and the knobs
        given from outside (``knobs``; a decorated action wins over a knob of the same
        name: its bounds hold at the action)."""
        seen: dict[str, type] = {}
        for classes in agent_classes(Agent).values():
            for cls in classes:
                seen[_path(cls)] = cls
        for cls in self.extra_classes:
            seen[_path(cls)] = cls
        found: dict[str, tuple[str, dict[str, SteerableSpec], str]] = {}
        for cls in seen.values():
            try:
                specs = declarations(cls)
            except ValueError:
                continue
            if specs:
                path = str(cls._agent_mro()[0])  # type: ignore[attr-defined]
                found[path] = (cls.__name__, specs, "class")
        for path, specs in self.knobs.items():
            name, have, _ = found.get(path, (path.rsplit(".", 1)[-1], {}, ""))
            found[path] = (name, {**specs, **have}, "knobs" if not have else "class+knobs")
        out = []
        for path, (name, specs, source) in found.items():
            if name in self.ignore_classes:
                continue
            if self.wanted is not None and not self.wanted_uuids and \
                    name.lower() not in self.wanted_classes:
                continue
            out.append((path, name, specs, source))
        return out

    async def update(self, exchange: Any, claims: list[Claim]
                     ) -> tuple[list[Target], list[Conflict]]:
        """Ask the exchange about the steerable classes (again when new launch records
        arrived, else every :data:`RETRY_S`); the new targets and new conflicts."""
        self.exchange = exchange
        if len(claims) != len(self.claims):
            self._dirty = True
        self.claims = list(claims)
        for t in self.found.values():  # a launch record may have arrived since
            t.agent_id = self.display(t.uuid)
        fresh = conflicts(claims)
        new_conflicts = [c for d, c in fresh.items() if d not in self.conflicts]
        self.conflicts.update(fresh)
        now = time.monotonic()
        new: list[Target] = []
        for path, name, specs, source in self.classes():
            last = self._asked.get(path)
            if last is not None and not self._dirty and now - last < RETRY_S:
                continue
            self._asked[path] = now
            try:
                ids = await asyncio.wait_for(
                    exchange.discover(path, allow_subclasses=False), self.call_timeout_s)
            except Exception:
                continue
            uids = {str(a.uid).lower() for a in ids}
            self._confirmed[path] = uids
            for uid in sorted(uids):
                if uid == self.own_uuid or uid in self.found:
                    continue
                if self.wanted is not None and uid not in self.wanted_uuids and \
                        name.lower() not in self.wanted_classes:
                    continue
                disp = self.display(uid)
                t = Target(uid, disp, name, dict(specs), source)
                self.found[uid] = t
                new.append(t)
        self._dirty = False
        return new, new_conflicts

    def display(self, uid: str) -> str:
        """The display id records use for ``uid``: the one launch record claiming it when
        it agrees with the uuid, else ``AgentId<first 8 hex>``."""
        claimed = {c.agent_id for c in self.claims if c.uuid.lower() == uid}
        if len(claimed) == 1:
            disp = next(iter(claimed))
            m = _PREFIX.match(disp)
            if m is None or uid.startswith(m.group(1)):
                return disp
        return f"AgentId<{uid[:8]}>"

    def blocked(self, agent_id: str) -> str | None:
        """Why ``agent_id`` (a display id) may not be steered or steered about, if so."""
        c = self.conflicts.get(agent_id)
        return c.reason if c is not None else None

    async def resolve(self, agent_id: str) -> tuple[str | None, str]:
        """The uuid of the agent records call ``agent_id``, confirmed by the exchange, or
        ``None`` and why not."""
        why = self.blocked(agent_id)
        if why is not None:
            return None, why
        for t in self.found.values():
            if t.agent_id == agent_id:
                return t.uuid, ""
        uids = {c.uuid.lower() for c in self.claims if c.agent_id == agent_id}
        if not uids:
            return None, f"no launch record names the uuid of {agent_id}"
        uid = next(iter(uids))
        if self.exchange is None or not await self._is_active(self.exchange, uid):
            return None, f"the exchange has no live mailbox for {agent_id} ({uid})"
        return uid, ""

    async def _is_active(self, exchange: Any, uid: str) -> bool:
        from academy.exchange.mailbox_status import MailboxStatus

        ok, when = self._active.get(uid, (False, -RETRY_S))
        if ok or time.monotonic() - when < RETRY_S / 5:
            return ok
        try:
            status = await asyncio.wait_for(exchange.status(self.handle(uid).agent_id),
                                            self.call_timeout_s)
            ok = status in (MailboxStatus.ACTIVE, MailboxStatus.INACTIVE)
        except Exception:
            ok = False
        self._active[uid] = (ok, time.monotonic())
        return ok


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _short(spec: str) -> str:
    """The class name of a target spec: ``Name``, ``pkg.mod.Name`` or ``pkg.mod:Name``."""
    return spec.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"
