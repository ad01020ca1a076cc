"""The steering agent and changes of level, end to end on threads and the local exchange:
a change that only halves a lasting slowdown is "improved", not "resolved" (the check
compares with what a call took before the incident), and the speed-up it made is named
in the run's anomalies with the verified steering record as what happened around it."""

from __future__ import annotations

import re
from pathlib import Path

from steerkit import FAST, Knobbed, assert_calls_audited, drive_until, kinds, local_run

from features.detect import detect
from features.run import Run
from steering.agent import launch_steering
from steering.attach import proof_for
from steering.policy import judge
from steering.watch import CheckData

BASE, FACTOR, SLOW_FROM = 0.05, 4.8, 10


async def test_halving_a_lasting_slowdown_is_improved_and_named_as_a_speedup(
        tmp_path: Path) -> None:
    """Calls at 50 ms, 4.8x slower from call 10 for good; the suggestion (halve the knob)
    is approved only after 8 slow calls, so the run holds a level shift up and, after the
    change, a speed-up to 2.4x: under the detector's 2.5x for one call, but not back to
    normal."""
    async with local_run(tmp_path) as (m, cfg, pool):
        knob = await m.launch(Knobbed, kwargs={"base": BASE, "slow_from": SLOW_FROM,
                                               "slow_factor": FACTOR, "knob_helps": True},
                              log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, mode="confirm", llm=None,
                                      options=FAST)

        async def pending() -> bool:
            return any(s["status"] == "pending" for s in await steer.suggestions())

        await drive_until(knob, pending)
        for _ in range(8):  # a person takes a while: the slowdown lasts
            await knob.step()
        [sugg] = [s for s in await steer.suggestions() if s["status"] == "pending"]
        ok = await steer.approve(sugg["id"], proof_for(sugg))
        assert ok["status"] == "applied", ok

        async def checked() -> bool:
            return bool(kinds(await steer.history("check"), "check"))

        await drive_until(knob, checked)
        for _ in range(8):  # enough calls at the new level to call it one
            await knob.step()
        events = await steer.history()
    (check, *_) = kinds(events, "check")
    assert check["result"] == "improved", check
    m_ = re.match(r"(\d+) later call\(s\) on the slow agent\(s\): median (\d\.\d)x the "
                  r"(0\.\d{3})s before the incident, down from (\d\.\d)x", check["reason"])
    assert m_ is not None, check["reason"]
    assert 2.0 <= float(m_.group(2)) <= 3.2 and float(m_.group(3)) < 0.07
    assert_calls_audited(pool)

    run = Run(pool)
    run.load()
    res = detect(run)
    by_kind = {i.kind: i for i in res.incidents}
    shift, sp = by_kind["level_shift"], by_kind["speedup"]
    assert shift.detail["at_call"] == SLOW_FROM
    assert re.search(r"\(call 10\) Knobbed\.step takes 0\.2\d s, [45]\.\dx its earlier ",
                     shift.describe()), shift.describe()
    assert re.search(r"Knobbed\.step takes 0\.1\d s, \d\.\dx faster than its earlier 0\.2\d s "
                     r"\(a speed-up over \d+ calls\); around it: steering s1 applied "
                     r"set_knob\(knob=0\.5\) on AgentId<[0-9a-f]{8}> at \+\d+\.\d{3} s "
                     r"\[[0-9a-f]{8}:\d+\]", sp.describe()), sp.describe()
    # The steering agent's own call is said once, as its change; the agent's calls after
    # it are not slow against the level before the speed-up.
    assert not any("Knobbed.set_knob(" in c for c in sp.cause)


def test_resolved_means_back_near_normal() -> None:
    """Against what a call took before the incident: within 1.5x is resolved; a 4.8x
    slowdown brought to 2.4x (under the detector's 2.5x for one call) is improved."""
    base = 0.05
    assert judge(CheckData([0.06, 0.07, 0.065], [], 0, 0, base), False, 2.5, 4.8)[0] == \
        "resolved"
    verdict, why = judge(CheckData([0.12, 0.12, 0.121], [], 0, 0, base), False, 2.5, 4.8)
    assert verdict == "improved"
    assert why == ("3 later call(s) on the slow agent(s): median 2.4x the 0.050s before the "
                   "incident, down from 4.8x")
    # Without the incident's ratio: below the detector's threshold is improved, not more.
    assert judge(CheckData([0.12] * 3, [], 0, 0, base), False, 2.5)[0] == "improved"
    assert judge(CheckData([0.2] * 3, [], 0, 0, base), False, 2.5)[0] == "not_improved"
