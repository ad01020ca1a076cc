"""Fitting record text and table columns to the terminal's width.

A value cut to fit ends in ``…``; ids are abbreviated to their 8-character uuid prefix
(``AgentId<90d151e9>`` -> ``90d151e9``) and dotted names to their initials
(``academy.exchange.client`` -> ``a.e.client``) before anything is cut. Columns shrink to
their short form, then hide, in priority order, so that the column that matters (a log's
message, a run's status and why) keeps its room; on a wide terminal the columns that were
cut get their whole values back. Widths are terminal cells (``rich.cells``), so wide
characters and visible escapes are measured as they are painted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

ELLIPSIS = "…"
WIDE = 120
"""From this many columns on, columns cut below it get their whole values back."""

_WRAPPED_ID = re.compile(r"^\w*<([^<>]+)>$")
_UUID = re.compile(r"^([0-9a-fA-F]{8})(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")


def ellipsize(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells; when cut, its last cell is ``…``."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    return set_cell_size(text, width - 1) + ELLIPSIS


def short_id(text: str) -> str:
    """An id as people read it: ``AgentId<90d151e9>`` -> ``90d151e9``, a uuid to its first
    8 characters, ``Agent<GeneratorAgent>`` -> ``GeneratorAgent``; other text unchanged."""
    m = _WRAPPED_ID.match(text)
    inner = m.group(1) if m else text
    u = _UUID.match(inner)
    if u:
        return u.group(1)
    return inner if m else text


def is_uuid(text: str) -> bool:
    """``text`` is a uuid and nothing more (a pool's directory name, as Academy makes it)."""
    m = _UUID.match(text)
    return m is not None and m.end() == len(text)


def abbreviate_id(text: str, width: int) -> str:
    """An id in ``width`` cells: whole if it fits, else its short form (:func:`short_id`),
    cut with ``…`` only if that does not fit either."""
    if cell_len(text) <= width:
        return text
    return ellipsize(short_id(text), width)


def abbreviate_dotted(name: str, width: int) -> str:
    """A dotted name in ``width`` cells: its leading parts shortened to their initials from
    the left (``academy.exchange.client`` -> ``a.exchange.client`` -> ``a.e.client``), then
    cut with ``…``. Names that differ only in their last part stay apart."""
    if cell_len(name) <= width:
        return name
    parts = name.split(".")
    for i in range(len(parts) - 1):
        parts[i] = parts[i][:1]
        short = ".".join(parts)
        if cell_len(short) <= width:
            return short
    return ellipsize(".".join(parts), width)


@dataclass
class Col:
    """A column to fit: ``normal`` is its usual width, ``short`` the least it shrinks to
    before it hides, ``want`` what its longest value needs (given on wide terminals);
    columns of lower ``rank`` shrink and hide first (``hide=False``: never hidden).
    ``lossless``: the short form loses nothing a reader needs (an id's uuid prefix): such
    columns shrink first and are grown back only on wide terminals."""

    key: str
    normal: int
    short: int
    want: int
    rank: int
    hide: bool = True
    lossless: bool = False


def fit(cols: Sequence[Col], width: int, rest_min: int, gap: int = 1,
        rest_wide: int | None = None) -> dict[str, int]:
    """The shown columns' widths (in ``cols`` order) leaving at least ``rest_min`` cells
    for the column that takes the rest; every column takes ``gap`` more cells.

    Lossless columns shrink first (lowest rank first, each by what is still missing); then,
    lowest rank first, a column hides (or, if it may not, shrinks) until the rest fits, so a
    value is cut only once every column below it is gone. What is left is given back to the
    shrunk columns that lost something (lossless ones grow back on wide terminals). From
    :data:`WIDE` cells on, columns grow toward ``want`` (highest rank first) as long as the
    rest keeps ``rest_wide`` (default: half the width)."""
    widths = {c.key: min(c.normal, max(c.want, c.short)) for c in cols}
    by_rank = sorted(cols, key=lambda c: c.rank)
    budget = width - rest_min

    def total() -> int:
        return sum(w + gap for w in widths.values())

    def shrink(c: Col) -> None:
        widths[c.key] = max(c.short, widths[c.key] - (total() - budget))

    for c in by_rank:
        if total() <= budget:
            break
        if c.lossless:
            shrink(c)
    for c in by_rank:
        if total() <= budget:
            break
        if c.hide:
            del widths[c.key]
        else:
            shrink(c)
    for c in reversed(by_rank):  # give back what hiding freed (an id's prefix will do)
        if c.key in widths and not c.lossless:
            spare = budget - total()
            if spare <= 0:
                break
            widths[c.key] = min(min(c.normal, max(c.want, c.short)), widths[c.key] + spare)
    if width >= WIDE:
        grow = width - max(rest_min, width // 2 if rest_wide is None else rest_wide)
        for c in reversed(by_rank):
            if c.key in widths and c.want > widths[c.key]:
                spare = grow - total()
                if spare <= 0:
                    break
                widths[c.key] = min(c.want, widths[c.key] + spare)
    return {c.key: widths[c.key] for c in cols if c.key in widths}
