"""A few text snapshots of whole screens, built through the same factory the CLI uses.

Regenerate on purpose with ``ACADEMY_TUI_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py``
and read the diff before committing it.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from tui.app import AcademyApp
from tui.screens.run import RunScreen

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (130, 36)


def screen_text(app: AcademyApp) -> str:
    """The screen as plain text, the way export_screenshot renders it (no SVG)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False)
    update = app.screen._compositor.render_update(full=True,
                                                   screen_stack=app._background_screens)
    console.print(update)
    text = "\n".join(line.rstrip() for line in console.export_text().splitlines())
    # Wall-clock parts of the chrome (the catalog's refresh time) are masked.
    return re.sub(r"refreshed \d\d:\d\d:\d\d", "refreshed HH:MM:SS", text)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("ACADEMY_TUI_UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert text == path.read_text(), f"snapshot {name} differs (see {path})"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


async def opened(pilot, app):  # type: ignore[no-untyped-def]
    for _ in range(300):
        scr = app.screen
        if isinstance(scr, RunScreen) and not scr.model.loading and \
                scr.model.analysis is not None:
            await pilot.pause(0.3)
            return scr
        await pilot.pause(0.05)
    raise AssertionError("run did not open")


async def test_snapshot_events_top(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app)
        await pilot.press("home")
        await pilot.pause(0.2)
        check("events_http_top", screen_text(app))


async def test_snapshot_where_the_time_went(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("exception")), expected_s=3.2)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app)
        await pilot.press("w")
        await pilot.pause(0.3)
        check("where_exception", screen_text(app))


async def test_snapshot_timeline(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("pairs")))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app)
        await pilot.press("l")
        await pilot.pause(0.3)
        check("timeline_pairs", screen_text(app))


async def test_snapshot_catalog(samples_home: Path) -> None:
    app = AcademyApp(None, home=samples_home)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(300):
            if app.screen.query("#runs-table") and \
                    app.screen.query_one("#runs-table").row_count == 8:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        text = screen_text(app).replace(str(samples_home), "<ACADEMY_HOME>")
        check("catalog", text)
