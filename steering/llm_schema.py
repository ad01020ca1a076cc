"""Structured-output schemas for the LLM client: a ``response_format`` asking for JSON
(:func:`json_schema_format`), refused when a string in it is unbounded.

Apart from :mod:`steering.llm` because checking a schema is pure data work, done where
prompts are built, and needs nothing of the client.
"""

from __future__ import annotations

from typing import Any


def json_schema_format(name: str, schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """``response_format`` asking for JSON matching ``schema``. Raises ``ValueError`` when a
    string in it has neither ``maxLength`` nor ``enum``: small models can loop inside an
    unbounded string until ``max_tokens`` and return cut-off JSON."""
    loose = unbounded_strings(schema)
    if loose:
        raise ValueError(f"schema {name!r}: strings without maxLength or enum at "
                         + ", ".join(loose))
    return {"type": "json_schema",
            "json_schema": {"name": name, "strict": strict, "schema": schema}}


def unbounded_strings(schema: Any, path: str = "$") -> list[str]:
    """JSON paths of ``type: string`` schemas in ``schema`` with neither maxLength nor enum."""
    if isinstance(schema, list):
        return [p for i, s in enumerate(schema) for p in unbounded_strings(s, f"{path}[{i}]")]
    if not isinstance(schema, dict):
        return []
    types = schema.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    found = [path] if is_string and not {"maxLength", "enum", "const"} & set(schema) else []
    for key, sub in schema.items():
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(sub, dict):
                found += [p for k, s in sub.items() for p in unbounded_strings(s, f"{path}.{k}")]
        elif isinstance(sub, dict | list) and key not in ("enum", "const", "required"):
            found += unbounded_strings(sub, f"{path}.{key}")
    return found
