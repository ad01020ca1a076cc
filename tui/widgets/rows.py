"""``enter`` on a view of tables: the highlighted row of the focused table opens (its
events, its records), and the footer says so."""

from __future__ import annotations

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable


def open_row(description: str) -> Binding:
    """The ``enter`` binding of a view whose tables open their rows (its action calls
    :func:`open_focused_row`). A priority binding: the table's own ``enter`` (hidden)
    would hide it from the footer."""
    return Binding("enter", "open_row", description, priority=True)


def open_focused_row(view: Widget) -> None:
    """Open the highlighted row of the table that has focus (as its own ``enter`` does),
    or say there is none."""
    table = view.app.focused
    if isinstance(table, DataTable) and table.row_count:
        table.action_select_cursor()
    else:
        view.notify("nothing to open here: no row is highlighted", severity="warning")
