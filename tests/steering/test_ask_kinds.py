"""The questions people ask most, answered by the built-in analyst (issue 14): counts with
their nouns, what happened, anything abnormal, crashes with when, what steering did, what
changed, how long an action takes; routed by meaning, on paraphrases. Facts come from the
raw .jsonlog lines (read with json) or from the runs the tests make."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from steerkit import FAST
from test_ask_builtin import checked, load, raw

from steering.ask import ask
from steering.ask.questions import classify

PARAPHRASES = {
    "counts": ["How many agents were launched?", "how many actions succeeded",
               "What is the number of processes?", "How many workers were there?",
               "total number of calls?"],
    "story": ["What happened to this run?", "Give me a summary of the run",
              "Tell me about this run", "what went on here?", "overview please"],
    "abnormal": ["Was anything abnormal?", "Is there anything unusual?",
                 "Does the run look healthy?", "anything weird going on?",
                 "Did anything out of the ordinary happen?"],
    "steering": ["What did the steering agent change, and when?",
                 "Which suggestions did steering make?", "Was anything approved?",
                 "what remedies were applied"],
    "changes": ["Why are the first next_item calls slower than the later ones?",
                "What changed at +3 s?", "Did next_item get faster?",
                "Is there a level shift or drift?", "did the calls speed up?"],
    "hung": ["Did anything hang?", "Is anything stuck?", "are calls still waiting?"],
    "errors": ["Why did this run fail?", "Which agent crashed and when?",
               "Were there exceptions?"],
}


@pytest.mark.parametrize(("kind", "question"),
                         [(k, q) for k, qs in PARAPHRASES.items() for q in qs])
def test_routing_by_meaning(kind: str, question: str) -> None:
    assert classify(question) == kind


def test_how_long_an_action_takes_needs_its_name(sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    assert classify("How long does next_item usually take?", run) == "durations"
    assert classify("what is the typical next_item time", run) == "durations"
    assert classify("How long did the run take?", run) == "time"
    a = checked(ask(run, "How long does next_item usually take?"))
    n = sum(1 for r in raw(run.path) if r.get("academy.action") == "next_item"
            and r.get("academy.action_state") == "success")
    assert a.kind == "durations"
    assert a.text.startswith(f"next_item: {n} calls, typically ")
    assert re.search(r"\(median\), [\d.]+ (ms|s) at p95, [\d.]+ (ms|s) at most \[act:", a.text)


def test_counts_come_with_their_nouns(sample: Callable[[str], Path]) -> None:
    pool = sample("pairs")  # 16 agents in 8 worker processes
    recs = raw(pool)
    launched = {r["academy.agent_id"] for r in recs if r["msg"].startswith("Launched agent")}
    run = load(pool)
    a = checked(ask(run, "How many agents were launched?"))
    assert a.kind == "counts"
    assert a.text.startswith(f"{len(launched)} agents launched ({len(launched)} agents seen "
                             f"in all: {len(launched)} shut down)")
    calls = {r["academy.action_tag"] for r in recs
             if r.get("academy.action_state") == "success"}
    a = checked(ask(run, "How many actions succeeded?"))
    assert a.text.startswith(f"{len(calls)} calls of actions: {len(calls)} calls succeeded.")
    a = checked(ask(run, "How many records are there?"))
    assert a.text.startswith(f"{len(recs)} records in 9 files.")


def test_what_happened_and_anything_abnormal(sample: Callable[[str], Path]) -> None:
    run = load(sample("exception"))
    a = checked(ask(run, "What happened to this run?"))
    assert a.kind == "story"
    assert a.text.startswith("The run failed (")
    assert "calls of actions:" in a.text and " raised" in a.text
    a = checked(ask(run, "Was anything abnormal?"))
    assert a.kind == "abnormal" and a.text.startswith("Yes: ")
    assert "error record" in a.text
    clean = load(sample("thread"))
    n = len({r["academy.action_tag"] for r in raw(clean.path)
             if r.get("academy.action_state") == "success"})
    a = checked(ask(clean, "Was anything abnormal?"))
    assert a.text.startswith(f"Nothing abnormal: {n} calls checked for slowdowns, hangs")


def test_a_failed_call_is_given_its_raise_time(sample: Callable[[str], Path]) -> None:
    pool = sample("exception")
    recs = raw(pool)
    start = min(float(r["created"]) for r in recs)
    t_raise = next(float(r["created"]) for r in recs
                   if r.get("academy.action_state") == "exception")
    a = checked(ask(load(pool), "Why did this run fail?"))
    assert f"raised at +{t_raise - start:.3f} s" in a.text


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steering.demo.straggler import StragglerOptions, run_straggler

    res = run_straggler(StragglerOptions(
        workers=3, rounds=14, task_s=0.03, slow_after=5, slow_factor=6.0,
        academy_home=tmp_path_factory.mktemp("steered"), steer="apply", llm=None,
        steer_options=FAST))
    assert res.ok, res.error
    return res.pool_dir


def test_what_steering_did_and_when(steered: Path) -> None:
    recs = [r for r in raw(steered) if r.get("name") == "academy_tui.steering"]
    applied = [r for r in recs if r.get("steering.kind") == "apply"
               and r.get("steering.phase") == "after" and r.get("steering.result") == "ok"]
    assert applied
    a = checked(ask(load(steered), "What did the steering agent change, and when?"))
    assert a.kind == "steering"
    sugg = [r for r in recs if r.get("steering.kind") == "suggestion"]
    assert a.text.startswith(f"The steering agent made {len(sugg)} suggestion")
    first = applied[0]
    assert f"{first['steering.id']} at +" in a.text and "set_weight(" in a.text
    assert ", applied at +" in a.text
    assert "Steering agent " in a.text and " is stopped" in a.text


def test_what_changed_names_a_level_shift_and_its_cause(tmp_path: Path) -> None:
    from steering.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(iterations=30, sleep=0.05, slow_at=12, slow_factor=5,
                               slow_len=40, academy_home=tmp_path))
    assert res.ok, res.error
    a = checked(ask(load(res.pool_dir), "Why are the later next_item calls slower than the "
                                        "first ones?"))
    assert a.kind == "changes"
    assert re.search(r"from \+[\d.]+ s \(call 1[0-4]\) GeneratorAgent\.next_item takes", a.text)
