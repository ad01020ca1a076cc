"""The steering agent's audit trail: one wide log record per event, ``steering.*`` keys.

Records go to the ``academy_tui.steering`` logger. Inside an Academy ``log_context`` (the
steering agent is launched with the run's ``JSONPoolLogging``) the root logger's JSON handler
writes them into the steering process's own file of the run's pool, next to the workflow's
records, so ``academy-tui events RUN --where has:steering.kind`` shows them.

Keys on every event: ``steering.kind`` (see :data:`KINDS`), ``steering.session`` (this steering
agent's uuid, which names its session file: :mod:`features.trust`), ``steering.agent`` (its
id, also as ``academy.agent_id``), ``steering.mode``, ``steering.seq``, ``steering.t`` (when
it was made) and ``steering.sig`` (an HMAC over the others, the logger and the message, with
the session's secret: :func:`features.trust.record_mac`); the others depend
on the kind: ``steering.id`` (a suggestion), ``steering.incident``, ``steering.action``,
``steering.args`` (JSON), ``steering.target``, ``steering.phase`` (``before``/``after`` of a
call), ``steering.result``, ``steering.reason``, ``steering.summary``, ...

The agent never reads these records back: its state lives in memory and approvals arrive
only as actions over the exchange, with a proof made with the session's secret. Readers
count a record only when its signature verifies (:mod:`features.trail`), so ``steering.*``
keys written by anyone else are inert.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

from features.trail import STEERING_LOGGER
from features.trust import record_mac

LOGGER = STEERING_LOGGER
KINDS = ("start", "stop", "targets", "conflict", "observation", "incident", "suggestion",
         "approval", "rejection", "denied", "expiry", "apply", "check", "revert", "escalation",
         "error", "recovery")
"""Every ``steering.kind``."""

log = logging.getLogger(LOGGER)


def _value(v: Any) -> Any:
    # The JSON pool keeps str() of every value: give containers a parseable form.
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return v


class Audit:
    """Writes steering events and keeps the last ``keep`` in memory (for ``history()``)."""

    def __init__(self, session: str, agent: str, mode: str, keep: int = 2000,
                 secret: bytes | None = None) -> None:
        self.session = session
        self.secret = secret
        """The session's key: records are signed with it (unsigned without one)."""
        self.agent = agent
        self.mode = mode
        """The mode stamped on each event (the agent updates it)."""
        self.events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        # INFO on our own logger, so the trail is written even when the root logger's level
        # is higher; the handlers still decide where it goes. The root logger is not touched.
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)

    def emit(self, kind: str, msg: str, *args: Any, level: int = logging.INFO,
             **fields: Any) -> dict[str, Any]:
        """Log one event; ``fields`` become ``steering.<name>`` keys (``None`` left out)."""
        assert kind in KINDS, kind
        with self._lock:
            self._seq += 1
            seq = self._seq
        now = time.time()
        extra: dict[str, Any] = {
            "steering.kind": kind, "steering.session": self.session,
            "steering.agent": self.agent, "steering.mode": self.mode, "steering.seq": seq,
            "steering.t": now,
            # So the events view and filters put them with the steering agent.
            "academy.agent_id": self.agent}
        extra.update({f"steering.{k}": _value(v) for k, v in fields.items() if v is not None})
        # Exactly the text the pool will hold as the record's ``message``.
        message = logging.LogRecord(LOGGER, level, "", 0, msg, args, None).getMessage()
        if self.secret is not None:
            extra["steering.sig"] = record_mac(self.secret, extra, LOGGER, message)
        log.log(level, msg, *args, extra=extra)
        event = {"t": now, "level": logging.getLevelName(level), "message": message,
                 **{k.removeprefix("steering."): v for k, v in extra.items()
                    if k.startswith("steering.")}}
        self.events.append(event)
        return event

    def history(self, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` events (of one kind)."""
        out = [e for e in self.events if kind is None or e["kind"] == kind]
        return out[-limit:]
