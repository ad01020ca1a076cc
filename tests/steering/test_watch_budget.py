"""The steering watcher's full judgements keep to a share of a core (steering.watch):
on a real run replayed into a pool as it was written, a slowdown is not judged while the
last judgement's CPU is over the budget of the time since, and is judged, whole, once it
is not. Nothing is lost by waiting."""

from __future__ import annotations

import time
from pathlib import Path

from steering.demo import DemoOptions, run_demo
from steering.watch import Watch


def _replay(src: Path, dst: Path, share: float) -> None:
    """Every file of ``src`` written into ``dst`` up to ``share`` of its lines."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.jsonlog")):
        lines = f.read_bytes().splitlines(keepends=True)
        out = dst / f.name
        have = out.read_bytes().count(b"\n") if out.exists() else 0
        upto = int(len(lines) * share)
        if upto > have:
            with open(out, "ab") as fh:
                fh.writelines(lines[have:upto])


def test_judgements_wait_for_their_budget_and_miss_nothing(tmp_path: Path) -> None:
    res = run_demo(DemoOptions(academy_home=tmp_path / "home", iterations=40, sleep=0.02,
                               slow_at=30, slow_factor=6.0, slow_len=4))
    assert res.ok, res.error
    src = Path(res.pool_dir)
    pool = tmp_path / "replay" / src.name
    _replay(src, pool, 0.5)  # before the slowdown
    watch = Watch(pool, hung_every_s=3600.0, budget=1.0)
    # Judged at once (the call the replay cut may be judged hung: its record is old).
    assert watch.step(set(), set(), []).judge_wait_s == 0.0
    # A judgement that took more than FREE_JUDGE_S of CPU makes the next one wait its
    # CPU / budget (a small run's is a few ms: as if it had taken 1 s here).
    watch.budget = 1e-3
    watch._judge_cpu = 1.0
    _replay(src, pool, 1.0)
    waited = watch.step(set(), set(), [])
    assert waited.judge_wait_s == 1000.0 and not waited.new_incidents
    # Once the budget allows it, what arrived meanwhile is judged.
    watch._last_judged = time.time() - 1001
    found = watch.step(set(), set(), [])
    assert "slowdown" in [i.kind for i in found.new_incidents], found.new_incidents


def test_the_observation_says_how_often_a_big_run_is_judged() -> None:
    # What a person reads in the trail (steering.agent.observation): on a run whose full
    # judgements wait for each other, how often they run, from the step's own figure.
    from steering.agent import observation

    st = {"records": 10_000_000, "judged": 710_000, "incidents": 2, "judge_every_s": 48.4}
    template, args = observation(st, 0.04)
    assert template % args == (
        "steering watched 10000000 records, judged 710000 calls, 2 incident(s); a run this "
        "big is judged in full at most every 48 s (to keep to 4% of a core)")
    st["judge_every_s"] = 0.0  # a small run: judged on every poll, nothing to say
    template, args = observation(st, 0.04)
    assert template % args == "steering watched 10000000 records, judged 710000 calls, " \
        "2 incident(s)"
