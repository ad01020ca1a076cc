"""What a steerable action declares: its knobs (:class:`Range`, :class:`Named`), the
agent it may be about (:class:`AgentRef`), its getter and its rate (:class:`SteerableSpec`).

Plain data with no Academy in it: the same declaration comes from ``@steerable`` (which
enforces it at the action, :mod:`steering.steerable`) or from a knobs file given to the
steering agent from outside the workflow's code (:mod:`steering.knobs`), and travels to the
steering agent's process as :meth:`SteerableSpec.as_dict`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AgentRef", "Named", "Param", "Range", "SteerableSpec"]

OnSlow = Literal["decrease", "increase", "min", "max"]
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_NAME = NAME
_SPECIAL = ("max_per_minute", "current", "returns_previous")


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


@dataclass(frozen=True)
class Named:
    """A parameter that names the knob, for the setter a workflow already has:
    ``set_param(name, value)`` with each name's own range::

        @steerable(name=Named("value", delay=Range(0, 2), batch=Range(1, 64, integer=True)),
                   current="get_param")
        async def set_param(self, name: str, value: float) -> None: ...

    ``value`` is the parameter that takes the number; ``current`` (if any) is called with the
    name (``get_param(name="delay")``)."""

    value: str
    knobs: Mapping[str, Range]

    def __init__(self, value: str, knobs: Mapping[str, Range] | None = None,
                 **named: Range | tuple[float, float]) -> None:
        merged: dict[str, Range] = {}
        for k, v in {**(knobs or {}), **named}.items():
            merged[str(k)] = v if isinstance(v, Range) else Range(*v)
        if not merged:
            raise ValueError("Named needs at least one knob: Named('value', delay=(0, 2))")
        if not all(_NAME.match(k) for k in (value, *merged)):
            raise ValueError(f"bad parameter or knob name in {value!r}, {list(merged)!r}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "knobs", merged)

    def contains(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.knobs

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "named", "value": self.value,
                "knobs": {k: r.as_dict() for k, r in self.knobs.items()}}


Param = Range | AgentRef | Named


def _param(k: str, p: Any) -> Param:
    """A parameter from its :meth:`as_dict` form (``kind`` may be left out of a range)."""
    if not isinstance(p, Mapping):
        raise ValueError(f"parameter {k!r}: not an object")
    kind = p.get("kind", "range" if "lo" in p or "hi" in p else None)
    if kind == "agent":
        return AgentRef()
    if kind == "range":
        extra = set(p) - {"kind", "lo", "hi", "on_slow", "factor", "integer"}
        if extra:
            raise ValueError(f"parameter {k!r}: unknown keys {sorted(extra)}")
        lo: Any = p.get("lo")
        hi: Any = p.get("hi")
        return Range(lo, hi, p.get("on_slow", "decrease"), p.get("factor", 0.5),
                     bool(p.get("integer", False)))
    if kind == "named":
        knobs = p.get("knobs")
        if not isinstance(knobs, Mapping) or not isinstance(p.get("value"), str):
            raise ValueError(f"parameter {k!r}: a named knob needs 'value' and 'knobs'")
        ranges: dict[str, Range] = {}
        for name, r in knobs.items():
            got = _param(f"{k}.{name}", r)
            if not isinstance(got, Range):
                raise ValueError(f"parameter {k!r}: knob {name!r} is not a range")
            ranges[str(name)] = got
        return Named(p["value"], ranges)
    raise ValueError(f"parameter {k!r}: unknown kind {kind!r}")


@dataclass(frozen=True)
class SteerableSpec:
    """One steerable action: its knobs' bounds and how often it may be called.

    Its knobs are either its :class:`Range` parameters (one or several: a change moves one
    of them and passes the others as they are, so ``current`` must then return a mapping of
    every knob's value) or the names of one :class:`Named` parameter; at most one
    :class:`AgentRef` parameter more."""

    action: str
    params: Mapping[str, Param]
    max_per_minute: float = 6.0
    current: str | None = None
    """Action returning the knob's current value (takes the AgentRef argument, if any, and
    the knob's name for a :class:`Named` knob)."""
    returns_previous: bool = False
    """The action returns the knob's previous value."""
    knobs: tuple[str, ...] = field(init=False)
    """What can be moved: the Range parameters' names, or the Named parameter's knobs."""
    named: str | None = field(init=False)
    """Name of the :class:`Named` parameter, if any."""
    ref: str | None = field(init=False)
    """Name of the AgentRef parameter, if any."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.action):
            raise ValueError(f"bad action name {self.action!r}")
        ranges = [k for k, v in self.params.items() if isinstance(v, Range)]
        refs = [k for k, v in self.params.items() if isinstance(v, AgentRef)]
        named = [k for k, v in self.params.items() if isinstance(v, Named)]
        if not (bool(ranges) ^ bool(named)) or len(named) > 1 or len(refs) > 1:
            raise ValueError(f"{self.action}: a steerable action takes one or more Range "
                             "parameters or exactly one Named one, and at most one AgentRef, "
                             f"got {dict(self.params)!r}")
        if not all(_NAME.match(k) for k in self.params):
            raise ValueError(f"{self.action}: bad parameter name in {list(self.params)!r}")
        if named and self.params[named[0]].value in self.params:  # type: ignore[union-attr]
            raise ValueError(f"{self.action}: the Named value parameter is declared twice")
        if not (_number(self.max_per_minute) and self.max_per_minute > 0):
            raise ValueError(f"{self.action}: max_per_minute must be > 0, "
                             f"got {self.max_per_minute!r}")
        if self.current is not None and not _NAME.match(self.current):
            raise ValueError(f"{self.action}: bad current action name {self.current!r}")
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "named", named[0] if named else None)
        object.__setattr__(self, "ref", refs[0] if refs else None)
        knobs = tuple(self.params[named[0]].knobs) if named else tuple(ranges)  # type: ignore[union-attr]
        object.__setattr__(self, "knobs", knobs)

    @property
    def knob(self) -> str:
        """The first knob (the only one of most declarations)."""
        return self.knobs[0]

    @property
    def bounds(self) -> Range:
        """The first knob's range."""
        return self.range_of(self.knob)

    @property
    def value_param(self) -> str | None:
        """The parameter a :class:`Named` knob's value goes in."""
        return self.params[self.named].value if self.named else None  # type: ignore[union-attr]

    @property
    def arg_names(self) -> set[str]:
        """Every parameter a call passes."""
        return set(self.params) | ({self.value_param} if self.value_param else set())

    def range_of(self, knob: str) -> Range:
        if self.named:
            return self.params[self.named].knobs[knob]  # type: ignore[union-attr]
        rng = self.params[knob]
        assert isinstance(rng, Range)
        return rng

    def getter_args(self, knob: str, ref: str | None) -> dict[str, Any]:
        """The keyword arguments of the ``current`` call for ``knob``."""
        out: dict[str, Any] = {self.ref: ref} if self.ref else {}
        if self.named:
            out[self.named] = knob
        return out

    def args_for(self, knob: str, value: float, ref: str | None,
                 others: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The call's arguments setting ``knob`` to ``value`` (the other Range knobs at
        ``others``), or ``None`` when they break the declaration or are unknown."""
        args: dict[str, Any] = {self.ref: ref} if self.ref else {}
        if self.named:
            args[self.named] = knob
            args[str(self.value_param)] = value
        else:
            for k in self.knobs:
                args[k] = value if k == knob else (others or {}).get(k)
        return args if self.check(args) is None else None

    def knob_of(self, args: Mapping[str, Any]) -> str:
        """Which knob a call with ``args`` sets (the first for several Range knobs)."""
        return str(args.get(self.named, self.knob)) if self.named else self.knob

    def value_in(self, args: Mapping[str, Any], knob: str) -> Any:
        return args.get(str(self.value_param)) if self.named else args.get(knob)

    def check(self, args: Mapping[str, Any]) -> str | None:
        """Why ``args`` may not be sent (``None`` when they may): exactly the declared
        parameters, each within its bounds."""
        if set(args) != self.arg_names:
            return f"arguments {sorted(args)} are not the declared {sorted(self.arg_names)}"
        for k, p in self.params.items():
            if not p.contains(args[k]):
                return f"{k}={args[k]!r} is outside {p.as_dict()}"
        if self.named:
            knob = args[self.named]
            v = args[str(self.value_param)]
            if not self.range_of(knob).contains(v):
                return f"{self.value_param}={v!r} is outside {knob}'s " \
                       f"{self.range_of(knob).as_dict()}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "params": {k: v.as_dict() for k, v in self.params.items()},
                "max_per_minute": self.max_per_minute, "current": self.current,
                "returns_previous": self.returns_previous}

    @classmethod
    def build(cls, action: str, **kw: Any) -> SteerableSpec:
        """From the decorator's keywords: parameters as :class:`Range`, :class:`Named`,
        :class:`AgentRef` or ``(lo, hi)``, plus ``max_per_minute``, ``current``,
        ``returns_previous``."""
        special = {k: kw.pop(k) for k in _SPECIAL if k in kw}
        params: dict[str, Param] = {}
        for k, v in kw.items():
            if isinstance(v, Range | AgentRef | Named):
                params[k] = v
            elif isinstance(v, tuple | list) and len(v) == 2:
                params[k] = Range(*v)
            else:
                raise ValueError(f"{action}.{k}: expected Range, Named, AgentRef or (lo, hi), "
                                 f"got {v!r}")
        return cls(action, params, **special)

    @classmethod
    def from_dict(cls, d: Any) -> SteerableSpec:
        """Strictly from :meth:`as_dict` output (a knobs file, or what came over the
        exchange); unknown keys are refused, so a typo is not silently ignored."""
        if not isinstance(d, Mapping) or not isinstance(d.get("params"), Mapping):
            raise ValueError("not a steerable declaration (no 'params' object)")
        extra = set(d) - {"action", "params", "max_per_minute", "current", "returns_previous"}
        if extra:
            raise ValueError(f"unknown keys {sorted(extra)}")
        params = {str(k): _param(str(k), p) for k, p in d["params"].items()}
        current = d.get("current")
        if current is not None and not isinstance(current, str):
            raise ValueError(f"current must be an action name, got {current!r}")
        return cls(str(d.get("action")), params, d.get("max_per_minute", 6.0), current,
                   bool(d.get("returns_previous", False)))
