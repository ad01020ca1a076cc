"""Live or finished: what the header says of the run, and quitting a live demo (the app
started its workflow: stop it, or leave it running and say where its pool is)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from pilotkit import text_of, until

from tests.tui.test_app import SIZE, open_run
from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.widgets.prompt import ChoiceScreen


async def test_a_finished_run_says_finished_not_following(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        status = scr.query_one("#status")
        await until(pilot, lambda: "finished" in text_of(status))
        assert "following" not in text_of(status) and "paused" not in text_of(status)
        assert scr.model.state() == ("finished", "every process closed (2 processes)")


def demo_app(tmp_path: Path, iterations: int, sleep: float) -> AcademyApp:
    from steering.demo import DemoOptions

    return AcademyApp(demo=DemoOptions(iterations=iterations, sleep=sleep,
                                       academy_home=tmp_path))


async def test_a_live_demo_says_live_then_finished(tmp_path: Path) -> None:
    app = demo_app(tmp_path, 16, 0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        scr = app.screen
        status = scr.query_one("#status")
        await until(pilot, lambda: "live, following" in text_of(status))
        assert app.demo_proc is not None and app.demo_proc.poll() is None
        assert app.demo_proc.wait(timeout=60) == 0
        await until(pilot, lambda: "finished" in text_of(status))
        assert "following" not in text_of(status)


async def test_quit_during_a_live_demo_asks_and_can_leave_it_running(tmp_path: Path) -> None:
    app = demo_app(tmp_path, 400, 0.1)  # 40 s: still running when the test quits
    try:
        async with app.run_test(size=SIZE) as pilot:
            scr = await open_run(pilot, app)
            proc = app.demo_proc
            assert proc is not None and app.demo_pool is not None
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            shown = text_of(app.screen.query_one("Static"))
            assert str(app.demo_pool) in shown and f"pid {proc.pid}" in shown
            await pilot.press("escape")  # neither: back to the run, still running
            await until(pilot, lambda: app.screen is scr)
            assert proc.poll() is None
            await pilot.press("q", "l")  # leave it running
            await until(pilot, lambda: app._exit)
        assert proc.poll() is None  # the app is gone, the workflow is not
        said = app.exit_note
        assert "keeps running" in said and str(app.demo_pool) in said
        assert f"kill {proc.pid}" in said
        before = sum(f.stat().st_size for f in app.demo_pool.glob("*.jsonlog"))
        time.sleep(1.0)  # still writing its run
        after = sum(f.stat().st_size for f in app.demo_pool.glob("*.jsonlog"))
        assert after > before
    finally:
        if app.demo_proc is not None and app.demo_proc.poll() is None:
            app.demo_proc.send_signal(signal.SIGTERM)
            app.demo_proc.wait(timeout=60)


async def test_quit_during_a_live_demo_can_stop_it(tmp_path: Path) -> None:
    app = demo_app(tmp_path, 400, 0.1)
    async with app.run_test(size=SIZE) as pilot:
        await open_run(pilot, app)
        proc = app.demo_proc
        assert proc is not None
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("s")
        await until(pilot, lambda: app._exit)
    assert proc.wait(timeout=60) is not None  # stopped (SIGTERM: it shuts its agents down)
    said = app.exit_note
    assert "stopped the demo workflow" in said and str(app.demo_pool) in said
