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


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Violations of the JSON-schema subset used above (no jsonschema dependency)."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        props = schema.get("properties", {})
        errs = [f"{path}: missing {k}" for k in schema.get("required", ()) if k not in value]
        if schema.get("additionalProperties") is False:
            errs += [f"{path}: unexpected {k}" for k in value if k not in props]
        return errs + [e for k, v in value.items() if k in props
                       for e in schema_errors(v, props[k], f"{path}.{k}")]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        errs = [f"{path}: more than {schema['maxItems']} items"] \
            if len(value) > schema.get("maxItems", len(value)) else []
        return errs + [e for i, v in enumerate(value)
                       for e in schema_errors(v, schema["items"], f"{path}[{i}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: not a string"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} not in the enum"]
        if len(value) > schema.get("maxLength", len(value)):
            return [f"{path}: longer than {schema['maxLength']}"]
    return []


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
