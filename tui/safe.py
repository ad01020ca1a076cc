"""Log text is data: never markup, never control sequences.

Everything the app shows from a record goes through :func:`clean` and is rendered as a
plain ``Segment``/``Text`` (never parsed as markup), so ``[bold red]``, ``[@click=...]``,
ANSI escapes and 66 KB values appear literally, cut to what fits, and trigger nothing.
"""

from __future__ import annotations

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL[0x09] = " "  # a tab is spacing, not an escape
_CONTROL[0x0A] = "⏎"
_CONTROL[0x0D] = "\\r"
_TABLE = str.maketrans({chr(c): v for c, v in _CONTROL.items()})

CELL_LIMIT = 4000
"""Characters of one value rendered on a line; the detail view shows more, in pieces."""


def clean(value: object, limit: int = CELL_LIMIT) -> str:
    """A one-line, control-free, length-capped string for a terminal cell."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) > limit:
        s = s[:limit] + f"… (+{len(s) - limit} chars)"
    return s.translate(_TABLE)


def clean_block(value: object, limit: int = 200_000) -> str:
    """Multi-line text (tracebacks): newlines kept, other controls made visible."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) > limit:
        s = s[:limit] + f"\n… (+{len(s) - limit} chars not shown; export the record to see all)"
    return "\n".join(line.translate(_TABLE) for line in s.split("\n"))
