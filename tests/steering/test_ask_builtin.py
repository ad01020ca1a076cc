"""The built-in analyst on real runs: the kinds of question the eval does not cover
(bench/eval_ask.py scores the rest), fallbacks and its own honesty. Expected facts come
from the raw .jsonlog lines, read with json."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from features.fmt import fmt_s
from features.run import Run
from steering.ask import NO_LLM, Answer, ask
from steering.ask.analyst import CAPABILITIES
from steering.demo import DemoOptions, run_demo


def load(pool: Path) -> Run:
    run = Run(pool)
    run.load()
    return run


def raw(pool: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        for i, line in enumerate(f.read_text().splitlines(), start=1):
            rec = json.loads(line)
            rec["@file"], rec["@line"] = f.name, i
            out.append(rec)
    return out


def wall(pool: Path) -> float:
    times = [float(r["created"]) for r in raw(pool)]
    return max(times) - min(times)


def checked(a: Answer) -> Answer:
    """Every built-in answer: says who answered, cites only real things, invents nothing."""
    assert a.backend == "builtin" and a.mode == "builtin"
    assert "(Answered by the built-in analyst: " in a.text
    assert a.citations and all(c.valid for c in a.citations), [c.reason for c in a.citations]
    assert all(n.supported for n in a.numbers), [n.text for n in a.numbers if not n.supported]
    assert a.notes == []
    return a


@pytest.fixture(scope="module")
def slowed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Iterations 12 and 13 of 24 sleep eight times longer."""
    res = run_demo(DemoOptions(academy_home=tmp_path_factory.mktemp("slowed"), iterations=24,
                               sleep=0.02, slow_at=12, slow_len=2, slow_factor=8.0))
    assert res.ok, res.error
    return load(Path(res.pool_dir))


def test_slowdowns_name_the_slowed_calls(slowed: Run) -> None:
    a = checked(ask(slowed, "Were there any slowdowns in this run?"))
    calls: dict[str, dict[str, float]] = {}
    for r in raw(slowed.path):
        if r.get("academy.action") == "next_item" and "academy.action_state" in r:
            calls.setdefault(r["academy.action_tag"], {})[r["academy.action_state"]] = \
                float(r["created"])
    slow = sorted(calls, key=lambda t: calls[t]["success"] - calls[t]["start"])[-2:]
    assert a.kind == "slowest"
    first = a.text.splitlines()[0]
    assert first.startswith("1 slowdown found:"), a.text
    incident = a.text.splitlines()[1]
    assert "slow calls of GeneratorAgent.next_item" in incident
    assert all(f"[act:{t[:8]}]" in incident for t in slow)


def test_hung_names_the_calls_a_killed_run_never_finished(sample: Callable[[str], Path],
                                                         tmp_path: Path) -> None:
    src = sample("thread")
    pool = tmp_path / "logs" / src.name
    pool.mkdir(parents=True)
    (f,) = src.glob("*.jsonlog")
    lines = f.read_text().splitlines(keepends=True)
    # Cut the file just after an action started: the process "died" mid-call.
    cut = next(i for i, line in enumerate(lines) if i > 150
               and json.loads(line).get("academy.action_state") == "execute_start")
    (pool / f.name).write_text("".join(lines[: cut + 1]))
    os.utime(pool / f.name, (1e9, 1e9))  # long ago: not live
    kept = [json.loads(line) for line in lines[: cut + 1]]
    states: dict[str, set[str]] = {}
    for r in kept:
        if "academy.action_state" in r:
            states.setdefault(r["academy.action_tag"], set()).add(r["academy.action_state"])
    open_tags = [t for t, s in states.items() if "success" not in s]
    assert len(open_tags) == 1
    a = checked(ask(load(pool), "Is anything stuck?"))
    assert a.kind == "hung"
    assert "1 call never completed" in a.text and f"[act:{open_tags[0][:8]}]" in a.text
    assert "(orphaned, since" in a.text
    # Its process's log stops mid-call: the agents in it crashed (issue 13), not "running".
    assert "Crashed agents: " in a.text
    assert f"Processes whose log just stops (no clean close): {f.name[:8]}" in a.text


def test_compare_with_a_run_given_by_the_caller(sample: Callable[[str], Path]) -> None:
    this, other = load(sample("thread")), load(sample("http"))
    a = checked(ask(this, "Is this run faster?", others=[other]))
    assert a.kind == "compare"  # no keyword, but another run was given
    assert a.text.startswith(f"A is the other run {other.uuid[:8]}, B is this run "
                             f"{this.uuid[:8]}. B took {fmt_s(wall(this.path))} against "
                             f"{fmt_s(wall(other.path))} for A")
    assert a.steps[0]["tool"] == "diff_run" and a.steps[0]["ok"]


def test_the_expected_time_can_come_from_the_caller(sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    w = wall(run.path)
    a = checked(ask(run, "Why?", expected_s=2.0))
    assert a.kind == "time"
    assert a.text.startswith(f"The run took {fmt_s(w)} against {fmt_s(2.0)} expected "
                             f"(+{fmt_s(w - 2.0)}")


@pytest.mark.parametrize("part", [0.25, 4.0])
def test_both_ways_of_telling_the_excess_invent_no_number(sample: Callable[[str], Path],
                                                          part: float) -> None:
    """An excess smaller than the overhead (part 0.25) and one bigger (part 4): each
    number of the answer is one the data holds."""
    run = load(sample("thread"))
    s = run.where_time_went().seconds
    overhead = s["startup"] + s["shutdown"] + s["queue"] + s["reply"] + s["idle"]
    a = checked(ask(run, "Where did the time go?",
                    expected_s=wall(run.path) - overhead * part))
    assert a.kind == "time"
    assert ("more than the excess" in a.text) == (part < 1)


def test_an_unknown_question_gets_the_list_of_what_it_can_answer(
        sample: Callable[[str], Path]) -> None:
    a = checked(ask(load(sample("thread")), "Tell me a joke about agents"))
    assert a.kind == "unknown"
    assert CAPABILITIES in a.text and "About this run: The run took" in a.text


def test_an_agent_it_cannot_find_is_answered_with_the_agents_there(
        sample: Callable[[str], Path]) -> None:
    a = checked(ask(load(sample("thread")), "What was the planner doing at 1 s?"))
    assert a.kind == "agent_at"
    assert a.text.startswith("Tell me an agent")
    assert "[agent:AgentId<3443a474>] (FibonacciLauncher)" in a.text


def test_an_agent_after_its_shutdown(sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    a = checked(ask(run, "What was AgentId<2c1ec60a> doing at 99 s?"))
    assert "after the run's last record" in a.text and "shut down" in a.text


def test_without_an_llm_it_says_why(sample: Callable[[str], Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run = load(sample("thread"))
    a = checked(ask(run, "Any errors?"))
    assert a.fallback_reason == NO_LLM and f"built-in analyst: {NO_LLM}." in a.text
    monkeypatch.setenv("ACADEMY_TUI_LLM_MODE", "chatty")
    a = checked(ask(run, "Any errors?"))
    assert a.fallback_reason is not None
    assert a.fallback_reason.startswith("the LLM settings are unusable: llm mode must be")
    a = checked(ask(run, "Any errors?", builtin=True))
    assert a.fallback_reason == "the built-in analyst was asked for"


def test_an_empty_question_is_refused(sample: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="empty question"):
        ask(load(sample("thread")), "  \n ")


def test_a_run_copied_elsewhere_still_answers(sample: Callable[[str], Path],
                                              tmp_path: Path) -> None:
    pool = Path(shutil.copytree(sample("redis"), tmp_path / "copy"))
    a = checked(ask(load(pool), "What were the slowest actions?"))
    assert a.text.startswith("The slowest action was calc_fibs")
