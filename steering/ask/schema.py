"""A small JSON-schema checker for the subset the ask tools use (no dependency).

Supported: ``type`` (one or a list), ``enum``, ``const``, ``maxLength``, ``minLength``,
``minimum``, ``maximum``, ``properties``, ``required``, ``additionalProperties: false``,
``items``, ``minItems``, ``maxItems``, ``anyOf`` and local ``$ref`` (``#/$defs/...``).
Models invent arguments; every violation is reported with its JSON path, the first few
only, so an error result stays short.
"""

from __future__ import annotations

from typing import Any

__all__ = ["errors"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def errors(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
           path: str = "$", limit: int = 5) -> list[str]:
    """Violations of ``schema`` by ``value`` (empty when it conforms), at most ``limit``."""
    root = schema if root is None else root
    out: list[str] = []
    _check(value, schema, root, path, out)
    return out[:limit]


def _closeness(errs: list[str]) -> tuple[bool, int, int]:
    """Sort key of an ``anyOf`` branch's errors, the closest first: a branch of the right
    type, failing deepest (a wrong argument of the right tool, not "tool is not X" from
    every other shape), with the fewest errors."""
    paths = [e.split(": ", 1)[0] for e in errs]
    wrong_type = any(": expected " in e for e in errs)
    depth = max(p.count(".") + p.count("[") for p in paths)
    return wrong_type, -depth, len(errs)


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str,
           out: list[str]) -> None:
    if len(out) >= 20:
        return
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        _check(value, target, root, path, out)
        return
    if "anyOf" in schema:
        tries = []
        for sub in schema["anyOf"]:
            errs: list[str] = []
            _check(value, sub, root, path, errs)
            if not errs:
                break
            tries.append(errs)
        else:
            best = min(tries, key=_closeness) if tries else []
            out.append(f"{path}: matches none of the allowed shapes"
                       + (f" (closest: {best[0]})" if best else ""))
        return
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in kinds):
            out.append(f"{path}: expected {' or '.join(kinds)}, got {_short(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        shown = ", ".join(repr(v) for v in schema["enum"][:12])
        out.append(f"{path}: {_short(value)} is not one of {shown}")
        return
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: must be {schema['const']!r}")
        return
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            out.append(f"{path}: longer than {schema['maxLength']} characters")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']} characters")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    elif isinstance(value, dict):
        _check_object(value, schema, root, path, out)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, out)


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any],
                  path: str, out: list[str]) -> None:
    """Required and unexpected keys, then each property against its own schema."""
    props = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            out.append(f"{path}: missing {key!r}")
    if schema.get("additionalProperties") is False:
        for key in value:
            if key not in props:
                out.append(f"{path}: unexpected {str(key)[:40]!r}")
    for key, sub in value.items():
        if key in props:
            _check(sub, props[key], root, f"{path}.{key}", out)


def _check_array(value: list[Any], schema: dict[str, Any], root: dict[str, Any],
                 path: str, out: list[str]) -> None:
    """The item count, then each item against ``items``."""
    if len(value) > schema.get("maxItems", len(value)):
        out.append(f"{path}: more than {schema['maxItems']} items")
    if len(value) < schema.get("minItems", 0):
        out.append(f"{path}: fewer than {schema['minItems']} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, sub in enumerate(value):
            _check(sub, items, root, f"{path}[{i}]", out)
