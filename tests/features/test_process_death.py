"""A worker process SIGKILLed mid-call, on a real academy-py run (spawned processes, Academy's
HTTP exchange), read as a person reads it (issue 13): the agents of that process crashed
(not "running"), the call it was executing ends with it, and the time the caller then
waited is stalled on a lost agent, not idle or messaging."""

from __future__ import annotations

from pathlib import Path

import pytest
from ask_runs import crash_run

from features import fmt, render, report
from features.run import Run


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The pool of a run whose generator's process was killed while it executed a call,
    and the kill time."""
    return crash_run(tmp_path_factory.mktemp("killed"))


def test_the_killed_process_agents_crashed_and_its_call_ended_there(
        killed: tuple[Path, float]) -> None:
    pool, t_kill = killed
    run = Run(pool)
    run.load(workers=1)
    ag = run.agents()
    rows = {c: i for i, c in enumerate(ag["class"].tolist())}
    for cls in ("FibonacciLauncher", "GeneratorAgent"):  # both lived in that process
        i = rows[cls]
        assert ag["status"][i] == "crashed"
        assert "without a closing record" in ag["crash_reason"][i]
        assert ag["t_gone"][i] <= t_kill + 1.0
    # The call being executed when the process died is not "executing" after that.
    times, counts = run.concurrency("executing")
    gone = float(ag["t_gone"][rows["GeneratorAgent"]])
    after = times >= gone
    assert after.any() and (counts[after] == 0).all()
    assert run.concurrency("agents")[1][-1] == 0


def test_the_report_says_stalled_and_crashed(killed: tuple[Path, float]) -> None:
    pool, _ = killed
    run = Run(pool)
    run.load(workers=1)
    tb = run.where_time_went(expected_s=1.0)
    assert tb.seconds["stalled"] > 1.0  # the caller's 3 s wait on the dead agent
    assert tb.seconds["idle"] < 0.5
    (st,) = [s for s in tb.stalls if s["class"] == "GeneratorAgent"]
    assert st["status"] == "crashed" and st["calls"] >= 1
    text = render.render_text(report.build(run, expected_s=1.0, anomalies=False))
    assert "on agents that had crashed or never started" in text
    assert (f"stalled {fmt.fmt_s(st['stalled_s'])}: " in text
            and f"GeneratorAgent {st['agent_id']}, crashed (its process's log stops "
            "without a closing record (killed or crashed))" in text)
    assert "crashed" in next(ln for ln in text.splitlines() if "GeneratorAgent" in ln
                             and "AgentId" in ln)
