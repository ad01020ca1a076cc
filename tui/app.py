"""The academy-tui Textual app: thin, it calls features/ and paints."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import CommandInput, CommandPalette
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Static

from features.pools import RunError, resolve
from tui.memory import settle
from tui.messages import OpenRun, ShowCatalog
from tui.threads import leave
from tui.typeahead import TypeAhead, typing

if TYPE_CHECKING:
    from features.run import Run
    from steering.demo import DemoOptions


STOP_WAIT_S = 15.0
"""Longest the demo workflow is given to shut down when the app stops it."""
FULL_GC_AFTER = 300
"""Younger collections between two full ones (CPython's default is 10): ~2M container
objects made, half a minute of steady scrolling. Full collections are made at idle
moments instead (:meth:`AcademyApp._collect_when_idle`); this one is the backstop."""
IDLE_S = 1.0
"""No key or mouse press for this long: the person is reading, a full collection now
goes unfelt (:meth:`AcademyApp._collect_when_idle`)."""
IDLE_GC_EVERY_S = 5.0
"""Shortest interval between two full collections made at idle moments."""
IDLE_GC_AFTER = 10
"""Younger collections since the last full one before an idle moment makes one."""


class AcademyApp(App[int]):
    """academy-tui."""

    TITLE = "academy-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        # Priority: the palette opens as the key arrives, and the keys typed behind it go
        # into its box (tui.typeahead).
        Binding("ctrl+p", "command_palette", "palette", show=False, priority=True),
        Binding("colon", "command_palette(True)", "palette", show=False, priority=True),
    ]

    def __init__(self, run: str | None = None, home: Path | None = None,
                 expected_s: float | None = None, demo: DemoOptions | None = None,
                 sources: tuple[Any, ...] = (), opened: Run | None = None) -> None:
        """``opened``: the run named by ``run``, opened and begun (see :func:`run_app`)."""
        super().__init__()
        from features.loader import prestart

        prestart()  # while stderr is still the real one (see prestart's docstring)
        gc.freeze()  # modules and classes are permanent: keep full collections short
        # A full collection scans every object the app keeps that is not frozen
        # (Textual's render caches: ~80k objects, 35-95 ms), each a stall the user feels
        # while scrolling. By default one comes after 10 younger ones; here they are made
        # when the person pauses, and after FULL_GC_AFTER only as a backstop (this is the
        # app's own process: a library would not do this).
        t0, t1, _ = gc.get_threshold()
        gc.set_threshold(t0, t1, FULL_GC_AFTER)
        self.run_arg = run
        self.home = home
        self.expected_s = expected_s
        self.sources = sources
        """Other sources to join onto the run opened (``--with``)."""
        self.opened = opened
        self.demo = demo
        self.demo_proc: subprocess.Popen[bytes] | None = None
        """The demo workflow this app started (``academy-tui demo``)."""
        self.demo_pool: Path | None = None
        self.demo_detached = False
        """Left running when the app quits (the person chose so)."""
        self.exit_note = ""
        """What the terminal is told after the app ends (printed by Textual)."""
        self.type_ahead = TypeAhead(self)
        """Keys typed after a key that opens a box, held until the box has focus."""
        self._input_at = time.monotonic()
        """When the person last pressed a key or a mouse button."""
        self._idle_gc_at = 0.0

    def on_load(self) -> None:
        import asyncio

        from tui.threads import install

        install(asyncio.get_running_loop())  # thread workers that q does not wait for
        self.set_interval(IDLE_S / 2, self._collect_when_idle)

    def _collect_when_idle(self) -> None:
        """A full collection while the person reads, rather than amid their keys.

        Textual's rendered lines (``Strip``) keep themselves in their own caches, so each
        line drawn is a reference cycle that only a full collection frees: ~45k objects
        after a minute of scrolling and zooming on a 1M-record run, and a full collection
        made by CPython in the middle of a key's work held the UI thread 50-95 ms (the
        run's data is frozen out of it, see ``gc.freeze`` in the workers). Made here,
        after :data:`IDLE_S` without a key, it goes unfelt, and the automatic one (after
        :data:`FULL_GC_AFTER` younger ones) rarely comes."""
        now = time.monotonic()
        if now - self._input_at < IDLE_S or now - self._idle_gc_at < IDLE_GC_EVERY_S or \
                gc.get_count()[2] < IDLE_GC_AFTER:
            return
        self._idle_gc_at = now
        gc.collect()

    def compose(self) -> ComposeResult:
        if self.run_arg or self.demo is not None:
            return  # a run's screen covers it at once: laying it out delayed the first frame
        yield Static("")
        yield Footer()

    def on_mount(self) -> None:
        from tui.screens.run import RunScreen

        if self.demo is not None:
            path = self._start_demo(self.demo)
            self.push_screen(RunScreen(path, expected_s=2 * self.demo.sleep *
                                       self.demo.iterations))
        elif self.run_arg:
            path = self.opened.path if self.opened is not None else \
                resolve(self.run_arg, self.home)
            self.push_screen(RunScreen(path, self.expected_s, sources=self.sources,
                                       run=self.opened))
        else:
            from tui.screens.runs import RunsScreen  # the catalog: not a run's first frame

            self.push_screen(RunsScreen(self.home))

    def _start_demo(self, opts: DemoOptions) -> Path:
        """Run the demo workflow in its own process (its logging setup is process-wide)
        and return its pool directory as soon as it exists."""
        home = Path(opts.academy_home) if opts.academy_home else None
        logs = (home / "logs") if home else resolve_logs()
        before = set(os.listdir(logs)) if logs.exists() else set()
        cmd = [sys.executable, "-m", "steering.demo.workflow", *demo_args(opts)]
        # Its own session: left running, it outlives the terminal the app ran in.
        self.demo_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if logs.exists():
                new = set(os.listdir(logs)) - before
                if new:
                    self.demo_pool = logs / sorted(new)[0]
                    return self.demo_pool
            if self.demo_proc.poll() is not None:
                raise RunError("the demo workflow exited before writing its pool")
            time.sleep(0.02)
        raise RunError("the demo workflow did not start within 60 s")

    def on_open_run(self, message: OpenRun) -> None:
        """A run chosen in the catalog opens over it (esc goes back to it)."""
        from tui.screens.run import RunScreen

        self.push_screen(RunScreen(message.path, from_catalog=True))

    def on_show_catalog(self, message: ShowCatalog) -> None:
        """The run catalog in place of a run opened directly (of the same home)."""
        from tui.screens.runs import RunsScreen

        self.switch_screen(RunsScreen(self.home))

    def on_unmount(self) -> None:
        if self.demo_proc is not None and self.demo_proc.poll() is None and \
                not self.demo_detached:
            self.demo_proc.terminate()

    async def action_quit(self) -> None:
        """``q``: quit; while the demo workflow this app started runs, ask first whether
        to stop it or leave it running (stopped, its run ends mid-way)."""
        from tui.widgets.prompt import ChoiceScreen

        proc = self.demo_proc
        if proc is None or proc.poll() is not None or self.demo_detached:
            self.exit()
            return
        if isinstance(self.screen, ChoiceScreen):
            return  # asked already: s, l or esc
        pool = self.demo_pool

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                proc.terminate()  # SIGTERM: the workflow shuts its agents down
                self.exit_note = (f"academy-tui: stopped the demo workflow (pid "
                                  f"{proc.pid}); its run: {pool}")
                self.exit(message=Text(self.exit_note))
            elif choice == "leave":
                self.demo_detached = True
                self.exit_note = (f"academy-tui: the demo workflow keeps running (pid "
                                  f"{proc.pid}); its pool: {pool}\n  watch it: academy-tui "
                                  f"{pool}\n  stop it: kill {proc.pid}")
                self.exit(message=Text(self.exit_note))

        self.push_screen(ChoiceScreen(
            f"The demo workflow is still running (pid {proc.pid}), writing its run to\n"
            f"{pool}\n\nStop it, or leave it running and quit?",
            [("s", "stop", "s  stop the workflow"), ("l", "leave", "l  leave it running"),
             ("escape", "cancel", "esc  back to the run")]), chosen)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notifications quote pool text (names, ids, notes): plain text, never markup,
        whichever widget sends one (``Widget.notify`` passes ``markup=True``)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown,
                              events.MouseScrollUp)):
            self._input_at = time.monotonic()
        if isinstance(event, events.Key) and not event.is_forwarded and \
                self.type_ahead.hold(event):
            return
        await super().on_event(event)

    def action_command_palette(self, typed: bool = False) -> None:
        """The palette (``ctrl+p``, or ``:`` where a key is not a character), with the keys
        typed behind it."""
        if typed and typing(self):
            raise SkipAction()  # ':' typed into a box
        if self.use_command_palette and not CommandPalette.is_open(self):  # type: ignore[arg-type]
            self.push_screen(CommandPalette(id="--command-palette"))
            palette = self.screen
            self.type_ahead.expect(lambda: palette.query_one(CommandInput)
                                   if palette.is_attached else None)

    def action_help(self) -> None:
        """``?``: every key, by view (tui.help)."""
        from tui.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from tui.palette import commands

        yield from commands(self, screen)


def resolve_logs() -> Path:
    from features.pools import logs_dir

    return logs_dir()


def demo_args(opts: DemoOptions) -> list[str]:
    """Command-line arguments of ``python -m steering.demo.workflow`` for ``opts``."""
    args = ["--iterations", str(opts.iterations), "--sleep", str(opts.sleep),
            "--executor", opts.executor, "--exchange", opts.exchange,
            "--pairs", str(opts.pairs), "--slow-factor", str(opts.slow_factor),
            "--slow-len", str(opts.slow_len), "--label", opts.label]
    if opts.slow_at is not None:
        args += ["--slow-at", str(opts.slow_at)]
    if opts.fail_at is not None:
        args += ["--fail-at", str(opts.fail_at)]
    if opts.academy_home:
        args += ["--academy-home", str(opts.academy_home)]
    if opts.exchange == "redis":
        args += ["--redis-host", opts.redis_host, "--redis-port", str(opts.redis_port)]
    return args


def run_app(run: str | None, home: Path | None = None, expected_s: float | None = None,
            sources: tuple[Any, ...] = ()) -> int:
    """Open the app on a run (or the catalog), ``sources`` joined onto it; returns the exit
    status."""
    opened = None
    if run is not None:
        from features.run import Run

        # Fail before the screen switches to the app; then take a first look at the run
        # (a small saved reading, or the start and the end of a few files: Run.begin),
        # so that the first frame shows what the run did last, not an empty table: read
        # here, before Textual starts, it costs 10-70 ms (~0.15 s from a 1M-record saved
        # reading); read by the load's worker, it waited for the screen's start and then
        # shared the interpreter with it (~0.1 s more before the first rows).
        opened = Run(resolve(run, home), sources=sources)
        opened.begin()
    settle()  # the process is the app's own (see tui.memory)
    return leave(AcademyApp(run, home, expected_s, sources=sources, opened=opened).run()
                 or 0)


def run_demo_app(opts: DemoOptions) -> int:
    """Start the demo workflow and watch it live in the app."""
    settle()
    app = AcademyApp(demo=opts)
    status = app.run() or 0
    proc = app.demo_proc
    if proc is not None and not app.demo_detached:
        try:  # stopped: its agents shut down and the run gets its closing records
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return leave(status)
