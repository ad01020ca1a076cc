"""A steering agent that fails, gives up or is shut down never stops the workflow: the
workflow's calls go on and its manager closes without an error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from steerkit import FAST, Knobbed, kinds, local_run, pool_records, wait_for

from steering.agent import launch_steering
from steering.demo import DemoOptions, run_demo


async def test_shut_down_mid_run(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, pool):
        knob = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, mode="apply", llm=None,
                                      options=FAST)
        for _ in range(5):
            await knob.step()
        await steer.shutdown()
        n = 0
        for _ in range(20):
            n = await knob.step()
    assert n == 25
    stops = [r for r in pool_records(pool) if r.get("steering.kind") == "stop"]
    assert [r["steering.reason"] for r in stops] == ["shutdown"]


async def test_crashing_steering_agent_gives_up_alone(tmp_path: Path) -> None:
    not_a_pool = tmp_path / "not-a-pool"
    not_a_pool.write_text("a file, not a pool directory\n")
    opts = replace(FAST, max_errors=3, poll_s=0.01, max_pause_s=0.01)
    async with local_run(tmp_path / "home") as (m, cfg, pool):
        knob = await m.launch(Knobbed, log_config=cfg)
        steer = await launch_steering(m, log_config=cfg, pool_dir=not_a_pool, llm=None,
                                      options=opts)

        async def gave_up() -> bool:
            return any(r.get("steering.kind") == "stop" for r in pool_records(pool))

        assert await wait_for(gave_up)
        n = 0
        for _ in range(10):
            n = await knob.step()
    assert n == 10
    recs = [r for r in pool_records(pool) if "steering.kind" in r]
    errors = [r for r in recs if r["steering.kind"] == "error"]
    assert len(errors) == 3 and all(r["levelname"] == "ERROR" for r in errors)
    assert "no pool directory" in errors[0]["message"]
    (stop,) = [r for r in recs if r["steering.kind"] == "stop"]
    assert stop["steering.reason"] == "too many errors"
    assert steer is not None


def test_demo_survives_its_steering_agent(tmp_path: Path) -> None:
    """The demo's steering agent is shut down with the rest; the run stays ok even when
    it is told to watch nothing useful (one iteration, nothing to steer)."""
    res = run_demo(DemoOptions(iterations=2, sleep=0.01, academy_home=tmp_path,
                               steer="confirm", step_timeout=60))
    assert res.ok, res.error
    assert res.steering is not None
    assert kinds(res.steering, "start")
    assert not kinds(res.steering, "error")
