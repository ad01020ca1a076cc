"""Normalisation at the edge: two dialects in, one model out.

Academy's JSON pool writes every value as ``str(v)`` (``"created": "1795839471.07"``,
``"levelno": "10"``, a missing value as ``"None"``); other transports (the Kafka/Diaspora
config) write typed JSON. Everything that leaves the reader goes through these functions,
so the rest of the code sees one model: floats, ints, ``None`` and canonical ids.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NULL_STRINGS = frozenset({"None", "null", ""})
"""String spellings of a missing value (``str(None)``, JSON null written as text, empty)."""

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DISPLAY_ID_RE = re.compile(r"^(AgentId|UserId)<([^<>]*)>$")
_HEX8_RE = re.compile(r"^[0-9a-fA-F]{8}$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$", re.I)


def text_of(value: Any) -> str:
    """``str(value)``, also for a list or object nested too deep for it: a JSON line may
    nest 1,024 levels (orjson reads that many), Python prints ~1,000 (a RecursionError
    beyond) and orjson writes 255. Such a value (only a forged or broken record has one)
    is written as JSON without recursion instead of failing the whole read."""
    try:
        return str(value)
    except RecursionError:
        return _flat_json(value)


def _flat_json(value: Any) -> str:
    """``value`` as JSON text, built with an explicit stack (any depth)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Text):
            out.append(v.text)
        elif isinstance(v, dict):
            out.append("{")
            items = list(v.items())
            stack.append(_Text("}"))
            for i in range(len(items) - 1, -1, -1):
                k, x = items[i]
                stack.append(x)
                stack.append(_Text(("" if i == 0 else ", ") + json.dumps(str(k)) + ": "))
        elif isinstance(v, list | tuple):
            out.append("[")
            stack.append(_Text("]"))
            for i in range(len(v) - 1, -1, -1):
                stack.append(v[i])
                if i:
                    stack.append(_Text(", "))
        else:
            try:
                out.append(json.dumps(v))
            except (TypeError, ValueError):
                out.append(json.dumps(str(v)))
    return "".join(out)


class _Text:
    """Text :func:`_flat_json` writes as it is (a bracket, a separator, a key)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def is_null(value: Any) -> bool:
    """True for ``None`` and the string spellings of a missing value."""
    return value is None or (isinstance(value, str) and value in NULL_STRINGS)


def to_float(value: Any) -> float:
    """A float from a number or numeric string; NaN when missing or not numeric."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def to_int(value: Any) -> int | None:
    """An int from an int, integral float or integer string; ``None`` otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.match(s):
            return int(s)
        try:
            f = float(s)
        except ValueError:
            return None
        return int(f) if f.is_integer() else None
    return None


def canonical_id(value: Any) -> str | None:
    """The canonical spelling of an identifier-like value.

    UUIDs are lower-cased (they compare case-insensitively), display ids keep their shape
    but a hex short id is lower-cased (``AgentId<5B2ACFF4>`` -> ``AgentId<5b2acff4>``);
    named ids (``AgentId<planner>``) keep their case. Missing values become ``None``.
    """
    if is_null(value):
        return None
    s = value if isinstance(value, str) else text_of(value)
    if _UUID_RE.match(s):
        return s.lower()
    m = _DISPLAY_ID_RE.match(s)
    if m:
        inner = m.group(2)
        if _HEX8_RE.match(inner) or _UUID_RE.match(inner):
            return f"{m.group(1)}<{inner.lower()}>"
    return s


def canonical_str(value: Any) -> str | None:
    """A string value, with the null spellings mapped to ``None``."""
    if is_null(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return text_of(value)


_NUM_START = frozenset("+-.0123456789iInN")
"""First characters of the text forms :data:`_INT_RE` and :data:`_FLOAT_RE` accept."""
_ID_START = frozenset("0123456789abcdefABCDEFU")
"""First characters of a uuid or a display id (``AgentId<…>``, ``UserId<…>``)."""
_MEMO: dict[str, Any] = {}
_MEMO_MAX = 1 << 16


def scalar_text(value: str) -> Any:
    c = value[0]
    if c in _NUM_START:
        if _INT_RE.match(value):
            return int(value)
        if _FLOAT_RE.match(value):
            return float(value)
    if c in _ID_START and (len(value) == 36 or value[-1:] == ">"):
        return canonical_id(value)
    return value


def scalar(value: Any) -> Any:
    """One wide value, typed: numbers stay numbers, numeric strings become numbers,
    null spellings become ``None``, uuid-shaped strings are lower-cased, anything nested
    becomes its JSON-ish string.

    Text is typed by its first character before any regex (a logger name or a thread
    name is never a number or an id), and short texts that repeat (levels, loggers,
    function names, states) are typed once: a record has ~26 values and most of them
    repeat, so this is what ``events --format jsonl`` and the exports spend their time on
    (0.66 s of 1.0 s on the 11k-record sample before)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if value in NULL_STRINGS:
            return None
        if len(value) > 40:
            return value
        got = _MEMO.get(value, _MEMO)
        if got is not _MEMO:
            return got
        got = scalar_text(value)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[value] = got
        return got
    return text_of(value)


def infer_numeric(values: list[Any]) -> str:
    """The type a column of normalised scalars should take: 'int', 'float' or 'str'.

    A key is numeric when every non-null value is a number (after :func:`scalar`)."""
    kind = "int"
    seen = False
    for v in values:
        if v is None:
            continue
        seen = True
        if isinstance(v, bool):
            return "str"
        if isinstance(v, int):
            continue
        if isinstance(v, float):
            kind = "float"
            continue
        return "str"
    return kind if seen else "str"
