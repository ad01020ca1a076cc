"""The detail of one event: every key with its typed value, the traceback, where it is,
and the related events one keypress away (the joins)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from features.normalize import scalar
from features.safe import clean, clean_block
from tui.model import RunModel

RELATED = (
    ("a", "action", "academy.action_tag", "same action (both sides of the call)"),
    ("m", "message", "academy.message_tag", "same message"),
    ("g", "agent", "@agent", "same agent"),
    ("p", "process", "@file", "same process (file)"),
)


class DetailScreen(ModalScreen[str | None]):
    """Shows one record; dismisses with a filter expression for a related jump."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "back"),
        Binding("q", "dismiss(None)", "back", show=False),
        *[Binding(k, f"related('{name}')", f"same {name}") for k, name, _, _ in RELATED],
    ]

    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > Vertical { width: 92%; height: 90%; border: thick $accent;
                              background: $panel; }
    DetailScreen #detail-title { height: auto; padding: 0 1; background: $accent 30%; }
    DetailScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, model: RunModel, row: int) -> None:
        super().__init__()
        self.model = model
        self.row = row
        self.record: dict[str, Any] | None = model.events().record(row)

    def compose(self) -> ComposeResult:
        ev = self.model.events()
        name = ev.file_names[ev.file[self.row]]
        title = Text.assemble(("event ", "bold"), f"{clean(name)}:{ev.line_text(self.row)}",
                              f"  (byte {int(ev.offset[self.row])}, "
                              f"+{ev.created[self.row] - ev.t0:.6f} s)")
        with Vertical():
            yield Static(title, id="detail-title")
            with VerticalScroll():
                yield Static(self._body(), id="detail-body")
            yield Footer()

    def _body(self) -> Text:
        text = Text()
        rec = self.record
        if rec is None:
            text.append("The record could not be read back from its file (deleted or "
                        "replaced since). Held in memory:\n", style="yellow")
            ev = self.model.events()
            text.append(clean(ev.message[self.row]))
            return text
        width = max((len(k) for k in rec), default=10)
        for k, raw in rec.items():
            if k == "exc_text":
                continue
            v = scalar(raw)
            kind = "null" if v is None else type(v).__name__
            text.append(f"{clean(k, 200):<{width}} ", style="bold cyan")
            text.append(f"{kind:<5} ", style="dim")
            text.append(clean(v if v is not None else "None", 20_000))
            if k == "created" and isinstance(v, float) and math.isfinite(v):
                ev = self.model.events()
                when = datetime.fromtimestamp(v).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                text.append(f"   {when}, +{v - ev.t0:.6f} s into the run", style="dim")
            text.append("\n")
        agent = self.model.agent_of(self.row)
        if agent and rec.get("academy.agent_id") in (None, "None"):
            text.append(f"{'(agent, by join)':<{width}} ", style="bold magenta")
            text.append(f"      {clean(agent)}\n")
        exc = rec.get("exc_text")
        if exc not in (None, "None"):
            text.append("\ntraceback\n", style="bold red")
            text.append(clean_block(exc))
            text.append("\n")
        text.append("\nrelated: ", style="bold")
        for k, _name, key, desc in RELATED:
            if self._value(key) is not None:
                text.append(f"[{k}] {desc}   ", style="green")
        return text

    def _value(self, key: str) -> Any:
        ev = self.model.events()
        if key == "@agent":
            return self.model.agent_of(self.row)
        if key == "@file":
            return ev.file_names[ev.file[self.row]]
        codes, values = ev.cat(key)
        c = int(codes[self.row])
        return values[c] if c >= 0 else None

    def action_related(self, name: str) -> None:
        key = next(k for _, n, k, _ in RELATED if n == name)
        v = self._value(key)
        if v is None:
            self.notify(f"this event has no {name} key", severity="warning")
            return
        if key == "@agent":
            expr = f'academy.agent_id="{v}" or academy.src="{v}" or academy.dest="{v}"'
            tags = self._agent_tags(str(v))
            if tags:
                expr = f"({expr}) or academy.action_tag~\"^({'|'.join(tags)})$\""
        else:
            expr = f'{key}="{v}"'
        self.dismiss(expr)

    def _agent_tags(self, agent: str) -> list[str]:
        a = self.model.analysis
        if a is None:
            return []
        acts = a.actions
        return [t for t, ag in zip(acts["tag"], acts["agent_id"], strict=True)
                if ag == agent][:500]
