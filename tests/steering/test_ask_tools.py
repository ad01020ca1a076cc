"""The ask tools, the run summary, evidence ids and the verifier, on the sample pools.
Expected counts come from the raw .jsonlog lines, read with json, not from our reader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from features import query
from features.run import Run
from steering.ask import EvidenceIndex, Toolbox, summarize
from steering.ask.refs import find_refs
from steering.ask.verify import UNSUPPORTED, verify
from steering.llm import json_schema_format, unbounded_strings


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


@pytest.fixture(scope="module")
def failed(sample: Callable[[str], Path]) -> Run:
    return load(sample("exception"))


# -- schemas ---------------------------------------------------------------------------------

def test_every_string_in_every_schema_is_bounded(failed: Run) -> None:
    tb = Toolbox(failed)
    specs = tb.specs()
    assert [s["function"]["name"] for s in specs] == [
        "query_events", "list_things", "group_stats", "where_time_went", "anomalies",
        "concurrency", "diff_run", "run_facts", "steering", "events_at"]
    for spec in specs:
        assert unbounded_strings(spec["function"]["parameters"]) == [], spec["function"]["name"]
    plan = tb.plan_schema(3)
    assert unbounded_strings(plan) == []
    json_schema_format("ask_plan", plan)  # would raise on an unbounded string
    # The plan's shapes are strict: every property required, the optional ones nullable.
    shape = plan["properties"]["calls"]["items"]["anyOf"][1]["properties"]["arguments"]
    assert set(shape["required"]) == set(shape["properties"])
    assert shape["properties"]["limit"]["type"] == ["integer", "null"]


def test_the_filter_argument_is_the_query_languages_ast(failed: Run) -> None:
    spec = Toolbox(failed).specs()[0]["function"]["parameters"]
    assert spec["$defs"] == query.AST_SCHEMA["$defs"]
    text, ast = spec["properties"]["where"]["anyOf"]
    assert text["type"] == "string" and ast == {"$ref": "#/$defs/node"}


# -- calls -----------------------------------------------------------------------------------

def test_query_events_by_text_and_by_ast(failed: Run, sample: Callable[[str], Path]) -> None:
    tb = Toolbox(failed)
    want = [r for r in raw(sample("exception")) if int(r["levelno"]) >= 40]
    by_text = tb.call("query_events", {"where": "levelno>=40"})
    ast = query.to_json(query.parse("levelno>=40"))
    by_ast = tb.call("query_events", json.dumps({"where": ast, "limit": 5}))
    assert by_text.ok and by_ast.ok
    assert by_text.data["count"] == by_ast.data["count"] == len(want) == 1
    (event,) = by_text.data["events"]
    assert event["ev"] == f"ev:{want[0]['@file'][:8]}:{want[0]['@line']}"
    assert event["level"] == "ERROR" and event["message"] == want[0]["message"]
    assert by_text.evidence == [event["ev"]]


@pytest.mark.parametrize(("name", "args", "error"), [
    ("rm_rf", {"path": "/"}, "unknown tool 'rm_rf'; the tools are: query_events"),
    ("list_things", "{kind: actions", "arguments are not JSON"),
    ("list_things", "[1, 2]", "arguments must be a JSON object"),
    ("list_things", {"kind": "actions", "limit": 500}, "$.limit: 500 is above the maximum 50"),
    ("list_things", {"kind": "files"}, "$.kind: 'files' is not one of"),
    ("list_things", {"kind": "actions", "colour": "red"}, "$: unexpected 'colour'"),
    ("list_things", {"kind": "agents", "sort": "exec_s"}, "sort 'exec_s' does not apply to "
                                                          "agents; use one of startup_s"),
    ("query_events", {}, "$: missing 'where'"),
    ("query_events", {"where": "levelno>>3"}, "bad filter:"),
    ("query_events", {"where": {"op": "cmp", "key": "levelno"}}, "matches none of the "
                                                                  "allowed shapes"),
    ("query_events", {"where": "x" * 600}, "longer than 500 characters"),
    ("events_at", {"agent": "AgentId<00000000>", "time_s": 1}, "no agent 'AgentId<00000000>' "
                                                              "in this run; agents: AgentId<"),
    ("events_at", {"agent": "GeneratorAgent", "time_s": -1}, "below the minimum 0"),
    ("diff_run", {"other": "/etc"}, "give another run's uuid, a uuid prefix or 'latest'"),
    ("diff_run", {"other": "0000dead"}, "no run matches '0000dead'"),
])
def test_bad_calls_are_error_results_never_exceptions(failed: Run, name: str, args: Any,
                                                      error: str) -> None:
    tb = Toolbox(failed)
    res = tb.call(name, args)
    assert not res.ok and error in str(res.error), res.error
    body = json.loads(res.to_json())
    assert body == {"tool": res.tool, "ok": False, "error": res.error}
    assert tb.results == [res]


def test_results_are_capped_by_dropping_list_items(sample: Callable[[str], Path]) -> None:
    run = load(sample("pairs"))
    tb = Toolbox(run, result_chars=1500)
    res = tb.call("query_events", {"where": "academy.action=next_item", "limit": 50})
    assert res.ok and res.truncated and len(res.to_json()) <= 1500
    assert 0 < len(res.data["events"]) < 50
    assert res.data["count"] == sum(1 for r in raw(sample("pairs"))
                                    if r.get("academy.action") == "next_item")
    assert "truncated" in json.loads(res.to_json())


@pytest.mark.parametrize("cap", [1200, 2000])
def test_a_small_models_cap_still_gets_the_breakdown(sample: Callable[[str], Path],
                                                     cap: int) -> None:
    """Every model plan that called where_time_went used to get "the result is too large
    to show" at a small model's cap (issue 14): help texts go first, then long strings are
    shortened; the numbers stay."""
    run = Run(sample("thread"))
    run.load(workers=1)
    tb = Toolbox(run, result_chars=cap, expected_s=3.0)
    res = tb.call("where_time_went", {})
    assert res.ok and res.truncated and len(res.to_json()) <= cap
    assert "meaning" not in res.data
    full = Toolbox(run, expected_s=3.0).call("where_time_went", {}).data
    assert res.data["seconds"] == full["seconds"] and res.data["wall_s"] == full["wall_s"]


def test_every_evidence_id_in_every_result_exists(failed: Run) -> None:
    tb = Toolbox(failed)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("query_events", {"where": "exc_text!=None"}), ("list_things", {"kind": "actions"}),
        ("list_things", {"kind": "agents"}), ("list_things", {"kind": "processes"}),
        ("group_stats", {"by": "agent"}), ("where_time_went", {"expected_s": 2}),
        ("anomalies", {}), ("concurrency", {"what": "in flight"}),
        ("events_at", {"agent": "25664cb3", "time_s": 1.15})]
    index = EvidenceIndex(failed)
    refs = set()
    for name, args in calls:
        res = tb.call(name, args)
        assert res.ok, (name, res.error)
        refs.update(res.evidence)
    assert {r.split(":")[0] for r in refs} == {"ev", "act", "agent"}
    bad = [r for r in refs if not index.resolve(r).valid]
    assert bad == []


def test_citations_resolve_to_the_rows_and_a_filter_for_them(failed: Run,
                                                             sample: Callable[[str], Path]
                                                             ) -> None:
    index = EvidenceIndex(failed)
    error = next(r for r in raw(sample("exception")) if int(r["levelno"]) >= 40)
    c = index.resolve(f"ev:{error['@file'][:8]}:{error['@line']}")
    assert c.valid and c.kind == "event" and len(c.rows) == 1
    assert list(failed.select(c.expr)) == list(c.rows)
    assert failed.events().record(c.rows[0]) == {k: v for k, v in error.items()
                                                 if not k.startswith("@")}
    tag = next(r["academy.action_tag"] for r in raw(sample("exception"))
               if r.get("academy.action_state") == "exception")
    act = index.resolve(f"act:{tag[:8]}")
    assert act.valid and act.kind == "action" and "exception" in act.label
    assert sorted(act.rows) == sorted(failed.select(f"academy.action_tag={tag}").tolist())
    agent = index.resolve("agent:AgentId<25664cb3>")
    assert agent.valid and "GeneratorAgent" in agent.label and agent.expr
    for ref, reason in (("ev:8b46bb7c:99999", "no record on line 99999"),
                        ("ev:ffffffff:1", "no pool file starts with"),
                        ("act:ffffffff", "no action tag starts with"),
                        ("agent:AgentId<ffffffff>", "no agent AgentId<ffffffff>"),
                        ("agent:Bob", "not AgentId<...>")):
        got = index.resolve(ref)
        assert not got.valid and reason in got.reason and got.rows == ()


# -- the summary -----------------------------------------------------------------------------

def test_the_summary_holds_the_numbers_and_fits_its_cap(failed: Run,
                                                        sample: Callable[[str], Path]
                                                        ) -> None:
    recs = raw(sample("exception"))
    wall = max(float(r["created"]) for r in recs) - min(float(r["created"]) for r in recs)
    text = summarize(failed, expected_s=2.0)
    assert f"wall time {round(wall, 4):g} s" in text and "Expected 2 s: excess" in text
    assert "1 ERROR/CRITICAL record, 0 warnings, 1 action raised." in text
    error = next(r for r in recs if int(r["levelno"]) >= 40)
    assert f"«{error['message']}» [ev:{error['@file'][:8]}:{error['@line']}]" in text
    assert "«GeneratorAgent».«next_item»: 8 calls, 1 raised" in text
    assert "«fib.iteration» 16" in text  # user keys, with how many events carry each
    previous = len(text)
    for cap in (3000, 1500, 900, 400):
        small = summarize(failed, max_chars=cap)
        assert len(small) <= cap
        assert small.startswith(f"Run {failed.uuid}")
        assert len(small) <= previous
        previous = len(small)
    assert "Where the time went" in summarize(failed, max_chars=900)


# -- the verifier ----------------------------------------------------------------------------

def test_verify_removes_invented_citations_and_marks_invented_numbers(failed: Run) -> None:
    tb = Toolbox(failed)
    res = tb.call("list_things", {"kind": "actions", "limit": 2})
    top = res.data["items"][0]
    sources = res.to_json()
    text = (f"The slowest call took {top['total_s']} s ({top['total_s'] * 1000:.1f} ms) "
            f"[{top['act']}] [{top['ev']}, ev:ffffffff:3] and 12.5 s in all [act:deadbeef]; "
            f"about {round(top['total_s'], 2)} s, {top['total_s'] * 100:.0f}% of nothing.")
    v = verify(text, EvidenceIndex(failed), sources)
    assert [c.ref for c in v.citations] == [top["act"], top["ev"], "ev:ffffffff:3",
                                            "act:deadbeef"]
    assert [c.valid for c in v.citations] == [True, True, False, False]
    assert f"[{top['ev']}]" in v.text and "ffffffff" not in v.text
    assert "deadbeef" not in v.text and "in all;" in v.text
    assert [n.text for n in v.numbers if not n.supported] == ["12.5 s"]
    assert f"12.5 s {UNSUPPORTED}" in v.text and v.text.count(UNSUPPORTED) == 1
    assert any("Removed 2 citation(s)" in n and "ev:ffffffff:3" in n for n in v.notes)
    assert any("1 number(s)" in n and "12.5 s" in n for n in v.notes)
    assert [r[2] for r in find_refs(v.text)] == [[top["act"]], [top["ev"]]]


def test_verify_notes_an_answer_without_evidence(failed: Run) -> None:
    v = verify("It was fine.", EvidenceIndex(failed), "")
    assert v.citations == [] and v.numbers == []
    assert v.notes == ["The answer cites no evidence from this run; check it against the "
                       "events before relying on it."]
