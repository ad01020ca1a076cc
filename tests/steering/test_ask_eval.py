"""The ask eval's built-in part (bench/eval_ask.py): every fact of every question, found."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import eval_ask  # noqa: E402


def test_the_built_in_analyst_scores_100_percent(samples_home: Path,
                                                 tmp_path: Path) -> None:
    demo = eval_ask.make_demo(tmp_path / "demo")
    report = eval_ask.evaluate(samples_home, demo)
    assert len(report.scored) == len(eval_ask.CASES) >= 20
    missed = {s.case.question: [str(f) for f in s.missing] for s in report.scored
              if s.missing}
    assert missed == {}
    assert report.score == report.fact_score == 1.0
    kinds = {s.answer.kind for s in report.scored}
    assert kinds == {"slowest", "time", "errors", "agent_at", "concurrency", "compare",
                     "hung"}
    for s in report.scored:
        assert s.answer.backend == "builtin" and s.answer.notes == [], s.case.question
        assert all(c.valid for c in s.answer.citations)


def test_facts_match_numbers_in_either_unit() -> None:
    fact = eval_ask.S(0.1032)
    assert fact.found("took 0.103 s") and fact.found("took 103 ms")
    assert fact.found("took 103.2 ms") and not fact.found("took 0.11 s")
    assert not fact.found("18268d60 [ev:f03f8efc:103]")
    assert eval_ask.N(6).found("At most 6 action(s)") and not eval_ask.N(6).found("6%")
    assert eval_ask.T("No errors").found("no errors at all")


def test_the_runs_eval_grades_by_what_a_person_concludes(tmp_path: Path) -> None:
    """bench/eval_ask_runs.py on a few of its runs, made here: the built-in analyst gets
    every question right, refuses none, and every number traces to the data; the grader
    itself calls a refusal a refusal and a forbidden claim wrong."""
    import eval_ask_runs as ear
    from ask_runs import make_runs

    runs = make_runs(tmp_path, {"failed", "shutdown", "shift"})
    cases = [c for c in ear.CASES if c.run in runs]
    assert len(cases) >= 12
    graded = ear.evaluate(runs, cases, lambda r, q: ear.ask(r, q, builtin=True))
    assert {g.case.question: g.grade for g in graded if g.grade != "correct"} == {}
    assert sum(g.untraced for g in graded) == 0
    hang = next(g for g in graded if g.case.run == "shutdown"
                and g.case.question == "Did anything hang?")
    fake = ear.Answer(hang.case.question, "Nothing looks hung.", "", "builtin", "builtin",
                      kind="hung")
    truth = ear.Truth(runs["shutdown"])
    assert ear.grade(hang.case, truth, fake, 0.0).grade == "wrong"
    refused = ear.Answer("x", "I cannot tell what kind of question that is.", "", "builtin",
                         "builtin", kind="unknown")
    assert ear.grade(hang.case, truth, refused, 0.0).grade == "refused"
