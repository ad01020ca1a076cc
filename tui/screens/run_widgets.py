"""The run screen's own widgets: the status line (and what it says), the view tabs and
the filter bar.

Apart from the screen (:mod:`tui.screens.run`) because they are parts it is built of,
each small, and what the status line says is a reading of the model, not of the screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static, TabbedContent, TabPane

from features.fmt import count
from features.safe import clean
from tui.model import LEVELS, RunModel


class StatusBar(Static):
    """One line: run, records, files, bad lines, live/follow state, load progress."""

    DEFAULT_CSS = "StatusBar { height: 1; background: $accent 25%; padding: 0 1; }"


class ViewTabs(TabbedContent):
    """The run's views."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        # A pane reports that a widget in it took focus after the fact: with keys typed
        # fast ('a', then 'esc e') it reports the Ask pane once the events have focus,
        # and Textual's TabbedContent would switch back to it. A report from a pane the
        # focus has left is dropped; otherwise TabbedContent's own handler (next in the
        # MRO) runs.
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()
            event.stop()


class FilterBar(Vertical):
    """The `/` filter and `ctrl+f` find input, with the parse error shown while typing."""

    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; }
    FilterBar.-open { display: block; }
    FilterBar #filter-error { color: $error; height: auto; }
    FilterBar #filter-help { color: $text-muted; height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Input(placeholder="levelno>=30  academy.action=next_item  message~\"time ?out\""
                                "  exc_text!=None  (enter applies, esc closes)", id="filter-input")
        yield Static("", id="filter-error")
        yield Static("", id="filter-help")


def status_line(m: RunModel, name: str, follow: bool) -> tuple[Text, tuple[str, str]]:
    """What the status bar says of the run ``name`` (its pool directory's) and its model:
    records, files, the filter and hidden levels, bad lines, the live state and whether
    the event view follows (``follow``), load progress; and the run's state it said
    (:meth:`RunModel.state`)."""
    ev = m.events()
    st = m.run.store.stats
    parts: list[tuple[str, str]] = [(name[:8], "bold"), (" · ", "")]
    if m.loading:  # the count below is what is read so far (a first look at the run)
        done = f"{m.load_done / m.load_total * 100:3.0f}% " if m.load_total else ""
        parts.append((f"loading {done}· ", "yellow bold"))
    nf = len(ev.file_names)
    parts.append((f"{ev.n:,} events · {count(nf, 'file')} ", ""))
    shown = len(m.view.rows)
    if m.filter_text or m.hidden_levels:
        parts.append((f"· {shown:,} shown ", "cyan"))
    if m.filter_text:
        parts.append((f"[{clean(m.filter_text, 60)}] ", "cyan"))
    if m.hidden_levels:
        hidden = ",".join(n for n, v in LEVELS if v in m.hidden_levels)
        parts.append((f"hidden: {hidden} ", "magenta"))
    if st.bad_lines:
        parts.append((f"· {count(st.bad_lines, 'bad line')} ", "red"))
    state, why = said = m.state()
    if state == "finished":  # nothing more will come: no following
        parts.append(("· finished ", "bold"))
    elif state == "stopped":
        parts.append((f"· stopped: {why} ", "yellow"))
    elif state == "live":
        parts.append(("· live, following " if follow else "· live, paused (f follows) ",
                      "green" if follow else "yellow"))
    elif not m.loading:  # read, not judged yet
        parts.append(("· following " if follow else "· paused (f follows) ", "dim"))
    if ev.n:
        parts.append((f"· {ev.t1 - ev.t0:.2f} s span", "dim"))
    return Text.assemble(*parts), said
