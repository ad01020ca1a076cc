"""The Steering tab: the steering agent's trail read from the pool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from textual.widgets import DataTable, Input, Static

from tests.tui.test_app import SIZE, open_run, until
from tui.app import AcademyApp
from tui.widgets.prompt import PromptScreen
from tui.widgets.steering import NO_STEERING, SteeringView

if TYPE_CHECKING:
    from steering.demo import DemoResult


def _raw(pool: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        out += [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
    return [r for r in out if r.get("name") == "academy_tui.steering"]


@pytest.fixture
def steered(tmp_path: Path) -> DemoResult:
    """A finished run of the fibonacci demo with a steering agent applying its remedy."""
    # Imported here: importing the demo (Academy, its logging) at collection time would
    # change what the other test modules of this directory see.
    from steering.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(iterations=30, sleep=0.02, slow_at=12, slow_factor=6,
                               slow_len=30, academy_home=tmp_path, steer="apply",
                               step_timeout=60))
    assert res.ok, res.error
    return res


async def test_steering_pane_lists_suggestions_and_drills_down(steered: DemoResult) -> None:
    res = steered
    raw = _raw(res.pool_dir)
    sugg = [r for r in raw if r.get("steering.kind") == "suggestion"]
    assert sugg
    app = AcademyApp(str(res.pool_dir))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("s")
        view = scr.query_one(SteeringView)
        table = view.query_one(DataTable)
        await until(pilot, lambda: view.trail is not None and table.row_count == len(sugg))
        for i, r in enumerate(sugg):
            row = [str(c) for c in table.get_row_at(i)]
            assert row[0] == r["steering.id"]
            assert row[2] == r["steering.target"]
            assert row[3] == r["steering.action"]
            assert row[4] == r["steering.args"]
        sid = sugg[0]["steering.id"]
        # The state is what the last apply, check, escalation or revert said (on loaded
        # cores the workflow can end before the agent checks what it applied).
        last = [r for r in raw if r.get("steering.id") == sid
                and r["steering.kind"] in ("apply", "check", "escalation", "revert")
                and r.get("steering.phase") != "before"][-1]
        # The table shows its word, the title under it the whole state with the reason.
        state = str(table.get_row_at(0)[5])
        title = str(view.query_one("#steering-title", Static).render())
        if last["steering.kind"] == "check":
            assert state == "checked"
            assert title.endswith(f"checked: {last['steering.result']}")
        elif last["steering.kind"] == "escalation":
            assert state == "escalated"
            assert title.endswith(f"escalated: {last['steering.reason']}")
        else:
            word = {"apply": "applied", "revert": "reverted"}[last["steering.kind"]]
            assert state == word
            assert title.endswith(f"{word}: {last['steering.result']}")
        body = str(view.query_one("#steering-records", Static).render())
        assert "suggestion" in body and "apply" in body
        n_id = sum(1 for r in _raw(res.pool_dir) if r.get("steering.id") == sid)
        session = sugg[0]["steering.session"]
        await pilot.press("enter")
        await until(pilot, lambda: scr.query_one("#tabs").active == "events"
                    and scr.model.filter_text ==
                    f"steering.session={session} and steering.id={sid}")
        await until(pilot, lambda: len(scr.model.view.rows) == n_id)


async def test_steering_pane_without_agent(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("thread")))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("s")
        view = scr.query_one(SteeringView)
        await until(pilot, lambda: view.trail is not None)
        assert str(view.query_one("#steering-summary", Static).render()) == NO_STEERING
        assert view.query_one(DataTable).row_count == 0


async def test_approve_a_pending_suggestion_from_the_pane(tmp_path: Path) -> None:
    """Mode confirm, live: a straggler run (its own process, Academy's HTTP exchange) whose
    steering agent waits for a person; the pane shows the suggestion pending, ``y`` asks
    over the exchange the agent recorded, and the remedy is applied in the workflow."""
    home = tmp_path / "home"
    wf = subprocess.Popen(
        [sys.executable, "-m", "steering.demo.straggler", "--workers", "3", "--rounds", "90",
         "--task-s", "0.04", "--slow-after", "20", "--slow-factor", "6", "--exchange", "http",
         "--steer", "confirm", "--academy-home", str(home),
         # The demo holds up to 2 minutes for a person; this test approves, then ends.
         "--confirm-wait", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert wf.stdout is not None
        pool = Path(wf.stdout.readline().split("pool: ", 1)[1].strip())
        deadline = time.monotonic() + 60
        while not list(pool.glob("*.jsonlog")):
            assert time.monotonic() < deadline, "the workflow wrote nothing"
            time.sleep(0.1)
        app = AcademyApp(str(pool))
        async with app.run_test(size=SIZE) as pilot:
            scr = await open_run(pilot, app)
            view = scr.query_one(SteeringView)
            table = view.query_one(DataTable)

            # On another tab, a suggestion waiting for a person is announced.
            def announced() -> bool:
                return any("waits for approval" in n.message
                           for n in app._notifications)

            await until(pilot, announced, timeout=90)
            assert scr.query_one("#tabs").active == "events"
            await pilot.press("s")

            def pending() -> str | None:
                if view.trail is None:
                    return None
                return next((k for k, s in view.trail.suggestions.items()
                             if s.state == "pending" and s.action == "set_weight"), None)

            await until(pilot, lambda: pending() is not None and table.row_count > 0,
                        timeout=90)
            sid = pending()
            assert sid is not None
            assert view.trail is not None
            (st,) = view.trail.sessions.values()
            assert st.exchange.startswith("http://127.0.0.1:") and st.state == "running"
            summary = str(view.query_one("#steering-summary", Static).render())
            waiting = re.search(r"(\d+) pending", summary)
            # On loaded cores another worker's calls can be slow enough for a second
            # suggestion before the person acts: at least this one waits.
            assert waiting and int(waiting.group(1)) >= 1, summary
            assert "running in mode confirm" in summary
            # A pending suggestion comes under the cursor as it arrives (the table moves
            # its cursor once its new rows are laid out, a frame later): y acts on it.

            def chosen() -> str | None:
                sel = view.selected()
                s = view.trail.suggestions.get(sel.key) if sel and view.trail else None
                ok = s is not None and s.state == "pending" and s.action == "set_weight"
                return sel.key if ok and sel else None

            await until(pilot, lambda: chosen() is not None, timeout=30)
            sid = chosen()
            assert sid is not None
            table.focus()
            await pilot.press("y")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen))
            # Pre-filled from this user's session file of that steering agent.
            assert app.screen.query_one(Input).value == st.exchange
            await pilot.press("enter")
            await until(pilot, lambda: view.trail is not None
                        and view.trail.suggestions[sid].state.startswith(
                            ("applied", "checked")), timeout=60)
            row = table.get_row(sid)
            assert str(row[5]).startswith(("applied", "checked"))
        assert wf.wait(timeout=180) == 0
    finally:
        if wf.poll() is None:
            wf.kill()
            wf.wait()
    raw = _raw(pool)
    (approval,) = [r for r in raw if r.get("steering.kind") == "approval"]
    assert approval["steering.id"] == sid
    assert approval["steering.approved_by"].startswith("UserId<")
    applied = [r for r in raw if r.get("steering.kind") == "apply"
               and r.get("steering.id") == sid]
    assert [r["steering.phase"] for r in applied][:2] == ["before", "after"]
    assert applied[1]["steering.result"] == "ok"


MARKED = ("suggestion", "approval", "rejection", "apply", "check", "revert", "escalation",
          "expiry")


async def test_steering_decisions_on_the_timeline(steered: DemoResult) -> None:
    """Each decision is a ◆ in the steering agent's lane; the readout says what it was,
    and enter shows the records of its suggestion."""
    from tui.widgets import timeline_data as td
    from tui.widgets.timeline import TOP, Timeline

    raw = [r for r in _raw(steered.pool_dir) if r.get("steering.kind") in MARKED]
    assert raw
    app = AcademyApp(str(steered.pool_dir))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("l")
        tl = scr.query_one(Timeline)
        await until(pilot, lambda: tl.data is not None and tl.data.marks is not None)
        data = tl.data
        assert data is not None and data.marks is not None
        assert len(data.marks) == len(raw)
        lanes = {int(x) for x in data.marks["lane"]}
        assert len(lanes) == 1
        (lane,) = lanes
        assert data.lanes[lane].cls == "SteeringAgent"
        assert data.lanes[lane].key == raw[0]["academy.agent_id"]
        assert int((data.code == td.STEER).sum()) == len(raw)
        first = raw[0]
        t = float(first["created"]) - scr.model.events().t0
        tl._select_lane(lane)
        tl._put_cursor(t, center=True)
        await pilot.pause(0.1)
        pos = next(p for p, r in enumerate(tl.rows) if r[0] == "lane" and r[1] == lane)
        assert "◆" in tl.render_line(pos - int(tl.scroll_y) + TOP).text
        readout = tl.readout()
        assert f"steering {first['steering.kind']}: {first['message'][:40]}" in readout
        assert "◆steering" in tl.render_line(tl._view()[1] - 1).text  # the legend
        await pilot.press("enter")
        sid = first["steering.id"]
        await until(pilot, lambda: scr.query_one("#tabs").active == "events"
                    and "steering.id" in scr.model.filter_text)
        n_id = sum(1 for r in _raw(steered.pool_dir) if r.get("steering.id") == sid)
        await until(pilot, lambda: len(scr.model.view.rows) == n_id)
