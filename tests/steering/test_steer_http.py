"""The straggler workload in spawned worker processes on Academy's HTTP exchange, steered
by a steering agent in its own process: it learns the coordinator's declarations from its
class (which the workflow had loaded; the exchange confirms the agent), moves work away
from the slow worker, and writes its audit trail into its own file of the run's pool."""

from __future__ import annotations

import json
from pathlib import Path

from steerkit import assert_calls_audited, kinds

from steering.agent import SteeringOptions
from steering.demo.straggler import StragglerOptions, run_straggler


def test_straggler_process_http_apply(tmp_path: Path) -> None:
    res = run_straggler(StragglerOptions(
        workers=2, rounds=16, task_s=0.05, slow_after=6, slow_factor=6.0,
        executor="process", exchange="http", academy_home=tmp_path, steer="apply",
        llm=None, steer_options=SteeringOptions(poll_s=0.1, max_pause_s=0.3)))
    assert res.ok, res.error
    events = res.steering
    assert events is not None
    (start,) = kinds(events, "start")
    # Where approvals reach it, for the TUI and `steer --approve` (no credentials).
    assert start["exchange"].startswith("http://127.0.0.1:")
    (target,) = kinds(events, "targets", source="class")
    assert target["target_class"] == "CoordinatorAgent"
    # What attaching found, agent by agent: the workers declare nothing to steer (said
    # again when a worker launched after the first look: on a loaded machine one can be).
    said = kinds(events, "targets", source="none")
    assert said and all(r["target_class"] == "WorkerAgent" for r in said)
    none = said[-1]
    assert len(json.loads(none["agents"])) == 2
    assert "not steerable: WorkerAgent (2 agent(s)" in none["message"]
    applied = kinds(events, "apply", phase="after", result="ok")
    assert applied
    assert applied[0]["action"] == "set_weight"
    args = json.loads(applied[0]["args"])
    assert args == {"agent": res.slow_uid, "weight": 0.25}
    assert res.weights is not None and res.weights[res.slow_uid] < 1.0
    assert min(res.weights, key=lambda u: res.weights[u]) == res.slow_uid  # type: ignore[index]

    recs = assert_calls_audited(res.pool_dir)
    files = {r["processName"] + r["process"] for r in recs}
    assert len(files) == 1  # one steering process wrote them all
    driver = {r["process"] for r in _records(res.pool_dir) if r["msg"].startswith("round")}
    assert {r["process"] for r in recs}.isdisjoint(driver)


def _records(pool: Path) -> list[dict[str, str]]:
    out = []
    for f in pool.glob("*.jsonlog"):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out
