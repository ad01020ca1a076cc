"""End to end with a real small model (SmolLM2-135M on llama.cpp via xllamacpp): the
structured-output plan path through LLMClient. Asserts protocol and validity, not wisdom."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_llm import LocalLLM, LocalLLMUnavailable

import prompts
from steering.ask.schema import errors as schema_errors
from steering.llm import ChatResult, LLMClient, LLMConfig, call_log_path, json_schema_format

TOOLS = ("count_events", "slowest_actions", "agent_timeline", "errors")
MAX_CALLS = 3
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "calls": {
            "type": "array", "maxItems": MAX_CALLS,
            "items": {
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "enum": list(TOOLS)},
                    "where": {"type": "string", "maxLength": 60},
                    "why": {"type": "string", "maxLength": 60},
                },
                "required": ["tool", "where", "why"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["calls"],
    "additionalProperties": False,
}
"""A plan as small models can produce it: every string bounded, the tool an enum."""


def test_the_plan_check_fails_a_wrong_plan() -> None:
    # The validity asserted below is worth something only if a wrong plan is told: the
    # product's validator (the one the ask tools check model arguments with) reports each.
    ok = {"calls": [{"tool": "errors", "where": "levelno>=40", "why": "failures"}]}
    assert schema_errors(ok, PLAN_SCHEMA) == []
    wrong = [
        ({"calls": [{"tool": "rm -rf", "where": "", "why": ""}]}, "$.calls[0].tool: "),
        ({"calls": [{"tool": "errors", "where": "x" * 61, "why": ""}]},
         "$.calls[0].where: longer than 60"),
        ({"calls": [{"tool": "errors", "where": ""}]}, "$.calls[0]: missing 'why'"),
        ({"calls": [{"tool": "errors", "where": "", "why": "", "how": 1}]},
         "$.calls[0]: unexpected 'how'"),
        ({"calls": ok["calls"] * (MAX_CALLS + 1)}, "$.calls: more than 3 items"),
        ({"calls": "errors"}, "$.calls: expected array"),
        ({"calls": [], "note": "x"}, "$: unexpected 'note'"),
        ({}, "$: missing 'calls'"),
    ]
    for plan, told in wrong:
        errs = schema_errors(plan, PLAN_SCHEMA)
        assert any(e.startswith(told) for e in errs), (plan, errs)


@pytest.fixture(scope="module")
def local_llm() -> Iterator[LocalLLM]:
    try:
        with LocalLLM() as llm:
            yield llm
    except LocalLLMUnavailable as exc:
        print(f"\nlocal model test skipped: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def client(local_llm: LocalLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[LLMClient]:
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(tmp_path))
    cfg = LLMConfig(base_url=local_llm.base_url, model="smollm2-135m", timeout_s=60,
                    max_retries=0, max_tokens=256, token_budget=4000)
    assert cfg.configured and cfg.resolved_mode == "kinds"
    with LLMClient(cfg) as c:
        yield c


def test_plan_through_json_schema(client: LLMClient) -> None:
    plan_prompt, system = prompts.load("ask_plan"), prompts.load("ask_system")
    tools = "\n".join(f"- {t}: where is a filter such as levelno>=40" for t in TOOLS)
    summary = ("pool 08a98d9a, 3 processes, 4 agents, 16 actions next_item, wall time 24.1 s, "
               "2 errors [ev:1a2b3c4d:120]")
    messages = [
        {"role": "system", "content": system.render()},
        {"role": "user", "content": plan_prompt.render(
            question="Why did the run take 24 s instead of 16 s?", summary=summary,
            tools=tools, max_calls=MAX_CALLS)},
    ]
    fmt = json_schema_format("plan", PLAN_SCHEMA)
    res = client.chat(messages, response_format=fmt, prompt=(plan_prompt.name, plan_prompt.hash))

    assert res.finish_reason == "stop", f"cut off or odd: {res.finish_reason} {res.content!r}"
    plan = res.json()
    assert schema_errors(plan, PLAN_SCHEMA) == [], res.content
    assert not res.usage.estimated and res.usage.prompt_tokens > 100
    assert 0 < res.usage.completion_tokens <= 256
    assert client.budget.spent == res.usage.total_tokens
    (entry,) = [json.loads(line) for line in call_log_path().read_text().splitlines()]
    assert (entry["prompt"], entry["outcome"], entry["response_format"]) == \
        ("ask_plan", "ok", "json_schema")


def test_streaming_plain_chat(client: LLMClient) -> None:
    items = list(client.stream_chat([{"role": "user", "content": "Say hello."}], max_tokens=16))
    *deltas, final = items
    assert isinstance(final, ChatResult) and deltas
    assert "".join(str(d) for d in deltas) == final.content
    assert final.finish_reason in ("stop", "length")
    assert not final.usage.estimated and 0 < final.usage.completion_tokens <= 16
