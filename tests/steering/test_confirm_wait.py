"""``demo --scenario straggler --steer confirm`` gives a person time: after its last round
the workflow keeps running rounds while a suggestion waits for approval (up to
``confirm_wait_s``), instead of ending seconds after the suggestion appears."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from steerkit import FAST

from steering.attach import proof_for
from steering.demo.straggler import StragglerOptions, run_straggler


def test_confirm_holds_the_workflow_while_a_suggestion_waits(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = run_straggler(StragglerOptions(
        workers=3, rounds=10, task_s=0.03, slow_after=3, slow_factor=6.0,
        academy_home=tmp_path, steer="confirm", llm=None, steer_options=FAST,
        confirm_wait_s=4.0))
    took = time.monotonic() - t0
    assert res.ok, res.error
    held = [r for r in res.rounds if r.get("held")]
    assert held and len(res.rounds) > 10
    assert took >= 4.0
    assert any(e["kind"] == "suggestion" for e in res.steering or [])


def test_an_approval_during_the_hold_is_applied_and_checked(tmp_path: Path) -> None:
    approved: list[str] = []

    async def on_round(r: int, steer: Any) -> None:
        if approved:
            return
        for s in await steer.suggestions():
            if s["status"] == "pending":
                res = await steer.approve(s["id"], proof_for(s))
                approved.append(res["status"])
                return

    res = run_straggler(StragglerOptions(
        workers=3, rounds=10, task_s=0.03, slow_after=3, slow_factor=6.0,
        academy_home=tmp_path, steer="confirm", llm=None, steer_options=FAST,
        confirm_wait_s=8.0), on_round=on_round)
    assert res.ok, res.error
    assert approved == ["applied"]
    # The rounds went on long enough for the change to be judged.
    assert [e for e in res.steering or [] if e["kind"] == "check"]
