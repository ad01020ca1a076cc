"""Steering a run from another process: attach a steering agent to a run that is already
going, or call the one that is steering it (approve, reject), over the run's exchange.

The attached agent writes its audit records into the run's own pool (a new file in it:
the same pool uuid, the pool's Academy home), so the run's report shows them. Only shared
exchanges can be reached from here: Redis (``redis://HOST:PORT``) or Academy's HTTP
exchange (``http://HOST:PORT``); a run on the local exchange is steered from inside, with
:func:`steering.agent.launch_steering`.

Where to connect and which agent to call never come from the pool (SECURITY.md R1, R2, R3, R8): an
approval goes to the steering agent and exchange named in this user's session file
(:mod:`features.trust`), or to an exchange the user typed, and carries a proof made with
the session's secret over the call the verified trail shows. All traffic is JSON only
(:mod:`steering.wire`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from academy.identifier import AgentId
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

from features.pools import LIVE_WINDOW_S
from features.trail import Suggestion, read_trail
from features.trust import (
    Session,
    args_json,
    by_session,
    load_sessions,
    make_approval,
    sessions_dir,
    suggestion_digest,
)
from steering.agent import SteeringOptions, launch_steering
from steering.runenv import academy_home_env, pool_logging
from steering.wire import WireError, exchange_factory, json_handle, json_only

STEERING_CLASS = "steering.agent.SteeringAgent"


class AttachError(Exception):
    """Attaching or calling failed for a reason the user can fix (one line)."""


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
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 knobs: Any = None) -> AttachResult:
    """Run a steering agent for the run at ``pool_dir`` until ``duration_s`` passed or the
    run's other files were not written for ``idle_s``; ``on_event`` sees each audit event.
    ``knobs``: declarations from outside the workflow's code (:mod:`steering.knobs`)."""
    pool = Path(pool_dir).resolve()
    if not pool.is_dir():
        raise AttachError(f"no pool directory at {pool}")
    try:
        factory = exchange_factory(exchange_url)
    except WireError as e:
        raise AttachError(str(e)) from None
    cfg = JSONPoolLogging()
    cfg.uuid = pool.name  # our records join the run's pool
    out = AttachResult(pool)
    before = set(pool.glob("*.jsonlog"))
    with academy_home_env(pool.parent.parent), pool_logging(cfg), json_only():
        mine = set(pool.glob("*.jsonlog")) - before
        try:
            manager = await asyncio.wait_for(
                Manager.from_exchange_factory(factory, log_config=cfg), 60)
        except Exception as e:
            quiet = time.time() - _last_write(pool, mine)
            raise AttachError(_unreachable(exchange_url, e, quiet).replace(
                "; nothing was changed", "")) from None
        try:
            async with manager:
                steer = await launch_steering(manager, log_config=cfg, pool_dir=pool,
                                              mode=mode,  # type: ignore[arg-type]
                                              targets=targets, llm=llm, options=options,
                                              knobs=knobs)
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


def _unreachable(url: str, exc: BaseException, quiet_s: float | None = None) -> str:
    """One plain line for an exchange that did not answer; ``quiet_s``: how long ago the
    run last wrote (a live run's exchange is not over: it may still be starting, or be
    at another address)."""
    if isinstance(exc, OSError | asyncio.TimeoutError) or "Connect" in type(exc).__name__:
        if quiet_s is not None and quiet_s < LIVE_WINDOW_S:
            return (f"cannot reach the exchange at {url}: nothing answers there, though the "
                    f"run is live (written {max(quiet_s, 0.0):.0f} s ago): its exchange may "
                    "still be starting, or listen at another address; nothing was changed")
        return (f"cannot reach the exchange at {url}: nothing answers there (the workflow "
                "and its exchange have probably ended); nothing was changed")
    return f"cannot reach the exchange at {url}: {_line(exc)}"


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


@dataclass
class Decision:
    """What a person is about to approve or reject, and where it goes: all from the
    verified trail and this user's session file, none from the pool's word alone."""

    session: Session
    suggestion: Suggestion
    exchange: str
    digest: str

    def describe(self) -> str:
        sug = self.suggestion
        return f"{sug.key}: {sug.action}({_args(sug.args)}) on {sug.target}"


def _args(text: str) -> str:
    try:
        args = json.loads(text)
    except ValueError:
        return text
    return ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else text


def prepare_decision(run: Any, key: str, agent: str | None = None, exchange: str = "",
                     sessions: list[Session] | None = None) -> Decision:
    """The pending suggestion ``key`` (``s3``, or ``<session>/s3``) of the run's verified
    trail, the session of the steering agent that made it, and the exchange to use (``exchange``
    if the user gave one, else the session file's). Raises :class:`AttachError` with the
    reason in one line, without connecting anywhere."""
    notes: list[str] = []
    if sessions is None:
        sessions, notes = load_sessions(run.path.name)
    trail = read_trail(run, sessions)
    found = [s for s in trail.suggestions.values() if key in (s.key, s.id)]
    if agent:
        found = [s for s in found if s.session.startswith(agent.lower())]
    if not found:
        forged = [why for r, why in trail.unverified
                  if str(run.events().column("steering.id")[r]) == key] \
            if "steering.id" in run.events().store.key_shapes else []
        if forged:
            raise AttachError(f"{key} appears only in records that are not the steering "
                              f"agent's own ({forged[0]}): nothing to decide")
        if not sessions:
            raise AttachError(
                "no steering session of this run on this machine: only the user who "
                f"launched its steering agent can approve (its session files are in "
                f"{sessions_dir()})" + (f"; {notes[0]}" if notes else ""))
        raise AttachError(f"no suggestion {key} in the run's verified steering trail")
    if len(found) > 1:
        raise AttachError(f"{len(found)} steering agents made {key}: choose one with "
                          "--agent " + ", ".join(s.session[:8] for s in found))
    sug = found[0]
    if not sug.pending:
        state = sug.state.replace(": ", " (", 1) + ")" if ": " in sug.state else sug.state
        raise AttachError(f"{sug.key} is {state}: nothing was changed")
    session = by_session(sessions)[sug.session]
    url = exchange or session.exchange
    if not url:
        claimed = trail.sessions[sug.session].exchange if sug.session in trail.sessions \
            else ""
        raise AttachError("the steering agent's session names no exchange: pass --exchange "
                          "redis://HOST:PORT or http://HOST:PORT" +
                          (f" (its records name {claimed})" if claimed else ""))
    if url == "local":
        raise AttachError("the steering agent runs on a local exchange, which only its own "
                          "process reaches: run the workflow with an HTTP or Redis exchange "
                          "to approve from elsewhere")
    return Decision(session, sug, url,
                    suggestion_digest(sug.target_uuid, sug.action, sug.args))


def proof_for(suggestion: dict[str, Any], verb: str = "approve",
              session: str | None = None) -> dict[str, Any]:
    """The proof for ``verb`` of a suggestion as the steering agent's ``suggestions()``
    lists it, made with this user's session file of the agent that made it. For a
    workflow that approves its own steering agent's suggestions:
    ``await steer.approve(s["id"], proof_for(s))``."""
    session = session or suggestion.get("session")
    sessions, _ = load_sessions()
    if session:
        sessions = [s for s in sessions if s.agent_uuid == str(session).lower()]
    if len(sessions) != 1:
        raise AttachError(f"{len(sessions)} steering sessions match this suggestion")
    digest = suggestion_digest(suggestion.get("target_uuid"), suggestion.get("action"),
                               args_json(suggestion.get("args")))
    return make_approval(sessions[0], verb, str(suggestion["id"]), digest)


async def send_decision(decision: Decision, verb: str, timeout_s: float = 30.0
                        ) -> dict[str, Any]:
    """Send ``approve`` or ``reject`` with its proof to the session's steering agent, over
    JSON only; its answer (a dict of plain values)."""
    if verb not in ("approve", "reject"):
        raise AttachError(f"unknown steering action {verb!r}")
    try:
        factory = exchange_factory(decision.exchange)
    except WireError as e:
        raise AttachError(str(e)) from None
    uid = decision.session.agent_uuid
    with json_only():
        try:
            manager = await asyncio.wait_for(Manager.from_exchange_factory(factory),
                                             timeout_s)
        except Exception as e:
            raise AttachError(_unreachable(decision.exchange, e)) from None
        try:
            async with manager:
                live = {str(a.uid).lower() for a in await asyncio.wait_for(
                    manager.exchange_client.discover(STEERING_CLASS, allow_subclasses=False),
                    timeout_s)}
                if uid not in live:
                    raise AttachError(f"steering agent {uid[:8]} is not running on "
                                      f"{decision.exchange} (it stopped, or the workflow "
                                      "ended): nothing was changed")
                handle = json_handle(AgentId(uid=uuid.UUID(uid), name=None, role="agent"),
                                     manager.exchange_client)
                proof = make_approval(decision.session, verb, decision.suggestion.id,
                                      decision.digest)
                args: tuple[Any, ...] = ((decision.suggestion.id, proof) if verb == "approve"
                                         else (decision.suggestion.id, "", proof))
                result: Any = await asyncio.wait_for(handle.action(verb, *args), timeout_s)
        except AttachError:
            raise
        except Exception as e:
            raise AttachError(f"{verb} {decision.suggestion.key} over {decision.exchange} "
                              f"failed: {_line(e)}") from None
    if not isinstance(result, dict):
        raise AttachError(f"the steering agent answered {type(result).__name__}, not a state")
    return result
