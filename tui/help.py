"""``?``: the keys, by view (the one you are in first), each once, and the filter language.

The keys come from the ``BINDINGS`` the app's own classes declare (not the text-input
widgets' internals: cut, paste, word moves), merged when they do the same thing
(``↑/k``); a key a view acts on without binding it is named here (:data:`ALSO`).
:func:`sections` is what the screen shows, as data: the tests press every key it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static, TabbedContent

FILTER_LANGUAGE = (
    ("levelno>=30   level>=warning", "compare any key (numbers as numbers)"),
    ("academy.action=next_item and fib.iteration>10", "and, or, not, ( )"),
    ('message~"time ?out"   name!~asyncio', "~ a regular expression, ! not"),
    ("exc_text!=None   has:fib.pair   @t>2.5", "None, has:KEY, @t seconds into the run"),
    ("timeout", "a bare word searches the message"),
)
"""The filter language in five lines: an example, and what it shows."""

VIEW_TITLES = {"events": "Events", "timeline": "Timeline", "where": "Where the time went",
               "anomalies": "Anomalies", "steering": "Steering", "ask": "Ask"}

ALSO: dict[str, list[tuple[str, str]]] = {
    "ask": [("escape", "leave the box (then the keys are commands again)")],
}
"""Keys a view acts on that it does not bind itself."""

MORE = {"palette": "palette: jump to an agent, action, incident or run; compare; export "
                   "what is shown; add a column"}
"""Longer words for a binding than the footer has room for, by its description."""

DETAIL = "detail"
"""The section of the event detail (``enter`` on an event)."""


@dataclass
class Entry:
    """One line of help: the keys (as bound) and what they do."""

    keys: list[str]
    description: str

    def shown(self, app: App[Any]) -> str:
        """The keys as the footer writes them (``+/=``, ``^f``, ``⏎``)."""
        return "/".join(app.get_key_display(Binding(k, "")) for k in self.keys)


@dataclass
class Section:
    title: str
    view: str = ""
    """The tab the keys act in ("" for everywhere in a run, or another screen)."""
    entries: list[Entry] = field(default_factory=list)


def entries(cls: type[Any]) -> list[Entry]:
    """The keys ``cls`` itself declares (not the ones it inherits from Textual), merged:
    a key without a description takes the one of a key with the same action, and keys
    with the same description are one entry."""
    bindings = [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    by_action = {b.action: b.description for b in bindings if b.description}
    out: dict[str, Entry] = {}
    for b in bindings:
        desc = b.description or by_action.get(b.action, "")
        if not desc:
            continue
        desc = MORE.get(desc, desc)
        keys = [k.strip() for k in b.key.split(",")]
        if desc in out:
            out[desc].keys += [k for k in keys if k not in out[desc].keys]
        else:
            out[desc] = Entry(keys, desc)
    return list(out.values())


def view_classes() -> dict[str, list[type[Any]]]:
    """The classes whose keys are a view's own, per tab."""
    from tui.widgets.anomalies import AnomaliesView
    from tui.widgets.ask import AskPane, Citations
    from tui.widgets.event_log import EventLog
    from tui.widgets.steering import SteeringView
    from tui.widgets.timeline import Timeline
    from tui.widgets.where import WhereView

    return {"events": [EventLog], "timeline": [Timeline], "where": [WhereView],
            "anomalies": [AnomaliesView], "steering": [SteeringView],
            "ask": [AskPane, Citations]}


def sections(screen: Screen[Any]) -> list[Section]:
    """What ``?`` shows over ``screen``: the view shown first, then the keys of the whole
    run, then the other views and the detail; over another screen, its keys and the app's."""
    from tui.screens.run import RunScreen
    from tui.widgets.detail import DetailScreen

    app_keys = entries(type(screen.app))  # the running app's class: no import of tui.app
    if not isinstance(screen, RunScreen):
        own = entries(type(screen))
        return [Section(type(screen).__name__.removesuffix("Screen") or "Keys", "", own),
                Section("Everywhere", "", app_keys)]
    current = screen.query_one(TabbedContent).active or "events"
    views = view_classes()
    order = [current, *[v for v in VIEW_TITLES if v != current]]
    out: list[Section] = []
    for i, view in enumerate(order):
        es: list[Entry] = []
        for cls in views[view]:
            for e in entries(cls):
                same = next((x for x in es if x.keys == e.keys), None)
                if same is not None:  # one key, acting on two parts of the view
                    same.description += f"; {e.description}"
                else:
                    es.append(e)
        es += [Entry([k], d) for k, d in ALSO.get(view, [])]
        title = VIEW_TITLES[view] + (" (this view)" if view == current else "")
        out.append(Section(title, view, es))
        if i == 0:
            run_keys = entries(RunScreen)
            out.append(Section("Everywhere in a run", "", [*run_keys, *app_keys]))
    out.append(Section("Event detail (enter on an event)", DETAIL, entries(DetailScreen)))
    return out


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below, by view, and the filter language in brief."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-height: 90%; height: auto;
                                  border: thick $accent; background: $panel; }
    HelpScreen Static { padding: 1 2; }
    """

    def __init__(self, below: Screen[Any]) -> None:
        super().__init__()
        self.below = below
        self.sections = sections(below)

    def compose(self) -> ComposeResult:
        text = Text()
        for sec in self.sections:
            text.append(f"{sec.title}\n", style="bold")
            for e in sec.entries:
                text.append(f"  {e.shown(self.app):<15} ", style="bold cyan")
                text.append(f"{e.description}\n")
            text.append("\n")
        text.append("Filter language (/ filters, ctrl+f finds, n/N jump)\n", style="bold")
        for example, what in FILTER_LANGUAGE:
            text.append(f"  {example:<46} ", style="cyan")
            text.append(f"{what}\n")
        text.append("\nesc, q or ? closes this; arrows and the wheel scroll it.", style="dim")
        with VerticalScroll():  # longer than a small terminal
            yield Static(text)
