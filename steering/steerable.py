"""Steerable declarations: which actions of a workflow agent a steering agent may call, with
which values, and how often.

A workflow agent opts in per action, with the decorator stacked on ``@action`` (either order)::

    class Generator(Agent):
        @action
        @steerable(seconds=Range(0.0, 2.0, on_slow="decrease", factor=0.5),
                   current="get_sleep", max_per_minute=6)
        async def set_sleep(self, seconds: float) -> float: ...

        @action
        async def get_sleep(self) -> float: ...

The declaration holds at the action, for every caller (SECURITY.md R5): the decorator wraps the
method, so a call with arguments outside the declaration (a value out of ``lo..hi``, NaN, a
bool or a string for a number, an unknown keyword) or beyond ``max_per_minute`` (per agent
and AgentRef value, over the last 60 s) raises :class:`SteeringRefused` and logs a warning
(logger ``academy_tui.steerable``) without running the method.

A declaration's *knobs* are its :class:`Range` parameters (``(lo, hi)`` is short for
``Range(lo, hi)``; with several, a change moves one and passes the others at the values
``current`` returns as a mapping) or the names of one :class:`Named` parameter, for the
``set_param(name, value)`` setter a workflow already has, each name with its own range; at
most one :class:`AgentRef` parameter more, which the steering agent fills with the uuid of
the slow agent (for an action that moves work away from it). ``current`` names an action
that returns the knob's value (called with the AgentRef argument and the knob's name, if
any), so a change can be reverted; ``returns_previous=True`` says the action itself returns
it. The declarations themselves are plain data (:mod:`steering.knobspec`); a knobs file
gives them for actions that are not decorated (:mod:`steering.knobs`).

Where the steering agent reads them: :func:`declarations` on a class loaded in its own process
(see :mod:`steering.targets`). The decorator also appends one ``steerable-spec: {json}`` line to
the action's docstring, so a person reading ``agent_describe`` sees the bounds;
:func:`from_description` reads it back (the steering agent does not: that reply only travels
pickled).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from steering.knobspec import AgentRef, Named, Range, SteerableSpec

__all__ = ["MARKER", "AgentRef", "Named", "Range", "SteerableSpec", "SteeringRefused",
           "declarations", "from_description", "steerable"]

MARKER = "steerable-spec: "
"""Prefix of the docstring line that carries a declaration to ``agent_describe``."""
F = TypeVar("F", bound=Callable[..., Any])


class SteeringRefused(ValueError):
    """A call of a steerable action outside its declaration (bounds, types, rate)."""


log = logging.getLogger("academy_tui.steerable")
_calls: weakref.WeakKeyDictionary[Any, dict[tuple[str, Any], deque[float]]] = \
    weakref.WeakKeyDictionary()
_calls_lock = threading.Lock()


def refusal(spec: SteerableSpec, sig: inspect.Signature, agent: Any, args: tuple[Any, ...],
            kwargs: dict[str, Any], now: float | None = None) -> str | None:
    """Why this call of the action may not run (``None``: it may; it is then counted
    against the rate)."""
    try:
        bound = sig.bind(agent, *args, **kwargs)
    except TypeError as e:
        return f"bad arguments: {e}"
    bound.apply_defaults()
    missing = [k for k in sorted(spec.arg_names) if k not in bound.arguments]
    if missing:
        return f"missing {', '.join(missing)}"
    why = spec.check({k: bound.arguments[k] for k in spec.arg_names})
    if why is not None:
        return why
    now = time.monotonic() if now is None else now
    key = (spec.action, bound.arguments[spec.ref] if spec.ref else None)
    with _calls_lock:
        per_agent = _calls.setdefault(agent, {})
        q = per_agent.setdefault(key, deque())
        while q and now - q[0] >= 60.0:
            q.popleft()
        if len(q) >= spec.max_per_minute:
            return (f"rate limit: {len(q)} calls in the last minute "
                    f"(at most {spec.max_per_minute:g})")
        q.append(now)
    return None


def steerable(**kw: Any) -> Callable[[F], F]:
    """Declare an ``@action`` steerable (see the module docstring): the method is wrapped so
    every call meets the declaration, with the declaration attached and one marker line
    appended to its docstring."""

    def deco(fn: F) -> F:
        spec = SteerableSpec.build(fn.__name__, **kw)
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__name__}: a steerable action must be an async method")
        sig = inspect.signature(fn)
        missing = [k for k in sorted(spec.arg_names) if k not in sig.parameters]
        if missing:
            raise TypeError(f"{fn.__name__}: declared parameters {missing} are not in its "
                            "signature")

        @functools.wraps(fn)
        async def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            why = refusal(spec, sig, self, args, kwargs)
            if why is not None:
                shown = {k: repr(v)[:80] for k, v in kwargs.items() if k != "context"}
                log.warning("%s refused: %s", spec.action, why,
                            extra={"steerable.action": spec.action, "steerable.reason": why,
                                   "steerable.args": json.dumps([repr(a)[:80] for a in args]),
                                   "steerable.kwargs": json.dumps(shown)})
                raise SteeringRefused(f"{spec.action} refused: {why}")
            return await fn(self, *args, **kwargs)

        guarded.__steerable__ = spec  # type: ignore[attr-defined]
        line = MARKER + json.dumps(spec.as_dict(), sort_keys=True)
        guarded.__doc__ = f"{inspect.cleandoc(fn.__doc__)}\n\n{line}" if fn.__doc__ else line
        return guarded  # type: ignore[return-value]

    return deco


def _is_action(obj: Any) -> bool:
    return getattr(obj, "_agent_method_type", None) == "action"


def declarations(cls: type) -> dict[str, SteerableSpec]:
    """The steerable actions of an agent class (its ``@steerable`` methods).

    Raises ``ValueError`` when a declaration names something that is not an ``@action`` of
    the class (the action itself, or its ``current`` reader), or when the class still has a
    ``STEERABLE`` attribute: bounds declared there could not be enforced at the action."""
    if getattr(cls, "STEERABLE", None):
        raise ValueError(f"{cls.__name__}.STEERABLE is no longer read: declare each action "
                         "with @steerable(...), which enforces its bounds for every caller")
    out: dict[str, SteerableSpec] = {}
    for name in dir(cls):
        spec = getattr(getattr(cls, name, None), "__steerable__", None)
        if isinstance(spec, SteerableSpec):
            out[name] = spec
    for name, spec in out.items():
        for needed in (name, spec.current):
            if needed is not None and not _is_action(getattr(cls, needed, None)):
                raise ValueError(f"{cls.__name__}: steerable {name!r} needs an @action "
                                 f"named {needed!r}")
    return out


def from_description(description: Any) -> dict[str, SteerableSpec]:
    """Declarations carried by an ``agent_describe`` reply (an ``AgentDescription`` or its
    dict): each action whose docstring ends with a marker line. Malformed markers are
    skipped: this text came over the network."""
    actions = getattr(description, "actions", None)
    if actions is None and isinstance(description, Mapping):
        actions = description.get("actions")
    out: dict[str, SteerableSpec] = {}
    for name, act in dict(actions or {}).items():
        doc = getattr(act, "doc", None) if not isinstance(act, Mapping) else act.get("doc")
        if not isinstance(doc, str):
            continue
        lines = [ln.strip() for ln in doc.strip().splitlines()]
        if not lines or not lines[-1].startswith(MARKER):
            continue
        try:
            spec = SteerableSpec.from_dict(json.loads(lines[-1][len(MARKER):]))
        except (ValueError, TypeError):
            continue
        if spec.action == name:
            out[str(name)] = spec
    return out
