"""The steering agent end to end on threads and the local exchange: suggest, confirm
(approved, rejected, never approved), apply with its check, and the revert when a change
did not help. Real academy-py runs; the pool is read back to check the audit trail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from steerkit import (
    FAST,
    Knobbed,
    assert_calls_audited,
    drive_until,
    kinds,
    local_run,
    pool_records,
    steering_calls,
    wait_for,
)

from steering.agent import launch_steering
from steering.attach import proof_for
from steering.demo import DemoOptions, run_demo


async def test_suggest_records_without_calling(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        knob = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, llm=None, options=FAST)

        async def suggested() -> bool:
            return bool(kinds(await steer.history("suggestion"), "suggestion"))

        await drive_until(knob, suggested)
        events = await steer.history()
    uid = str(knob.agent_id.uid)
    (sugg, *_) = kinds(events, "suggestion")
    assert sugg["mode"] == "suggest"
    assert sugg["action"] == "set_knob"
    assert json.loads(sugg["args"]) == {"knob": 0.5}
    assert sugg["target_uuid"] == uid
    assert sugg["source"] == "template"
    assert not kinds(events, "apply")
    # Reading the knob is all it did to the workflow agent.
    assert {name for name, _ in steering_calls(uid)} <= {"get_knob"}
    recs = assert_calls_audited(pool)
    assert {r["steering.kind"] for r in recs} >= {"start", "targets", "incident",
                                                   "suggestion"}
    (incident, *_) = [r for r in recs if r["steering.kind"] == "incident"]
    assert incident["steering.group"] == "Knobbed.step"
    assert incident["levelname"] == "WARNING"


async def test_apply_checks_and_keeps_a_change_that_helps(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        knob = await m.launch(Knobbed, kwargs={"slow_from": 12, "knob_helps": True},
                              log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, mode="apply", llm=None,
                                      options=FAST)

        async def checked() -> bool:
            return bool(kinds(await steer.history("check"), "check"))

        await drive_until(knob, checked)
        events = await steer.history()
        final = await knob.get_knob()
    uid = str(knob.agent_id.uid)
    sets = [kw["knob"] for name, kw in steering_calls(uid) if name == "set_knob"]
    assert sets and sets[0] == 0.5
    assert all(0.1 <= k <= 1.0 for k in sets)
    (check, *_) = kinds(events, "check")
    assert check["result"] in ("resolved", "improved")
    assert final < 1.0
    assert not kinds(events, "revert")
    recs = assert_calls_audited(pool)
    applied = [r for r in recs if r["steering.kind"] == "apply"]
    assert [r["steering.phase"] for r in applied][:2] == ["before", "after"]
    assert applied[1]["steering.result"] == "ok"
    assert float(applied[0]["steering.previous"]) == 1.0


async def test_apply_reverts_a_change_that_did_not_help(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        knob = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, mode="apply", llm=None,
                                      options=FAST)

        async def escalated() -> bool:
            return bool(kinds(await steer.history("escalation"), "escalation"))

        await drive_until(knob, escalated)
        events = await steer.history()
        final = await knob.get_knob()
    uid = str(knob.agent_id.uid)
    assert [kw["knob"] for name, kw in steering_calls(uid) if name == "set_knob"] == \
        [0.5, 1.0], [e["message"] for e in events]
    assert final == 1.0
    (check,) = kinds(events, "check")
    assert check["result"] == "not_improved"
    assert [e["phase"] for e in kinds(events, "revert")] == ["before", "after"]
    assert "reverted" in kinds(events, "escalation")[0]["reason"]
    assert_calls_audited(pool)


async def test_confirm_applies_only_what_is_approved(tmp_path: Path) -> None:
    opts = replace(FAST, approval_timeout_s=2.0)
    async with local_run(tmp_path) as (m, cfg, pool):
        approved = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        rejected = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        ignored = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, mode="confirm", llm=None,
                                      options=opts)

        def pending(h: Any) -> Callable[[], Awaitable[bool]]:
            async def done() -> bool:
                return any(s["status"] == "pending" and s["target"] == str(h.agent_id)
                           for s in await steer.suggestions())
            return done

        await asyncio.gather(*(drive_until(h, pending(h), every=2)
                               for h in (approved, rejected, ignored)))
        by_target = {s["target"]: s for s in await steer.suggestions()}
        s_ok = by_target[str(approved.agent_id)]
        s_no = by_target[str(rejected.agent_id)]
        s_none = by_target[str(ignored.agent_id)]
        assert (await steer.approve("s999"))["status"] == "unknown"
        # Without a proof from the session's user nothing happens (trust-boundary issue).
        assert (await steer.approve(s_ok["id"]))["denied"]
        ok = await steer.approve(s_ok["id"], proof_for(s_ok))
        no = await steer.reject(s_no["id"], "not now", proof_for(s_no, "reject"))
        # no second chance
        assert (await steer.approve(s_no["id"], proof_for(s_no)))["status"] == "rejected"

        async def expired() -> bool:
            return bool(kinds(await steer.history("expiry"), "expiry"))

        assert await wait_for(expired)
        for h in (rejected, ignored):  # still slow: no new suggestion, no call
            for _ in range(5):
                await h.step()
        events = await steer.history()
    assert ok["status"] == "applied"
    assert no["status"] == "rejected"
    assert [kw for n, kw in steering_calls(str(approved.agent_id.uid)) if n == "set_knob"] \
        == [{"knob": 0.5}]
    for h in (rejected, ignored):
        assert "set_knob" not in {n for n, _ in steering_calls(str(h.agent_id.uid))}
    (approval,) = kinds(events, "approval")
    assert approval["id"] == s_ok["id"]
    assert approval["approved_by"].startswith("UserId<")
    (rejection,) = kinds(events, "rejection")
    assert rejection["reason"] == "not now"
    assert [e["id"] for e in kinds(events, "expiry")] == [s_none["id"]]
    assert_calls_audited(pool)


def test_fib_demo_with_steering_apply(tmp_path: Path) -> None:
    """The fibonacci workflow's sleep is steerable: the agent halves it."""
    res = run_demo(DemoOptions(iterations=30, sleep=0.02, slow_at=12, slow_factor=6,
                               slow_len=30, academy_home=tmp_path, steer="apply",
                               step_timeout=60))
    assert res.ok, res.error
    assert res.steering is not None
    applied = [e for e in res.steering if e["kind"] == "apply" and e["phase"] == "after"]
    assert applied and applied[0]["result"] == "ok"
    assert applied[0]["action"] == "set_sleep"
    assert json.loads(applied[0]["args"]) == {"seconds": pytest.approx(0.01)}
    assert_calls_audited(res.pool_dir)
    # The generator logged the change itself, next to the steering agent's records.
    assert any(r.get("msg", "").startswith("sleep changed") for r in pool_records(res.pool_dir))
    # The report shows the trail, counted from the pool by kind.
    from features.render import render_text, to_json
    from features.report import build
    from features.run import Run

    run = Run(res.pool_dir)
    run.load()
    secs = build(run)
    steer = to_json(secs)["steering"]
    raw = [r for r in pool_records(res.pool_dir) if r.get("name") == "academy_tui.steering"]
    by_kind: dict[str, int] = {}
    for r in raw:
        by_kind[r["steering.kind"]] = by_kind.get(r["steering.kind"], 0) + 1
    assert steer["data"]["by_kind"] == by_kind and by_kind["apply"] >= 2
    assert "Steering\n" in render_text(secs)
