"""Record text for the Textual widgets that read a plain ``str`` as markup.

A ``DataTable`` parses a ``str`` cell as Rich markup and emoji codes (an action named
``[/]`` raises ``MarkupError`` and takes the app down; ``[link=...]`` makes a link), and
the command palette parses its titles as Textual markup. Record text reaches them only
through these, after :func:`features.safe.clean`."""

from __future__ import annotations

from rich.text import Text
from textual.markup import escape

from features.safe import CELL_LIMIT, clean


class Cell(Text):
    """A ``DataTable`` cell of record text, equal to its text as a ``str`` cell is (tables
    compare a cell with its new value to update only what changed)."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.plain == other
        return super().__eq__(other)


def cell(value: object, limit: int = CELL_LIMIT) -> Cell:
    """A ``DataTable`` cell: controls visible, never markup (laid out as a ``str`` cell of
    a one-line row is: not wrapped); cut by a narrower column, it ends in ``…``."""
    return Cell(clean(value, limit), no_wrap=True, overflow="ellipsis", end="")


def markup(value: object, limit: int = CELL_LIMIT) -> str:
    """For an API that takes only markup (palette titles): controls visible, brackets
    escaped."""
    return escape(clean(value, limit))
