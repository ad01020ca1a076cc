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

A declaration has exactly one numeric *knob* (a :class:`Range`; ``(lo, hi)`` is short for
``Range(lo, hi)``) and at most one :class:`AgentRef` parameter, which the steering agent fills
with the uuid of the slow agent (for an action that moves work away from it). ``current``
names an action that returns the knob's value (called with the AgentRef argument, if any),
so a change can be reverted; ``returns_previous=True`` says the action itself returns it.

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
import math
import re
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

__all__ = ["MARKER", "AgentRef", "Range", "SteerableSpec", "SteeringRefused", "declarations",
           "from_description", "steerable"]

MARKER = "steerable-spec: "
"""Prefix of the docstring line that carries a declaration to ``agent_describe``."""
OnSlow = Literal["decrease", "increase", "min", "max"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SPECIAL = ("max_per_minute", "current", "returns_previous")
F = TypeVar("F", bound=Callable[..., Any])


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Range:
    """A numeric parameter: allowed values ``lo..hi`` and which way to move it on a slowdown.

    ``decrease``/``increase`` multiply/divide the current value by ``factor`` (0 < factor < 1);
    ``min``/``max`` jump to a bound. Every proposal is clamped into ``lo..hi``."""

    lo: float
    hi: float
    on_slow: OnSlow = "decrease"
    factor: float = 0.5
    integer: bool = False

    def __post_init__(self) -> None:
        if not (_number(self.lo) and _number(self.hi)) or self.lo > self.hi:
            raise ValueError(f"bounds must be finite numbers with lo <= hi, got "
                             f"{self.lo!r}..{self.hi!r}")
        if self.on_slow not in ("decrease", "increase", "min", "max"):
            raise ValueError(f"on_slow must be decrease, increase, min or max, "
                             f"got {self.on_slow!r}")
        if not (_number(self.factor) and 0 < self.factor < 1):
            raise ValueError(f"factor must be within (0, 1), got {self.factor!r}")

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a number (not a bool) within the bounds."""
        if not _number(value) or not self.lo <= value <= self.hi:
            return False
        return not self.integer or float(value).is_integer()

    def propose(self, current: Any) -> float | None:
        """The value to set on a slowdown, or ``None`` when nothing would change (already at
        the bound) or ``current`` is not a number."""
        if self.on_slow == "min":
            new = self.lo
        elif self.on_slow == "max":
            new = self.hi
        elif not _number(current):
            return None
        elif self.on_slow == "decrease":
            new = current * self.factor
        else:
            new = current / self.factor if current else self.factor * self.hi
        new = min(self.hi, max(self.lo, float(new)))
        if self.integer:
            new = float(round(new))
        if _number(current) and math.isclose(new, float(current), rel_tol=1e-9, abs_tol=1e-12):
            return None
        return new

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "range", "lo": self.lo, "hi": self.hi, "on_slow": self.on_slow,
                "factor": self.factor, "integer": self.integer}


@dataclass(frozen=True)
class AgentRef:
    """A parameter naming another agent by its uuid string; filled with the slow agent."""

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a uuid string."""
        if not isinstance(value, str) or len(value) > 64:
            return False
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "agent"}


Param = Range | AgentRef


@dataclass(frozen=True)
class SteerableSpec:
    """One steerable action: its parameters' bounds and how often it may be called."""

    action: str
    params: Mapping[str, Param]
    max_per_minute: float = 6.0
    current: str | None = None
    """Action returning the knob's current value (takes the AgentRef argument, if any)."""
    returns_previous: bool = False
    """The action returns the knob's previous value."""
    knob: str = field(init=False)
    """Name of the numeric parameter."""
    ref: str | None = field(init=False)
    """Name of the AgentRef parameter, if any."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.action):
            raise ValueError(f"bad action name {self.action!r}")
        ranges = [k for k, v in self.params.items() if isinstance(v, Range)]
        refs = [k for k, v in self.params.items() if isinstance(v, AgentRef)]
        if len(ranges) != 1 or len(refs) > 1 or len(ranges) + len(refs) != len(self.params):
            raise ValueError(f"{self.action}: a steerable action takes exactly one Range and "
                             f"at most one AgentRef parameter, got {dict(self.params)!r}")
        if not all(_NAME.match(k) for k in self.params):
            raise ValueError(f"{self.action}: bad parameter name in {list(self.params)!r}")
        if not (_number(self.max_per_minute) and self.max_per_minute > 0):
            raise ValueError(f"{self.action}: max_per_minute must be > 0, "
                             f"got {self.max_per_minute!r}")
        if self.current is not None and not _NAME.match(self.current):
            raise ValueError(f"{self.action}: bad current action name {self.current!r}")
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "knob", ranges[0])
        object.__setattr__(self, "ref", refs[0] if refs else None)

    @property
    def bounds(self) -> Range:
        """The knob's range."""
        rng = self.params[self.knob]
        assert isinstance(rng, Range)
        return rng

    def check(self, args: Mapping[str, Any]) -> str | None:
        """Why ``args`` may not be sent (``None`` when they may): exactly the declared
        parameters, each within its bounds."""
        if set(args) != set(self.params):
            return f"arguments {sorted(args)} are not the declared {sorted(self.params)}"
        for k, p in self.params.items():
            if not p.contains(args[k]):
                return f"{k}={args[k]!r} is outside {p.as_dict()}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "params": {k: v.as_dict() for k, v in self.params.items()},
                "max_per_minute": self.max_per_minute, "current": self.current,
                "returns_previous": self.returns_previous}

    @classmethod
    def build(cls, action: str, **kw: Any) -> SteerableSpec:
        """From the decorator's keywords: parameters as :class:`Range`, :class:`AgentRef` or
        ``(lo, hi)``, plus ``max_per_minute``, ``current``, ``returns_previous``."""
        special = {k: kw.pop(k) for k in _SPECIAL if k in kw}
        params: dict[str, Param] = {}
        for k, v in kw.items():
            if isinstance(v, Range | AgentRef):
                params[k] = v
            elif isinstance(v, tuple | list) and len(v) == 2:
                params[k] = Range(*v)
            else:
                raise ValueError(f"{action}.{k}: expected Range, AgentRef or (lo, hi), got {v!r}")
        return cls(action, params, **special)

    @classmethod
    def from_dict(cls, d: Any) -> SteerableSpec:
        """Strictly from :meth:`as_dict` output (what came over the exchange)."""
        if not isinstance(d, dict) or not isinstance(d.get("params"), dict):
            raise ValueError("not a steerable declaration")
        params: dict[str, Param] = {}
        for k, p in d["params"].items():
            if not isinstance(p, dict):
                raise ValueError(f"parameter {k!r}: not an object")
            if p.get("kind") == "agent":
                params[str(k)] = AgentRef()
            elif p.get("kind") == "range":
                lo: Any = p.get("lo")
                hi: Any = p.get("hi")
                params[str(k)] = Range(lo, hi, p.get("on_slow", "decrease"),
                                       p.get("factor", 0.5), bool(p.get("integer", False)))
            else:
                raise ValueError(f"parameter {k!r}: unknown kind")
        current = d.get("current")
        return cls(str(d.get("action")), params, d.get("max_per_minute", 6.0),
                   current if isinstance(current, str) else None,
                   bool(d.get("returns_previous", False)))


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
    missing = [k for k in spec.params if k not in bound.arguments]
    if missing:
        return f"missing {', '.join(missing)}"
    why = spec.check({k: bound.arguments[k] for k in spec.params})
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
        missing = [k for k in spec.params if k not in sig.parameters]
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
