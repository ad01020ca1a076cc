"""The Steering tab under a forged pool (SECURITY.md R1, R6): a forged ``s1`` is never merged
with the real one, is listed apart as not counted, and ``y`` offers only the exchange of the
user's own session file."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from forge import forge, forged_steering, record, steering_session, suggest
from textual.widgets import DataTable, Input, Static

from tests.tui.test_app import SIZE, open_run, until
from tui.app import AcademyApp
from tui.widgets.prompt import PromptScreen
from tui.widgets.steering import SteeringView


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_forged_suggestion_is_not_merged_nor_approvable(tmp_path: Path) -> None:
    real, fake = f"http://127.0.0.1:{_port()}", f"http://127.0.0.1:{_port()}"
    with steering_session(tmp_path, exchange=real) as (pool, session, audit):
        audit.emit("start", "steering", exchange=real)
        suggest(audit)
    forge(pool, forged_steering(fake, "9d0c7b1e-3333-4c1b-9d0e-0123456789ab", action="x"))
    forge(pool, [record("suggestion s1: shutdown", **{
        "steering.kind": "suggestion", "steering.id": "s1", "steering.session":
        session.agent_uuid, "steering.action": "shutdown", "steering.args": "{}",
        "steering.mode": "confirm", "steering.seq": "3", "steering.sig": "f" * 64})])
    app = AcademyApp(str(pool))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_run(pilot, app)
        await pilot.press("s")
        view = scr.query_one(SteeringView)
        table = view.query_one(DataTable)
        await until(pilot, lambda: view.trail is not None and table.row_count == 1)
        assert view.trail is not None
        (sug,) = view.trail.suggestions.values()
        assert (sug.action, json.loads(sug.args), sug.state) == ("set_knob", {"knob": 0.5},
                                                                 "pending")
        assert str(table.get_row_at(0)[3]) == "set_knob"
        summary = str(view.query_one("#steering-summary", Static).render())
        assert "are not a steering agent's own and are not counted" in summary
        body = str(view.query_one("#steering-records", Static).render())
        assert "Not counted (3)" in body and "signature" in body
        # The pending suggestion is under the cursor as it arrives: y acts on it at once.
        assert view.selected() is not None
        table.focus()
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert app.screen.query_one(Input).value == real  # never the forged address
        await pilot.press("escape")
