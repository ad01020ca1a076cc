"""Command palette entries (``ctrl+p``), kept as data: jump to an agent, action, incident
or run, export the current filter, add a column, switch views, compare with another run."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.screen import Screen

from features.safe import clean
from features.trail import STEERING_LOGGER
from tui.text import markup

if TYPE_CHECKING:
    from tui.screens.run import RunScreen


def commands(app: App[Any], screen: Screen[Any]) -> Iterable[SystemCommand]:
    from tui.screens.run import RunScreen

    if not isinstance(screen, RunScreen):
        yield from _run_commands(app)
        return
    s = screen
    for tab, title in (("events", "Events"), ("timeline", "Timeline"),
                       ("where", "Where the time went"), ("anomalies", "Anomalies"),
                       ("steering", "Steering"), ("ask", "Ask")):
        yield SystemCommand(f"View: {title}", f"switch to the {title} view",
                            lambda t=tab: s.action_show_tab(t))
    for fmt in ("csv", "jsonl"):
        yield SystemCommand(f"Export: current filter as {fmt.upper()}",
                            "write the events shown now to a file (asks where)",
                            lambda f=fmt: ask_path(s, f"academy-{s.path.name[:8]}-"
                                                      f"{time.strftime('%H%M%S')}.{f}",
                                                   lambda p, f=f: export_view(s, f, p)))
    yield SystemCommand("Export: actions as CSV", "one row per action, both sides joined "
                        "(asks where)",
                        lambda: ask_path(s, f"academy-{s.path.name[:8]}-actions.csv",
                                         lambda p: export_things(s, "actions", p)))
    yield SystemCommand("Compare with run…", "pick another run: where this one is slower "
                        "(or faster) than it", s.action_compare)
    yield SystemCommand("Filter: clear", "show every event", s.action_clear_filter)
    yield SystemCommand("Filter: steering trail", "the steering agent's records "
                        f"(name={STEERING_LOGGER})",
                        lambda: s.set_filter_text(f"name={STEERING_LOGGER}"))
    yield SystemCommand("Filter: errors and tracebacks", "levelno>=40 or exc_text!=None",
                        lambda: s.set_filter_text("levelno>=40 or exc_text!=None"))
    yield from _jump_commands(s)
    yield from _column_commands(s)
    yield from _run_commands(app)


def _jump_commands(s: RunScreen) -> Iterable[SystemCommand]:
    """Filter to one agent, action or incident: what the analysis and detection found
    (none while they are still being computed)."""
    a = s.model.analysis
    if a is not None:
        for r in a.agents.records():
            aid = r["agent_id"]
            yield SystemCommand(f"Agent: {markup(aid)} ({markup(r['class'])})",
                                f"{r['status']}; show its events",
                                lambda x=aid: s.set_filter_text(
                                    f'academy.agent_id="{x}" or academy.dest="{x}" or '
                                    f'academy.src="{x}"'))
        names = sorted({x for x in a.actions["action"] if x})
        for name in names:
            yield SystemCommand(f"Action: {markup(name)}", "show the records of these calls",
                                lambda x=name: s.set_filter_text(f'academy.action="{x}"'))
    det = s.model.detection
    if det is not None:
        from tui.widgets.anomalies import drill_filter

        for inc in det.incidents:
            expr, _ = drill_filter(inc)
            yield SystemCommand(f"Incident: {markup(inc.describe())}",
                                "show the events of its calls",
                                lambda x=expr: _show_events(s, x))


def _column_commands(s: RunScreen) -> Iterable[SystemCommand]:
    """Add a column for a key the event log does not show yet."""
    ev = s.model.events()
    counts = ev.key_counts()
    shown = {c.key for c in s.query_one("#event-log").columns}  # type: ignore[attr-defined]
    for key in sorted(counts):
        # The process column shows the pid (with the file); the time column, created.
        if key in shown or key in ("message", "formatted", "created", "process"):
            continue
        yield SystemCommand(f"Column: add {markup(key)}", f"{counts[key]:,} events have it",
                            lambda k=key: add_column(s, k))


def _show_events(screen: Any, expr: str) -> None:
    screen.set_filter_text(expr)
    screen.action_show_tab("events")


def _run_commands(app: App[Any]) -> Iterable[SystemCommand]:
    from features.pools import list_pools

    home = getattr(app, "home", None)
    try:
        pools = sorted(list_pools(home), key=lambda p: p.stat().st_mtime, reverse=True)[:50]
    except OSError:
        pools = []
    for p in pools:
        yield SystemCommand(f"Run: open {markup(p.name)}", clean(str(p)),
                            lambda x=p: _open(app, x))


def _open(app: App[Any], path: Path) -> None:
    from tui.screens.run import RunScreen

    app.push_screen(RunScreen(path, from_catalog=True))


def add_column(screen: Any, key: str) -> None:
    """Load a wide key (from the files, in a worker) and show it as a column."""
    def load() -> None:
        values = screen.model.run.events().column(key)
        screen.app.call_from_thread(screen.query_one("#event-log").add_column, key, values)
    screen.run_worker(load, thread=True, group="column", exclusive=False)
    screen.notify(f"loading {clean(key)}…")


def ask_path(screen: Any, default: str, write: Any) -> None:
    """Ask where to write (the working directory's ``default``, shown whole and editable),
    then ``write(path)``; esc cancels. A relative path is the working directory's."""
    from tui.widgets.prompt import PromptScreen

    def done(answer: str | None) -> None:
        if not answer or not answer.strip():
            screen.notify("export cancelled")
            return
        path = Path(answer.strip()).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.parent.is_dir():
            screen.notify(f"no such directory: {clean(str(path.parent))}", severity="error")
            return
        try:
            write(path)
        except OSError as exc:
            screen.notify(f"cannot write {clean(str(path))}: {exc.strerror or exc}",
                          severity="error")

    screen.app.push_screen(PromptScreen("Export to (enter writes, esc cancels)",
                                        str(Path.cwd() / default)), done)


def export_view(screen: Any, fmt: str, path: Path | None = None) -> Path:
    """Write the events of the current view (filter applied) to ``path`` (default a
    time-stamped file in the working directory)."""
    from features.export import write_csv, write_jsonl

    rows = screen.model.view.rows
    table = screen.model.run.events_table(rows)
    path = path or Path.cwd() / f"academy-{screen.path.name[:8]}-" \
        f"{time.strftime('%H%M%S')}.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            write_csv(table, f)
    else:
        with path.open("wb") as fb:
            write_jsonl(table.iter_records(), fb)
    screen.notify(f"wrote {len(rows):,} events to {path}")
    return path


def export_things(screen: Any, what: str, path: Path | None = None) -> Path:
    from features.export import write_csv

    table = getattr(screen.model.run, what)()
    path = path or Path.cwd() / f"academy-{screen.path.name[:8]}-{what}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        write_csv(table, f)
    screen.notify(f"wrote {len(table):,} {what} to {path}")
    return path
