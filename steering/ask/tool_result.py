"""What one tool call gives back, and cutting it down to the model's size cap.

Apart from :mod:`steering.ask.tools` because fitting a result is its own small algorithm
(help texts first, then list items, then long strings) that owes nothing to which tools
exist or how their arguments are checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_REF = re.compile(r"\b(?:ev|act|agent):[^\s\"'\],;]{1,120}")

HELP_KEYS = ("meaning", "words")
"""Keys of results that explain rather than report (dropped first when space is short)."""


@dataclass
class ToolResult:
    """What one tool call gave back."""

    tool: str
    arguments: dict[str, Any]
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    truncated: bool = False

    def to_json(self) -> str:
        """Compact JSON for the model (what the cap applies to)."""
        body: dict[str, Any] = {"tool": self.tool, "ok": self.ok}
        if self.ok:
            body["result"] = self.data
            if self.truncated:
                body["truncated"] = "list items were left out to keep the result short"
        else:
            body["error"] = self.error
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)

    @property
    def evidence(self) -> list[str]:
        """Every evidence id in the result (``ev:...``, ``act:...``, ``agent:...``)."""
        return sorted(set(_REF.findall(self.to_json())))

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments, "ok": self.ok,
                "error": self.error, "truncated": self.truncated, "data": self.data}


def fit(result: ToolResult, result_chars: int) -> ToolResult:
    """Make the JSON fit ``result_chars``, never failing for size: first drop the help
    texts (:data:`HELP_KEYS`), then list items (from the longest list's end), then shorten
    the longest strings. A small model's small cap still gets the numbers."""
    data = result.data
    for key in HELP_KEYS:
        if len(result.to_json()) <= result_chars:
            return result
        if isinstance(data, dict) and key in data:
            del data[key]
            result.truncated = True
    while len(result.to_json()) > result_chars:
        lists = [lst for lst in _lists(data) if lst]
        if lists:
            longest = max(lists, key=lambda lst: len(json.dumps(lst, default=str)))
            longest.pop()
        elif not _shorten_longest_string(data):
            return ToolResult(result.tool, result.arguments, False,
                              error="the result is too large to show; narrow it down")
        result.truncated = True
    return result


def _shorten_longest_string(obj: Any) -> bool:
    """Halve the longest string (over 80 characters) inside ``obj``; False when none."""
    best: tuple[int, Any, Any] | None = None
    stack = [obj]
    while stack:
        cur = stack.pop()
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) \
            if isinstance(cur, list) else ()
        for k, v in items:
            if isinstance(v, str) and len(v) > 80 and (best is None or len(v) > best[0]):
                best = (len(v), cur, k)
            elif isinstance(v, dict | list):
                stack.append(v)
    if best is None:
        return False
    _, holder, key = best
    text = holder[key]
    holder[key] = text[: max(40, len(text) // 2)] + "…"  # always shorter: len > 80
    return True


def _lists(obj: Any) -> Iterator[list[Any]]:
    if isinstance(obj, list):
        yield obj
        for x in obj:
            yield from _lists(x)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _lists(v)
