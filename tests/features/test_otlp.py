"""OTLP/JSON out (features.otlp) checked against the real schema: every export is parsed by
protobuf's own JSON parser into opentelemetry-proto's ``ExportTraceServiceRequest``
(unknown fields and wrong types fail), then its spans are counted against the run's
actions, on the sample pools and on a real academy run with calls nested in an action."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from otlpkit import attrs, parse, spans

from features import otlp
from features.run import Run


def check(run: Run) -> tuple[ExportTraceServiceRequest, list[tuple[dict[str, Any], Any]]]:
    """The run's export, parsed, with the invariants every export holds."""
    msg = parse(otlp.dumps(otlp.build(run)))
    got = spans(msg)
    acts = run.actions()
    trace = bytes.fromhex(run.uuid.replace("-", ""))
    ids = {s.span_id for _, s in got}
    assert len(ids) == len(got), "span ids are unique"
    assert all(s.trace_id == trace and len(s.span_id) == 8 for _, s in got)
    roots = [s for _, s in got if not s.parent_span_id]
    assert len(roots) == 1 and attrs(roots[0].attributes)["academy.span"] == "run"
    assert all(s.parent_span_id in ids for _, s in got if s.parent_span_id)
    assert all(s.end_time_unix_nano >= s.start_time_unix_nano > 1.5e18 for _, s in got)
    # One span per action: its call span (caller seen) or its execution (agent side only).
    per_tag = Counter(attrs(s.attributes)["academy.action_tag"] for _, s in got
                      if attrs(s.attributes)["academy.span"] in ("call", "execute")
                      and s.kind in (s.SPAN_KIND_CLIENT, s.SPAN_KIND_SERVER))
    calls = [s for _, s in got if attrs(s.attributes)["academy.span"] == "call"]
    assert len({attrs(s.attributes)["academy.action_tag"] for s in calls}) == len(calls)
    assert set(per_tag) == set(acts["tag"].tolist())
    # Every execution is the child of its call, in the agent's resource.
    by_id = {s.span_id: (res, s) for res, s in got}
    for res, s in got:
        a = attrs(s.attributes)
        if a["academy.span"] == "execute" and s.parent_span_id in by_id:
            parent = by_id[s.parent_span_id][1]
            if attrs(parent.attributes)["academy.span"] == "call":
                assert attrs(parent.attributes)["academy.action_tag"] == a["academy.action_tag"]
                assert s.kind == s.SPAN_KIND_SERVER and parent.kind == s.SPAN_KIND_CLIENT
                assert res["academy.agent.id"] == a["academy.agent_id"]
    return msg, got


@pytest.mark.parametrize("name", ["thread", "redis", "exception", "agent_driver", "http",
                                  "pairs"])
def test_samples_validate_against_the_proto_schema(sample: Any, name: str) -> None:
    run = Run(sample(name))
    run.load()
    msg, got = check(run)
    acts = run.actions()
    executed = int((~(acts["t_exec_start"] != acts["t_exec_start"])).sum())  # not NaN
    kinds = Counter(attrs(s.attributes)["academy.span"] for _, s in got)
    assert kinds["call"] == len(acts) and kinds["execute"] == executed
    assert kinds["agent"] == len(run.agents())
    # Resources: one per (process, agent); pids and classes as the run's tables say.
    pids = {p["file"]: p["pid"] for p in run.processes().records()}
    classes = {a["agent_id"]: a["class"] for a in run.agents().records()}
    for rs in msg.resource_spans:
        res = attrs(rs.resource.attributes)
        assert res["process.pid"] == pids[res["academy.process.file"]]
        assert res["academy.pool"] == run.uuid
        if "academy.agent.id" in res:
            assert res["service.name"] == classes[res["academy.agent.id"]]
        else:
            assert res["service.name"] == otlp.CLIENT_SERVICE


def test_calls_an_agent_makes_inside_an_action_are_children_of_its_execution(
        sample: Any) -> None:
    """agent_driver: the launcher's run_fibs action calls the generator's next_item 16
    times; each call hangs under run_fibs's execution, in the launcher's resource."""
    run = Run(sample("agent_driver"))
    run.load()
    _, got = check(run)
    fibs = next(a["tag"] for a in run.actions().records() if a["action"] == "run_fibs")
    nested = [(res, s) for res, s in got if s.parent_span_id == bytes.fromhex(
        otlp.exec_span(run.uuid, fibs))]
    inner = [a for a in run.actions().records() if a["caller"].startswith("AgentId")]
    assert len(nested) == len(inner) >= 16
    for res, s in nested:
        a = attrs(s.attributes)
        assert a["rpc.method"] == "next_item" and a["academy.parent"] == "contained"
        assert res["service.name"] == "FibonacciLauncher"


def test_an_exception_is_an_error_with_its_traceback(sample: Any) -> None:
    run = Run(sample("exception"))
    run.load()
    _, got = check(run)
    failed = [s for _, s in got if s.status.code == s.status.STATUS_CODE_ERROR]
    kinds = Counter(attrs(s.attributes)["academy.span"] for s in failed)
    assert kinds == {"call": 1, "execute": 1}
    x = next(s for s in failed if attrs(s.attributes)["academy.span"] == "execute")
    ev = attrs(x.events[0].attributes)
    assert x.events[0].name == "exception" and ev["exception.type"] == "RuntimeError"
    assert "Traceback" in ev["exception.stacktrace"] and ev["exception.message"]
    oks = [s for _, s in got if attrs(s.attributes).get("academy.status") == "ok"]
    assert oks and all(s.status.code == s.status.STATUS_CODE_OK for s in oks)


def test_reexport_is_byte_identical_and_the_trace_is_the_pool(sample: Any) -> None:
    bodies = []
    for _ in range(2):
        run = Run(sample("http"))
        run.load()
        bodies.append(otlp.dumps(otlp.build(run)))
    assert bodies[0] == bodies[1]
    assert otlp.trace_id(run.uuid) == run.uuid.replace("-", "")
    assert otlp.trace_id("not-a-uuid") != otlp.trace_id("also-not") and \
        len(otlp.trace_id("not-a-uuid")) == 32


def test_a_real_run_with_nested_calls(tmp_path: Path) -> None:
    """A straggler run made here: each round's run_round action on the coordinator calls
    work on two workers four times; all those calls are children of that round's
    execution, and the spans' times are the actions table's to the nanosecond."""
    from steering.demo.straggler import StragglerOptions, run_straggler

    res = run_straggler(StragglerOptions(workers=2, rounds=3, task_s=0.02, slow_after=None,
                                         academy_home=tmp_path))
    assert res.ok, res.error
    run = Run(res.pool_dir)
    run.load()
    _, got = check(run)
    acts = run.actions().records()
    rounds = [a for a in acts if a["action"] == "run_round"]
    assert len(rounds) == 3
    by_parent = Counter(s.parent_span_id.hex() for _, s in got
                        if attrs(s.attributes).get("rpc.method") == "work"
                        and attrs(s.attributes)["academy.span"] == "call")
    assert by_parent == {otlp.exec_span(run.uuid, r["tag"]): 4 for r in rounds}
    first = next(s for _, s in got if attrs(s.attributes).get("academy.action_tag") ==
                 rounds[0]["tag"] and attrs(s.attributes)["academy.span"] == "call")
    assert first.start_time_unix_nano == int(otlp.nanos(rounds[0]["t_start"]))
    assert abs(first.start_time_unix_nano / 1e9 - rounds[0]["t_start"]) < 1e-6


def test_batches_split_under_the_limit_and_keep_every_span(sample: Any) -> None:
    run = Run(sample("pairs"))
    run.load()
    request = otlp.build(run)
    whole = otlp.dumps(request)
    limit = 100_000
    bodies = otlp.batches(request, max_bytes=limit)
    assert otlp.batches(request) == [whole]
    assert len(bodies) >= len(whole) // limit and all(len(b) <= limit for b in bodies)
    seen = [s.span_id for b in bodies for _, s in spans(parse(b))]
    assert len(seen) == len(set(seen)) == otlp.span_count(request) == 2 * 656 + 16 + 1


def test_values_every_type_the_tables_hold() -> None:
    assert otlp.value(True) == {"boolValue": True}
    assert otlp.value(3) == {"intValue": "3"}
    assert otlp.value(2**70) == {"stringValue": str(2**70)}
    assert otlp.value(float("nan")) is None and otlp.value(float("inf")) is None
    assert otlp.value(None) is None
    assert otlp.value("a\ud800b") == {"stringValue": "a\\ud800b"}
    # A float of epoch seconds holds ~0.24 us; the nanoseconds are that float's, exactly.
    assert abs(int(otlp.nanos(1795839520.6849558)) - 1795839520684955800) < 240
    assert otlp.nanos(1795839520.0) == "1795839520000000000"
    assert otlp.span_id("p", "call", "t") == otlp.span_id("p", "call", "t") != \
        otlp.span_id("p", "execute", "t")


def test_calls_cut_short_and_calls_seen_only_by_the_agent(sample: Any, tmp_path: Path) -> None:
    """The http sample with its driver's file cut after 70% of its lines (calls started,
    never answered) and one call's caller records removed (seen by the agent only): still
    one span per action, the open ones ending with the run and marked in flight."""
    pool = tmp_path / "ebe7713b-28de-443e-86fd-1a7e6f450409"
    shutil.copytree(sample("http"), pool)
    files = sorted(pool.glob("*.jsonlog"), key=lambda f: len(f.read_bytes()))
    run = Run(sample("http"))
    run.load()
    acts = run.actions().records()
    driver = next(f for f in files if f.name == acts[0]["caller_file"])
    lines = driver.read_text().splitlines(keepends=True)
    hidden = next(a["tag"] for a in acts if a["action"] == "next_item")
    kept = [ln for ln in lines[: int(len(lines) * 0.7)]
            if json.loads(ln).get("academy.action_tag") != hidden]
    driver.write_text("".join(kept))
    for f in files:
        os.utime(f, (1e9, 1e9))  # long finished: nothing is live
    cut = Run(pool)
    cut.load()
    _, got = check(cut)
    by_tag = {attrs(s.attributes)["academy.action_tag"]: s for _, s in got
              if attrs(s.attributes)["academy.span"] in ("call", "execute")
              and (attrs(s.attributes)["academy.span"] == "call"
                   or s.parent_span_id == bytes.fromhex(otlp.span_id(cut.uuid, "run", "")))}
    alone = by_tag[hidden]
    assert attrs(alone.attributes)["academy.span"] == "execute"
    assert alone.kind == alone.SPAN_KIND_SERVER
    root = next(s for _, s in got if not s.parent_span_id)
    open_calls = [s for s in by_tag.values() if attrs(s.attributes).get("academy.in_flight")]
    assert open_calls and all(s.end_time_unix_nano == root.end_time_unix_nano
                              and s.status.code == s.status.STATUS_CODE_UNSET
                              for s in open_calls)
