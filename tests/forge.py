"""Hostile pools for the trust tests: a real steering session writing signed records through
Academy's own JSON pool logging, and forged files written beside it, as anyone who can write
into a pool directory could."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from academy.home import get_academy_home
from academy.logging.configs.jsonpool import JSONPoolLogging

from features.trust import Session, create_session
from steering.audit import Audit
from steering.runenv import academy_home_env, pool_logging

TARGET = "3e5c368f-a4cb-4bb5-a66b-fc830dc29558"
"""The uuid of the agent the real suggestion is about."""


@contextmanager
def steering_session(home: Path, mode: str = "confirm", exchange: str = "local",
                     agent: str | None = None) -> Iterator[tuple[Path, Session, Audit]]:
    """A pool under ``home`` written by Academy's JSON logging in this process, with a real
    steering session (session file under the state directory) whose audit writes into it."""
    cfg = JSONPoolLogging()
    with academy_home_env(home), pool_logging(cfg):
        pool = get_academy_home() / "logs" / cfg.uuid
        agent = agent or str(uuid.uuid4())
        session = create_session(agent, pool, exchange, mode)
        audit = Audit(agent, f"AgentId<{agent[:8]}>", mode, secret=session.secret)
        yield pool, session, audit
        for h in logging.getLogger().handlers:
            h.flush()


def suggest(audit: Audit, sid: str = "s1", action: str = "set_knob",
            args: dict[str, Any] | None = None, target: str = TARGET) -> None:
    """The records a steering agent writes for one suggestion (as ``Steerer._suggest``)."""
    args = {"knob": 0.5} if args is None else args
    audit.emit("suggestion", "suggestion %s for incident %s on %s: %s", sid, "i1",
               f"AgentId<{target[:8]}>", f"{action}({args}) on AgentId<{target[:8]}>",
               id=sid, incident="i1", action=action, args=args, target=f"AgentId<{target[:8]}>",
               target_uuid=target, summary="calls are slow")


def applied(audit: Audit, sid: str = "s1", args: dict[str, Any] | None = None) -> None:
    args = {"knob": 0.5} if args is None else args
    for phase in ("before", "after"):
        audit.emit("apply", "apply %s: %s", sid, phase, id=sid, phase=phase,
                   result="ok" if phase == "after" else None, action="set_knob", args=args,
                   target=f"AgentId<{TARGET[:8]}>", target_uuid=TARGET)


BASE_KEYS = ("formatted", "msg", "args", "levelname", "levelno", "pathname", "filename",
             "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created",
             "msecs", "relativeCreated", "thread", "threadName", "processName", "process",
             "message")


def record(message: str, name: str = "academy_tui.steering", created: float | None = None,
           level: str = "INFO", **extra: Any) -> dict[str, str]:
    """One record as Academy's JSON pool writes it: every value a string."""
    created = time.time() if created is None else created
    rec = {k: "None" for k in BASE_KEYS}
    rec.update({"formatted": message, "msg": message, "args": "()", "levelname": level,
                "levelno": str(logging.getLevelName(level)), "name": name,
                "created": repr(created), "message": message, "process": "4242",
                "processName": "MainProcess", "thread": "1", "threadName": "MainThread"})
    rec.update({k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list)
                else str(v) for k, v in extra.items()})
    return rec


def forge(pool: Path, records: list[dict[str, str]], name: str | None = None) -> Path:
    """A new file in the pool holding ``records``: what a hostile writer can do."""
    path = pool / f"{name or uuid.uuid4()}.jsonlog"
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def pool_lines(pool: Path) -> list[tuple[Path, dict[str, str]]]:
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        out += [(f, json.loads(line)) for line in f.read_text().splitlines() if line.strip()]
    return out


def steering_lines(pool: Path, pick: Callable[[dict[str, str]], bool] = lambda r: True
                   ) -> list[dict[str, str]]:
    return [r for _, r in pool_lines(pool) if r.get("name") == "academy_tui.steering" and pick(r)]


def launched(uid: str, cls: str, display: str | None = None,
             created: float | None = None) -> dict[str, str]:
    """A ``Launched agent`` record as Academy's manager writes it (forged: any uuid, any
    class, any display id)."""
    display = display or f"AgentId<{uid[:8]}>"
    rec = record(f"Launched agent ({display}; Agent<{cls}>)", name="academy.manager",
                 created=created,
                 **{"academy.agent_id": display, "academy.agent": f"Agent<{cls}>"})
    rec["msg"] = "Launched agent (%s; %s)"
    rec["args"] = f"(AgentId(uid=UUID('{uid}'), name=None), {cls}())"
    return rec


def forged_steering(exchange: str, uid: str, sid: str = "s1",
                    action: str = "set_knob") -> list[dict[str, str]]:
    """What a hostile file adds to make a run look steered in mode confirm: a launched
    'SteeringAgent', its start naming ``exchange``, and a pending suggestion."""
    common = {"steering.session": uid[:8], "steering.agent": f"AgentId<{uid[:8]}>",
              "steering.mode": "confirm", "academy.agent_id": f"AgentId<{uid[:8]}>"}
    return [
        launched(uid, "SteeringAgent"),
        record("steering started", **common, **{"steering.kind": "start",
                                                 "steering.exchange": exchange,
                                                 "steering.seq": "1"}),
        record(f"suggestion {sid}", **common, **{
            "steering.kind": "suggestion", "steering.id": sid, "steering.seq": "2",
            "steering.action": action, "steering.args": json.dumps({"knob": 0.5}),
            "steering.target": f"AgentId<{TARGET[:8]}>", "steering.target_uuid": TARGET}),
    ]
