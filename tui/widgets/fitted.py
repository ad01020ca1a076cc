"""Data tables fitted to their width: columns shrink, abbreviate or hide by rank
(:func:`tui.fit.fit`), a cut cell ends in ``…``, and one column may take the rest of the
width, wrapping its sentences rather than cutting them.

A view keeps its rows as values and calls :func:`fill` when they change or when its width
does (:func:`width_of` says which width); a table of a few dozen rows is rebuilt in well
under a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from features.safe import clean
from tui.fit import WIDE, Col, abbreviate_id, fit
from tui.text import Cell, cell

PAD = 2
"""A table cell's padding (one cell either side)."""


@dataclass(frozen=True)
class TableCol:
    """A column: its ``normal`` width, the ``short`` one it shrinks to before it hides (0:
    the normal one), its ``rank`` (lowest hides first); ``hide=False`` keeps it always;
    ``ident``: an id, abbreviated to its uuid prefix; ``rest``: it takes what the others
    leave (at least ``normal``), its text wrapped below :data:`tui.fit.WIDE`."""

    key: str
    label: str
    normal: int
    short: int = 0
    rank: int = 50
    hide: bool = True
    ident: bool = False
    rest: bool = False


Row = Sequence[object]
"""A row's values in the columns' order (str, int, float or a styled ``Text``)."""


def _plain(v: object) -> str:
    return v.plain if isinstance(v, Text) else clean(v)


def widths(cols: Sequence[TableCol], rows: Sequence[Row], width: int) -> dict[str, int]:
    """The shown columns' widths for ``rows`` in ``width`` cells."""
    rest = next((c for c in cols if c.rest), None)
    want = {c.key: max([cell_len(c.label), *(cell_len(_plain(r[i])) for r in rows)])
            for i, c in enumerate(cols)}
    fitted = [Col(c.key, max(min(c.normal, want[c.key]), cell_len(c.label)),
                  max(c.short or c.normal, cell_len(c.label)) if not c.ident else
                  max(8, cell_len(c.label)),
                  want[c.key], c.rank, hide=c.hide, lossless=c.ident)
              for c in cols if c is not rest]
    rest_min = 0 if rest is None else rest.normal + PAD
    out = fit(fitted, width, rest_min, gap=PAD, rest_wide=width // 2)
    if rest is not None:
        used = sum(w + PAD for w in out.values())
        out[rest.key] = max(rest.normal, width - used - PAD)
        out = {c.key: out[c.key] for c in cols if c.key in out}
    return out


def fill(table: DataTable[object], cols: Sequence[TableCol], rows: Sequence[Row],
         width: int, keys: Sequence[str] | None = None) -> dict[str, int]:
    """Rebuild ``table`` with ``rows`` fitted to ``width`` cells (keeping the cursor's
    row); returns the shown columns' widths."""
    shown = widths(cols, rows, width)
    keep = table.cursor_row
    table.clear(columns=True)
    for c in cols:
        if c.key in shown:
            table.add_column(c.label, width=shown[c.key], key=c.key)
    wrap = width < WIDE
    for n, r in enumerate(rows):
        cells = [fitted_cell(c, v, shown[c.key], wrap) for c, v in zip(cols, r, strict=True)
                 if c.key in shown]
        table.add_row(*cells, key=keys[n] if keys else None,
                      height=None if wrap and any(c.rest for c in cols) else 1)
    if table.row_count:
        table.move_cursor(row=min(keep, table.row_count - 1), animate=False)
    return shown


def fitted_cell(c: TableCol, v: object, w: int, wrap: bool = False) -> Text:
    """A value as the cell of column ``c``, ``w`` cells wide (for a view that updates
    cells in place); ``wrap``: the ``rest`` column wraps."""
    if isinstance(v, Text):  # styled by the view: cut, never wrapped
        return Cell("", no_wrap=True, overflow="ellipsis", end="").append_text(v)
    text = clean(v)
    if c.ident:
        text = abbreviate_id(text, w)
    if c.rest and wrap:
        return Cell(text, end="")  # a sentence: wrapped, the row grows
    return cell(text)


def width_of(view: Widget) -> int:
    """The cells a table in ``view`` can take (its padding and scrollbar left out, and a
    cell for a table's own vertical scrollbar)."""
    return max(view.scrollable_content_region.width - 2, 0)
