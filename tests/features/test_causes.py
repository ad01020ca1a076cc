"""The excess named by its causes (issue 13), on real academy-py runs: one slow call among
normal ones is named, with its numbers and evidence; a per-call expectation compares like
with like; ordinary messaging is not a cause; an agent waited for is named with its
process."""

from __future__ import annotations

import re

import pytest

from features import fmt, render, report
from features.causes import causes, per_call
from features.run import Run
from tui.cli import main


@pytest.fixture(scope="module")
def one_slow(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """20 x (0.05 s in the agent + 0.05 s in the driver), call 10 takes 20x as long."""
    from steering.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(iterations=20, sleep=0.05, slow_at=10, slow_factor=20,
                               academy_home=tmp_path_factory.mktemp("slow")))
    assert res.ok, res.error
    run = Run(res.pool_dir)
    run.load(workers=1)
    return run


def test_one_slow_call_is_the_named_cause(one_slow: Run) -> None:
    run = one_slow
    acts = run.actions()
    slow = acts.sort("exec_s", descending=True).row(0)
    assert slow["exec_s"] > 0.8  # the injected 1.0 s call (20 x 0.05 s)
    text = render.render_text(report.build(run, expected_s=2.0))
    para = next(ln for ln in text.splitlines() if ln.startswith("The run took"))
    tail = para.split("Of the excess of", 1)[1]
    # Named first, by action, tag and agent, with how many times its median, and cited.
    first = tail.split(": ", 1)[1].split(";")[0]
    assert first.startswith("slow call +")
    assert f"next_item {slow['tag'][:8]} on {slow['agent_id']} took " in first
    assert re.search(r"\d+\.\dx its median", first)
    assert re.search(r"\[[0-9a-f]{8}:\d+\]", first)
    # Ordinary messaging is not listed as a cause.
    assert "messaging" not in tail.split(".")[0]


def test_without_the_detector_the_slow_call_is_still_named(one_slow: Run) -> None:
    tb = one_slow.where_time_went(expected_s=2.0)
    found = causes(tb, one_slow)
    slow = [c for c in found if c.kind == "slow call"]
    # The injected call first (a loaded machine may add one a little past 3x its median).
    assert slow and slow[0].seconds > 0.7 and slow[0].row >= 0
    assert all(c.seconds < slow[0].seconds / 3 for c in slow[1:])


def test_an_expected_time_per_call(one_slow: Run, capsys: pytest.CaptureFixture[str]) -> None:
    (c,) = per_call(one_slow, {"next_item": 0.05})
    assert c.kind == "expected per call" and 0.8 < c.seconds < 2.0
    assert c.text.startswith("next_item: 20 calls took ")
    assert "against 50.0 ms expected" in c.text
    assert main(["report", str(one_slow.path), "--expect", "2s", "--expect-call",
                 "next_item=50ms", "--no-anomalies"]) == 0
    out = capsys.readouterr().out
    assert "Expected per call\n=================\nnext_item: 20 calls took" in out
    assert main(["report", str(one_slow.path), "--expect-call", "next_item"]) == 2
    assert "cannot read --expect-call 'next_item'" in capsys.readouterr().err


def test_nothing_to_name_says_so(one_slow: Run) -> None:
    tb = one_slow.where_time_went(expected_s=one_slow.where_time_went().wall_s - 0.001)
    text = report.answer(tb, [])
    assert "Nothing stands out in the excess" in text


def test_the_agent_waited_for_is_named_with_its_process(sample) -> None:  # type: ignore[no-untyped-def]
    run = Run(sample("redis"))  # process pool: the launcher's worker spawns first
    run.load(workers=1)
    tb = run.where_time_went(expected_s=3.2)
    (su,) = tb.startups[:1]
    text = report.answer(tb, causes(tb, run))
    assert f"agent start-up {fmt.fmt_s(su['waited_s'])}: FibonacciLauncher " in text
    assert "in a worker process" in text and "messaging" not in \
        text.split("Of the excess")[1].split("; smaller")[0].split(".")[0]
