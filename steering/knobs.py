"""Knobs declared from outside a workflow's code: for the setters a workflow already has,
when its author does not want to decorate them (``launch_steering(..., knobs=...)``,
``academy-tui steer RUN --knobs FILE``).

A knobs file (TOML, or JSON with the same shape) lists knobs per agent class, named by its
qualified path as Academy's exchange registers it (``module.Class``; ``__main__.Class`` for
a class defined in the script that was run)::

    # set_param(name, value) with its own range per name, read back by get_param(name)
    [[knob]]
    agent = "fibwf.Worker"
    action = "set_param"
    named = "name"              # the parameter that takes the knob's name
    value = "value"             # the parameter that takes its value
    current = "get_param"       # optional: called with name=...; lets a change be reverted
    max_per_minute = 6
    knobs.delay = { lo = 0.0, hi = 2.0, on_slow = "decrease", factor = 0.5 }
    knobs.batch = { lo = 1, hi = 64, on_slow = "increase", integer = true }

    # set_sleep(seconds): one numeric parameter
    [[knob]]
    agent = "fibwf.Worker"
    action = "set_sleep"
    params.seconds = { lo = 0.0, hi = 2.0 }

Bounds of a knob declared here are held by the steering agent (it never sends a value
outside them); they are held at the action, for every caller, only when the action is
decorated with ``@steerable`` (SECURITY.md R5). The file is the user's word, like
``--targets``: nothing in it comes from the pool.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steering.knobspec import NAME, SteerableSpec

__all__ = ["KnobsError", "as_data", "class_key", "knobs_of", "load_knobs", "parse_knobs"]

Knobs = dict[str, dict[str, SteerableSpec]]
"""Class path (``module.Class``) -> action -> declaration."""
_ENTRY = {"agent", "action", "named", "value", "knobs", "params", "current",
          "max_per_minute", "returns_previous"}


class KnobsError(ValueError):
    """A knobs file or value that cannot be used (one line, says where)."""


def class_key(path: str) -> str:
    """``module.Class`` for ``module.Class`` or ``module:Class`` (Academy's form)."""
    mod, sep, name = path.partition(":")
    return f"{mod}.{name}" if sep else path


def _entry(i: int, e: Any) -> tuple[str, SteerableSpec]:
    where = f"knob {i + 1}"
    if not isinstance(e, Mapping):
        raise KnobsError(f"{where}: not a table")
    extra = set(e) - _ENTRY
    if extra:
        raise KnobsError(f"{where}: unknown keys {sorted(extra)} (known: {sorted(_ENTRY)})")
    agent, action = e.get("agent"), e.get("action")
    if not isinstance(agent, str) or not all(NAME.match(p) for p in
                                             class_key(agent).split(".")) or \
            "." not in class_key(agent):
        raise KnobsError(f"{where}: 'agent' must be the class's module.Class, got {agent!r}")
    where = f"knob {i + 1} ({class_key(agent)}.{action})"
    params: dict[str, Any] = dict(e.get("params") or {})
    if "named" in e or "knobs" in e:
        if not isinstance(e.get("named"), str) or not isinstance(e.get("knobs"), Mapping):
            raise KnobsError(f"{where}: a named knob needs 'named' (the parameter taking the "
                             "knob's name) and 'knobs' (name = {lo, hi})")
        params[e["named"]] = {"kind": "named", "value": e.get("value", "value"),
                              "knobs": dict(e["knobs"])}
    elif "value" in e:
        raise KnobsError(f"{where}: 'value' goes with 'named' and 'knobs'")
    d = {"action": action, "params": params,
         **{k: e[k] for k in ("current", "max_per_minute", "returns_previous") if k in e}}
    try:
        spec = SteerableSpec.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise KnobsError(f"{where}: {exc}") from None
    return class_key(agent), spec


def parse_knobs(data: Any) -> Knobs:
    """Knobs from plain data: ``{"knob": [entry, ...]}`` (a loaded file), a list of entries,
    or ``{"module.Class": {"action": declaration}}`` as :meth:`SteerableSpec.as_dict`
    gives them. Raises :class:`KnobsError`."""
    if isinstance(data, Mapping) and "knob" in data:
        if set(data) != {"knob"}:
            raise KnobsError(f"unknown top-level keys {sorted(set(data) - {'knob'})}")
        data = data["knob"]
    entries: list[Any]
    if isinstance(data, Mapping):
        entries = []
        for agent, actions in data.items():
            if not isinstance(actions, Mapping):
                raise KnobsError(f"{agent}: expected action = declaration")
            for action, d in actions.items():
                if not isinstance(d, Mapping):
                    raise KnobsError(f"{agent}.{action}: not a declaration")
                entries.append({**{k: v for k, v in d.items() if k != "action"},
                                "agent": agent, "action": action})
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        entries = list(data)
    else:
        raise KnobsError("expected a list of knobs ([[knob]] tables)")
    out: Knobs = {}
    for i, e in enumerate(entries):
        cls, spec = _entry(i, e)
        if spec.action in out.setdefault(cls, {}):
            raise KnobsError(f"knob {i + 1}: {cls}.{spec.action} is declared twice")
        out[cls][spec.action] = spec
    return out


def load_knobs(path: str | Path) -> Knobs:
    """A knobs file (``.toml``, or ``.json``). Raises :class:`KnobsError` with the file
    and what is wrong in one line."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise KnobsError(f"cannot read knobs file {p}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise KnobsError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: "
                         f"{exc}") from None
    try:
        return parse_knobs(data)
    except KnobsError as exc:
        raise KnobsError(f"{p}: {exc}") from None


def as_data(knobs: Knobs) -> dict[str, dict[str, dict[str, Any]]]:
    """Plain data (picklable, JSON-ready) that :func:`parse_knobs` reads back."""
    return {cls: {a: s.as_dict() for a, s in actions.items()} for cls, actions in knobs.items()}


def knobs_of(knobs: Any) -> Knobs:
    """Knobs from what a caller passes: ``None``, a knobs file's path, parsed knobs, or
    plain data (:func:`parse_knobs`)."""
    if knobs is None:
        return {}
    if isinstance(knobs, str | Path):
        return load_knobs(knobs)
    if isinstance(knobs, Mapping) and all(
            isinstance(v, Mapping) and all(isinstance(x, SteerableSpec) for x in v.values())
            for v in knobs.values()):
        return {class_key(str(k)): dict(v) for k, v in knobs.items()}
    return parse_knobs(knobs)
