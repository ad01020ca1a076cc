"""Summaries through the LLM layer, and the template whenever the LLM is down, slow or
answers garbage: the real openai client against a loopback server, then a real steering
agent that keeps running through LLM failures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, completion, error, malformed, slow
from steerkit import FAST, Knobbed, drive_until, kinds, local_run

from steering.agent import launch_steering
from steering.llm import LLMClient, LLMConfig
from steering.policy import Remedy, Target
from steering.steerable import declarations
from steering.summary import decide
from steering.watch import SteerIncident

SPEC = declarations(Knobbed)["set_knob"]
INC = SteerIncident(
    id="i1", kind="slowdown", agent_class="Knobbed", action="step",
    agents=["AgentId<1234abcd>"], agent_uuids={}, start=time.time() - 2, end=time.time(),
    count=3, max_ratio=8.1, excess_s=0.42, severity="high",
    description="#1 high: 3 slow calls of Knobbed.step, up to 8.1x its median",
    tags=["aaaaaaaa-0000", "bbbbbbbb-0000"], evidence=["f.jsonlog:12"], baseline_s=0.02,
    median_ratio=8.0)
REMEDY = Remedy("r1", Target("u", "AgentId<1234abcd>", "Knobbed", {"set_knob": SPEC},
                             "class"), SPEC, {"knob": 0.5}, 1.0)
GOOD = {"summary": "Knobbed.step got 8.1x slower on [agent:AgentId<1234abcd>].",
        "remedy": "r1", "why": "declared knob", "evidence": ["[ev:f.jsonlog:12]"]}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def client(base_url: str, timeout_s: float = 2.0) -> LLMClient:
    return LLMClient(LLMConfig(base_url=base_url, api_key="sk-test", model="m1",
                               timeout_s=timeout_s, max_retries=0))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_llm_summary_and_choice(server: FakeOpenAI) -> None:
    server.script(completion(json.dumps(GOOD)))
    d = decide(client(server.base_url), INC, [REMEDY])
    assert (d.source, d.remedy, d.error) == ("llm", "r1", None)
    # The facts first, then the model's words (their one number is a fact).
    assert d.summary.startswith("Incident i1 (high): Knobbed.step on AgentId<1234abcd>, "
                                "3 slow calls, up to 8.1x the usual 20.0 ms, 0.420 s extra")
    assert "Remedy: set_knob(knob=0.5)" in d.summary
    assert d.summary.endswith(" In the model's words: " + GOOD["summary"])
    body = server.chat_requests[0].body
    assert body["response_format"]["json_schema"]["schema"]["properties"]["remedy"]["enum"] \
        == ["r1", "none"]


@pytest.mark.parametrize("reply, why", [
    (malformed(), "bad_response"),
    (completion("The agent is slow, try halving the knob."), "not JSON"),
    (completion(json.dumps({**GOOD, "remedy": "r7"})), "not in the list"),
    (completion(json.dumps({**GOOD, "summary": ""})), "no summary"),
    (completion(json.dumps(["r1"])), "not a JSON object"),
    (error(500), "server"),
])
def test_garbage_falls_back_to_the_template(server: FakeOpenAI, reply: object,
                                            why: str) -> None:
    server.script(reply)  # type: ignore[arg-type]
    d = decide(client(server.base_url), INC, [REMEDY])
    assert d.source == "template"
    assert d.remedy == "r1"
    assert d.summary.startswith("Incident i1 (high): Knobbed.step")
    assert d.error is not None and why in d.error and d.error.endswith("; template used")


def test_slow_and_down_fall_back_quickly(server: FakeOpenAI) -> None:
    # The template's reason says the model was given up on at its time-out, not after
    # its slow reply (5 s): no wall-time assertion needed (the machine may be loaded).
    server.script(slow(5.0, completion(json.dumps(GOOD))))
    d = decide(client(server.base_url, timeout_s=0.3), INC, [REMEDY])
    assert (d.source, d.error) == ("template",
                                   "the model did not answer within 0.3 s; template used")
    down = decide(client(f"http://127.0.0.1:{closed_port()}/v1"), INC, [REMEDY])
    assert down.source == "template" and down.error is not None
    assert "connection" in down.error


async def test_agent_keeps_running_through_llm_failures(tmp_path: Path,
                                                        server: FakeOpenAI) -> None:
    # First incident: the LLM never answers in time; second: garbage; third: a good reply.
    server.script(slow(3.0), malformed(), completion(json.dumps(
        {**GOOD, "summary": "third time lucky: {F1}"})))
    llm = LLMConfig(base_url=server.base_url, api_key="sk-test", model="m1", timeout_s=5.0)
    opts = replace(FAST, llm_timeout_s=0.5)
    async with local_run(tmp_path) as (m, cfg, _):
        agents = [await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
                  for _ in range(3)]
        steer = await launch_steering(m, log_config=cfg, mode="suggest", llm=llm,
                                      options=opts)
        for n, h in enumerate(agents, 1):
            async def done(n: int = n) -> bool:
                return len(kinds(await steer.history("suggestion"), "suggestion")) >= n

            await drive_until(h, done)
        events = await steer.history()
        stats = await steer.stats()
    sources = [(e["source"], e.get("llm_error") is not None)
               for e in kinds(events, "suggestion")]
    assert sources == [("template", True), ("template", True), ("llm", False)]
    first, _, third = kinds(events, "suggestion")
    assert first["llm_error"] == "the model did not answer within 0.5 s; template used"
    assert third["summary"].startswith("Incident ")
    assert " In the model's words: third time lucky: " in third["summary"]
    assert stats["errors"] == 0
    assert not kinds(events, "error")
