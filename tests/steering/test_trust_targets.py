"""Who is steered comes from the exchange, not from launch records (SECURITY.md R4): a forged
``Launched agent`` record that maps the slow worker's display id to a healthy worker's uuid
must not move work away from the healthy worker; it is a conflict, recorded and shown, and
that agent is not steered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forge import forge, launched
from steerkit import FAST, kinds, pool_records

from steering.demo.straggler import StragglerOptions, run_straggler
from steering.targets import Claim, conflicts


def test_conflicting_claims() -> None:
    a, b = "3e5c368f-a4cb-4bb5-a66b-fc830dc29558", "6a00a76f-2b12-48d2-a810-ee5784d37053"
    got = conflicts([Claim("AgentId<3e5c368f>", a, "W"), Claim("AgentId<6a00a76f>", b, "W")])
    assert got == {}
    two = conflicts([Claim("AgentId<3e5c368f>", a, "W"), Claim("AgentId<3e5c368f>", b, "W")])
    assert "2 agents claim" in two["AgentId<3e5c368f>"].reason
    wrong = conflicts([Claim("AgentId<3e5c368f>", b, "W")])
    assert "does not start with its digits" in wrong["AgentId<3e5c368f>"].reason
    named = conflicts([Claim("AgentId<worker-1>", b, "W")])  # named agents: no digits
    assert named == {}


def test_a_forged_launch_record_does_not_redirect_a_remedy(tmp_path: Path) -> None:
    forged: dict[str, Any] = {}

    async def on_round(r: int, steer: Any) -> None:
        if r:
            return
        pool = forged["pool"]
        workers = [rec for rec in pool_records(pool) if rec["msg"].startswith("Launched")
                   and "WorkerAgent" in rec["academy.agent"]]
        uids = [rec["args"].split("UUID('")[1][:36] for rec in workers]
        slow, healthy = uids[1], uids[0]
        first = min(float(rec["created"]) for rec in pool_records(pool))
        # Earlier than every real record: the old reader kept the first claim per display id.
        forge(pool, [launched(healthy, "WorkerAgent", display=f"AgentId<{slow[:8]}>",
                              created=first - 1.0)])
        forged.update(slow=slow, healthy=healthy)

    res = run_straggler(StragglerOptions(
        workers=3, rounds=18, task_s=0.03, slow_worker=1, slow_after=5, slow_factor=6.0,
        academy_home=tmp_path, steer="apply", llm=None, steer_options=FAST),
        on_pool=lambda p: forged.update(pool=p), on_round=on_round)
    assert res.ok, res.error
    assert res.slow_uid == forged["slow"]
    assert res.weights is not None
    assert res.weights[forged["healthy"]] == 1.0  # never steered on a forged record's word
    events = res.steering or []
    assert not kinds(events, "apply")
    (conflict,) = kinds(events, "conflict")
    assert conflict["target"] == f"AgentId<{forged['slow'][:8]}>"
    assert sorted(json.loads(conflict["uuids"])) == sorted([forged["slow"], forged["healthy"]])
    sugg = kinds(events, "suggestion")
    assert sugg and all(s.get("action") == "none" for s in sugg)
    assert all("is not steered" in s.get("reason", "") for s in sugg)
