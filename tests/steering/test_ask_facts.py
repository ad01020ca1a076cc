"""Numbers by reference (issue 14): facts carry their noun, a model refers to them and the
renderer words them; numbers a model types that are no fact (or a fact's value on another
noun) are marked and said; a model reply that loses facts never hides the analyst's answer.
Model replies are crafted and served by the loopback OpenAI-compatible server, through the
real openai client."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeOpenAI, completion
from test_ask_builtin import raw

from features.facts import FactSheet, sheet_scope
from features.run import Run
from steering.ask import ask
from steering.ask.kinds_mode import MARK, RefStream, check_phrasing
from steering.llm import LLMConfig


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


@pytest.fixture(scope="module")
def pairs(sample: Callable[[str], Path]) -> Run:
    run = Run(sample("pairs"))  # 16 agents in 8 worker processes, 656 calls
    run.load()
    return run


def config(server: FakeOpenAI, **kw: Any) -> LLMConfig:
    return LLMConfig(base_url=server.base_url, model="qwen2.5-coder-0.5b", max_retries=0,
                     timeout_s=10.0, **kw)


# -- the sheet ---------------------------------------------------------------------------------

def test_facts_are_worded_with_their_noun() -> None:
    s = FactSheet()
    assert s.count(1, "agent", what="agents launched") == "1 agent"
    assert s.count(799, "record", what="records (log lines)") == "799 records"
    assert s.count(3, "process", "processes") == "3 processes"
    assert s.dur(0.5123, "median of next_item") == "0.512 s"
    assert s.dur(0.0123) == "12.3 ms"
    assert s.at(3.2) == "+3.200 s"
    assert [f.id for f in s] == ["F1", "F2", "F3", "F4", "F5", "F6"]
    assert s.count(799, "record", what="records (log lines)") == "799 records"
    assert len(s) == 6, "the same fact twice is one fact"
    got = s.render("Launched {F1}, wrote {F2}; {F9} and { F4 } median.")
    assert got.text == "Launched 1 agent, wrote 799 records;  and 0.512 s median."
    assert [f.id for f in got.used] == ["F1", "F2", "F4"] and got.bad == ["F9"]
    assert [got.text[a:b] for a, b in got.spans] == ["1 agent", "799 records", "0.512 s"]
    assert "F2 = 799 records (records (log lines))" in s.lines()


def test_typed_numbers_are_checked_against_facts_and_nouns() -> None:
    s = FactSheet()
    s.count(799, "record", what="records (log lines)")
    s.count(4, "agent", what="agents launched")
    s.count(1, "call", what="calls that raised")
    s.dur(0.512, "median of next_item")
    traced, issues = s.audit("4 agents, 799 agents, 799 log lines, 1 action raised, "
                             "512 ms typically, 0.5 s, 7.2 s, 693 processes, 16 s", "I "
                             "expected 16 s")
    assert [(i.text, i.why) for i in issues] == [
        ("799 agents", "misplaced"), ("7.2 s", "invented"), ("693", "invented")]
    assert "799 counts records (log lines), not agents" in issues[0].detail
    assert [f.text for f in traced] == ["4 agents", "799 records", "1 call", "0.512 s",
                                        "0.512 s"]


def test_a_phrasing_is_rendered_marked_and_dropped_when_it_holds_no_fact() -> None:
    s = FactSheet()
    s.count(799, "record")
    s.count(4, "agent", what="agents launched")
    ph = check_phrasing("The run launched {F2} ({F1}) and 799 agents in 7.2 s.", "q", s)
    assert ph.text == f"The run launched 4 agents (799 records) and {MARK} agents in {MARK}."
    assert ph.dropped is None and ph.used == 2
    assert any("799 counts records, not agents" in n for n in ph.notes)
    assert any("7.2 s" in n for n in ph.notes)
    assert check_phrasing("It went fine.", "q", s).dropped == "the model's phrasing holds " \
                                                              "no fact"
    bad = check_phrasing("{F1} in 3 s over 5 calls and 9 files", "q", s)
    assert bad.dropped is not None and "3 number(s) that are no fact" in bad.dropped


def test_a_streamed_reference_is_filled_in_once_it_is_complete() -> None:
    s = FactSheet()
    s.count(4, "agent")
    out: list[str] = []
    stream = RefStream(s, lambda kind, text: out.append(text))
    for chunk in ["Launched {", "F", "1} in", " all {F"]:
        stream.feed(chunk)
    stream.close()
    # A reference the model never finished stays as written, as in the final text.
    assert "".join(out) == "Launched 4 agents in all {F" == s.render("Launched {F1} in all "
                                                                     "{F").text
    assert "{" not in "".join(out[:-1])


def test_the_analysts_counts_and_list_numbers_are_facts(sample: Callable[[str], Path]) -> None:
    """The verifier flagged the analyst's own "(3 more records not shown)": every number it
    writes is now a fact, with the noun it counts."""
    run = Run(sample("exception"))
    run.load()
    a = ask(run, "Any errors?", builtin=True)
    assert not [n for n in a.numbers if not n.supported] and MARK not in a.text
    nouns = {f.text: f.noun for f in a.facts}
    assert nouns["1 call"] == "calls that raised"
    assert nouns["2 records"] == "error records (or with a traceback)"
    with sheet_scope() as sheet:
        pass
    assert not len(sheet)


# -- crafted model replies through the loopback server ------------------------------------------

def test_kinds_mode_renders_references_and_marks_invented_numbers(server: FakeOpenAI,
                                                                  pairs: Run) -> None:
    recs = raw(pairs.path)
    launched = {r["academy.agent_id"] for r in recs if r["msg"].startswith("Launched agent")}
    # F1 is the launched agents; the model also puts the record count on agents and makes
    # up a process count.
    server.script(completion(f"The run launched {{F1}} of {{F2}}, not {len(recs)} agents; it "
                             "used 693 processes."))
    progress: list[tuple[str, str]] = []
    a = ask(pairs, "How many agents were launched?", config(server, phrase=True),
            progress=lambda k, t: progress.append((k, t)))
    assert (a.backend, a.mode, a.kind) == ("llm", "kinds", "counts")
    lead, body = a.text.split("\n\n", 1)
    assert lead == (f"The run launched {len(launched)} agents of {len(launched)} agents, not "
                    f"{MARK} agents; it used {MARK} processes.")
    assert body.startswith(f"{len(launched)} agents launched")
    assert any(f"{len(recs)} counts records" in n for n in a.notes), a.notes
    assert any("693" in n and "no fact" in n for n in a.notes), a.notes
    assert a.facts[0].as_dict() == {"id": "F1", "value": float(len(launched)), "unit": "count",
                                    "noun": "agents launched",
                                    "text": f"{len(launched)} agents", "ev": []}
    # The phrasing streamed with its facts filled in, never as "{F1}".
    streamed = "".join(t for k, t in progress if k == "delta")
    assert streamed.startswith(f"The run launched {len(launched)} agents") and "{" not in streamed
    (req,) = server.chat_requests
    user = req.body["messages"][0]["content"]
    assert f"F1 = {len(launched)} agents (agents launched)" in user
    assert req.body["stream"] is True


def test_a_phrasing_that_loses_facts_leaves_the_analysts_answer(server: FakeOpenAI,
                                                                 pairs: Run) -> None:
    server.script(completion("It launched 12 agents over 3 hours in 40 processes."))
    a = ask(pairs, "How many agents were launched?", config(server, phrase=True))
    assert a.backend == "builtin" and a.mode == "kinds"
    assert a.fallback_reason is not None and "no fact" in a.fallback_reason
    assert "12 agents" not in a.text and a.text.startswith("16 agents launched")
    assert "(Answered by the built-in analyst: the model's phrasing was not shown" in a.text


def test_the_model_routes_only_what_the_analyst_cannot_read(server: FakeOpenAI,
                                                            pairs: Run) -> None:
    a = ask(pairs, "How many agents were launched?", config(server))
    assert not server.chat_requests and a.backend == "builtin" and a.kind == "counts"
    assert "kinds mode asks the model only for questions it cannot read" in a.text
    # A question the analyst cannot read: the model picks from enums; its action must be one
    # of the run's, the time a number.
    server.script(completion(json.dumps({"same_as": "How long does an action usually take?",
                                         "action": "next_item", "agent": "", "time_s": -1})))
    b = ask(pairs, "zorp the next_item frobnication numbers", config(server))
    (req,) = server.chat_requests
    schema = req.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["", "calc_fibs", "next_item"]
    assert "None of these" in schema["properties"]["same_as"]["enum"]
    assert (b.backend, b.kind) == ("llm", "durations")
    # The model's reading is shown first: it is a guess.
    head, rest = b.text.split("\n", 1)
    assert head == ('Read as "How long does an action usually take?" (the model\'s reading '
                    'of the question):')
    assert re.match(r"next_item: 648 calls, typically [\d.]+ ms \(median\)", rest), b.text
    assert any("chosen by the model" in n for n in b.notes)


def test_a_route_outside_its_enum_is_refused_not_followed(server: FakeOpenAI,
                                                          pairs: Run) -> None:
    server.script(completion(json.dumps({"same_as": "drop_tables", "action": "rm -rf",
                                         "agent": "", "time_s": 5})))
    a = ask(pairs, "zorp the frobnicator", config(server))
    assert a.kind == "unknown" and a.text.startswith("I cannot tell what kind of question")
    assert any("'drop_tables' is not one of the questions" in n for n in a.notes)
    server.script(completion("{not json"))
    b = ask(pairs, "zorp the frobnicator", config(server))
    assert b.backend == "builtin" and b.fallback_reason is not None
    assert "not JSON" in b.fallback_reason


def test_tools_mode_numbers_on_the_wrong_noun(server: FakeOpenAI, pairs: Run) -> None:
    """A bigger model in tools mode writes a record count as agents: marked, and the
    analyst's answer follows with the reason."""
    recs = raw(pairs.path)
    ev = pairs.events()
    cite = f"ev:{ev.file_names[ev.file[0]][:8]}:{int(ev.line[0])}"
    server.script(completion(f"The run launched {len(recs)} agents [{cite}]."))
    a = ask(pairs, "How many agents were launched?", config(server, mode="tools"))
    assert a.text.startswith(f"The run launched {MARK} agents [{cite}].")
    assert a.fallback_reason == ("the model's answer lost facts (1 number(s) are on the "
                                 "wrong noun)")
    assert "The built-in analyst's answer (" in a.text and "16 agents launched" in a.text
