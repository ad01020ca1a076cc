"""One pass through the code (issue 14): a question is read once, in
:func:`steering.ask.engine.ask`, into a :class:`~steering.ask.questions.Reading`; the
analyst, the model paths and the fallbacks take their kind, times, agents and actions from
it and never read the text again."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from test_ask_builtin import checked, load

from steering.ask import analyst, builtin_answer
from steering.ask.questions import Reading, read
from steering.ask.tools import Toolbox

ASK = Path(__file__).resolve().parents[2] / "steering" / "ask"
READERS = {"classify", "expected_in", "time_in", "agent_in", "run_refs_in", "read"}
"""The functions that read a question's text."""


def _calls_to_readers(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) else "questions" if name in READERS else ""
            if name in READERS and owner == "questions":
                out.append(f"{path.name}:{node.lineno} {name}")
    return out


def test_only_the_engine_reads_the_question() -> None:
    calls = [c for p in sorted(ASK.glob("*.py")) if p.name != "questions.py"
             for c in _calls_to_readers(p)]
    assert calls and all(c.startswith("engine.py:") and c.endswith(" read") for c in calls), \
        calls
    # ask() reads once; builtin_answer and kinds_answer read only when called with text.
    assert len(calls) == 3, calls


def test_the_analyst_answers_from_the_reading_not_the_words(
        sample: Callable[[str], Path]) -> None:
    """The words name no agent and no time; the reading does (as after a model's route)."""
    run = load(sample("thread"))
    r = Reading("what was it doing then?", "agent_at", time_s=1.0,
                agent="AgentId<2c1ec60a>")
    body, kind = analyst.answer(Toolbox(run), r)
    assert kind == "agent_at"
    assert body.startswith("At +1.000 s, AgentId<2c1ec60a>"), body
    # The same words without the reading's arguments: the analyst asks for them.
    body, _ = analyst.answer(Toolbox(run), Reading(r.text, "agent_at"))
    assert body.startswith("Tell me a time")


def test_a_route_fills_only_what_the_question_left_out(sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    r = read("What was AgentId<2c1ec60a> busy with at 2 s?", run)
    assert (r.kind, r.time_s, r.agent) == ("agent_at", 2.0, "AgentId<2c1ec60a>")
    routed = r.routed("agent_at", agent="AgentId<3443a474>", time_s=9.0, read_as="x?")
    assert (routed.time_s, routed.agent, routed.by) == (2.0, "AgentId<2c1ec60a>", "model")
    assert routed.said == f"{r.text} (x?)"


def test_expected_time_from_the_caller_makes_a_time_question(
        sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    r = read("explain this run please", run, expected_s=1.0)
    assert (r.kind, r.expected_s) == ("time", 1.0)
    a = checked(builtin_answer(run, r))
    assert a.kind == "time" and "expected" in a.text


def test_a_route_without_a_kind_keeps_the_analysts_reading(
        sample: Callable[[str], Path]) -> None:
    run = load(sample("thread"))
    r = read("Were there exceptions?", run)
    routed = r.routed(None, agent="AgentId<3443a474>")
    assert (routed.kind, routed.agent, routed.by) == ("errors", r.agent, "model")
