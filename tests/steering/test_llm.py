"""LLMClient through the real openai client (httpx, retries, SSE) against a loopback server."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai_server import (
    FakeOpenAI,
    Reply,
    completion,
    error,
    hang,
    malformed,
    slow,
    tool_call,
)

import prompts
from steering.llm import (
    BudgetExceeded,
    ChatResult,
    LLMClient,
    LLMConfig,
    LLMError,
    TokenBudget,
    ToolCall,
    call_log_path,
    json_schema_format,
)
from steering.llm_config import ENV, config_path

KEY = "sk-test-S3CRETkey0123456789abcdWXYZ"
HI = [{"role": "user", "content": "hi"}]
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"calls": {"type": "array", "maxItems": 3, "items": {
        "type": "object",
        "properties": {"tool": {"type": "string", "enum": ["count", "search"]},
                       "why": {"type": "string", "maxLength": 60}},
        "required": ["tool", "why"], "additionalProperties": False}}},
    "required": ["calls"], "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The call log goes to a temporary state dir; no LLM setting leaks in from outside."""
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def client_for(server: FakeOpenAI, **changes: Any) -> LLMClient:
    settings: dict[str, Any] = {"base_url": server.base_url, "api_key": KEY, "model": "m1",
                                "timeout_s": 5.0, "max_retries": 2, **changes}
    return LLMClient(LLMConfig(**settings))


def log_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in call_log_path().read_text().splitlines()]


# -- the protocol ----------------------------------------------------------------------------

def test_plain_chat(server: FakeOpenAI) -> None:
    server.script(completion("Four agents ran.", prompt_tokens=21, completion_tokens=5))
    with client_for(server, max_tokens=64) as client:
        res = client.chat(HI)
    assert (res.content, res.finish_reason, res.model) == ("Four agents ran.", "stop",
                                                           "fake-model")
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.usage.total_tokens) == \
        (21, 5, 26)
    assert not res.usage.estimated and res.tool_calls == [] and res.elapsed_s > 0
    (req,) = server.chat_requests
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body["model"] == "m1" and req.body["messages"] == HI
    assert req.body["max_tokens"] == 64 and req.body["temperature"] == 0.0
    assert "stream" not in req.body and "response_format" not in req.body


def test_stream_deltas_reassemble_the_answer(server: FakeOpenAI) -> None:
    server.script(completion("The run took 24 s, 8 s over.", completion_tokens=9))
    with client_for(server) as client:
        items = list(client.stream_chat(HI))
    *deltas, final = items
    assert isinstance(final, ChatResult)
    assert len(deltas) > 3 and all(isinstance(d, str) for d in deltas)
    assert "".join(str(d) for d in deltas) == final.content == "The run took 24 s, 8 s over."
    assert final.finish_reason == "stop" and final.usage.completion_tokens == 9
    (req,) = server.chat_requests
    assert req.body["stream"] is True and req.body["stream_options"] == {"include_usage": True}


TOOLS = [{"type": "function", "function": {
    "name": "count", "description": "Count events matching a filter.",
    "parameters": {"type": "object", "properties": {"where": {"type": "string"}},
                   "required": ["where"]}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_parsed(server: FakeOpenAI, stream: bool) -> None:
    server.script(completion(None, tool_calls=[
        tool_call("count", {"where": "levelno>=40"}, id="call_a"),
        tool_call("count", {"where": "academy.action=next_item"}, id="call_b")]))
    with client_for(server) as client:
        if stream:
            res = list(client.stream_chat(HI, tools=TOOLS, tool_choice="auto"))[-1]
            assert isinstance(res, ChatResult)
        else:
            res = client.chat(HI, tools=TOOLS, tool_choice="auto")
    assert res.finish_reason == "tool_calls" and res.content == ""
    assert res.tool_calls == [
        ToolCall("call_a", "count", '{"where": "levelno>=40"}'),
        ToolCall("call_b", "count", '{"where": "academy.action=next_item"}')]
    assert res.tool_calls[1].parse({"count"}) == {"where": "academy.action=next_item"}
    (req,) = server.chat_requests
    assert req.body["tools"] == TOOLS and req.body["tool_choice"] == "auto"


def test_unknown_tools_and_bad_arguments_are_bad_responses(server: FakeOpenAI) -> None:
    server.script(completion(None, tool_calls=[
        tool_call("rm_rf", {"path": "/"}, id="c1"),
        tool_call("count", "{where: levelno>=40", id="c2")]))
    with client_for(server) as client:
        unknown, bad_args = client.chat(HI, tools=TOOLS).tool_calls
    with pytest.raises(LLMError, match="unknown tool 'rm_rf'") as info:
        unknown.parse({"count"})
    assert info.value.kind == "bad_response"
    with pytest.raises(LLMError, match="not a JSON object") as info:
        bad_args.parse({"count"})
    assert info.value.kind == "bad_response"


def test_json_schema_request_and_reply(server: FakeOpenAI) -> None:
    plan = {"calls": [{"tool": "count", "why": "errors"}]}
    server.script(completion(json.dumps(plan)))
    fmt = json_schema_format("plan", PLAN_SCHEMA)
    with client_for(server) as client:
        res = client.chat(HI, response_format=fmt)
    assert res.json() == plan
    (req,) = server.chat_requests
    assert req.body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "plan", "strict": True,
                                               "schema": PLAN_SCHEMA}}


def test_json_schema_format_insists_on_bounded_strings() -> None:
    loose = {"type": "object", "properties": {"why": {"type": "string"},
                                              "items": {"type": "array",
                                                        "items": {"type": "string"}}}}
    with pytest.raises(ValueError, match=r"\$\.why, \$\.items\.items"):
        json_schema_format("loose", loose)


def test_a_cut_off_json_reply_is_a_bad_response(server: FakeOpenAI) -> None:
    server.script(completion('{"calls": [{"tool": "count", "why": "aaaa', finish_reason="length"),
                  completion("not json"))
    with client_for(server) as client:
        with pytest.raises(LLMError, match="cut off") as info:
            client.chat(HI).json()
        assert info.value.kind == "bad_response"
        with pytest.raises(LLMError, match="not JSON"):
            client.chat(HI).json()


# -- failures --------------------------------------------------------------------------------

def test_429_is_retried_after_the_servers_delay(server: FakeOpenAI) -> None:
    server.script(error(429, "slow down", retry_after="1"), completion("second time lucky"))
    with client_for(server) as client:
        res = client.chat(HI)
    assert res.content == "second time lucky"
    first, second = server.chat_requests
    assert second.at - first.at >= 0.9, "retry-after: 1 was not honoured"
    assert log_lines()[-1]["attempts"] == 2


def test_500_twice_then_success(server: FakeOpenAI) -> None:
    server.script(error(500), error(502), completion("recovered"))
    with client_for(server, max_retries=3) as client:
        assert client.chat(HI).content == "recovered"
    assert len(server.chat_requests) == 3
    assert log_lines()[-1]["outcome"] == "ok" and log_lines()[-1]["attempts"] == 3


def test_persistent_500_gives_up_after_max_retries(server: FakeOpenAI) -> None:
    server.script(*[error(500, "the GPU caught fire")] * 5)
    with client_for(server, max_retries=2) as client, pytest.raises(LLMError) as info:
        client.chat(HI)
    assert info.value.kind == "server" and info.value.status == 500
    assert str(info.value) == "HTTP 500 after 3 attempts: the GPU caught fire"
    assert len(server.chat_requests) == 3


def test_a_slow_server_times_out(server: FakeOpenAI) -> None:
    # The server never answers while it runs: the call can only come back because the
    # client gave up, and it gave up on the configured limit, which the request carried
    # down to httpx (what bounds the wait on the socket). No clock is read: a loaded
    # machine makes the wait longer, never the outcome different.
    server.script(hang())
    limits: list[dict[str, float | None]] = []
    http = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda r: limits.append(r.extensions["timeout"])]})
    with LLMClient(LLMConfig(base_url=server.base_url, api_key=KEY, model="m1",
                             timeout_s=0.5, max_retries=0), http_client=http) as client, \
            pytest.raises(LLMError) as info:
        client.chat(HI)
    assert info.value.kind == "timeout"
    assert str(info.value).startswith("no reply within 0.5 s"), str(info.value)
    assert limits == [{"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}]
    assert len(server.chat_requests) == 1
    assert log_lines()[-1]["outcome"] == "timeout" and log_lines()[-1]["attempts"] == 1


def test_time_outs_are_retried_too(server: FakeOpenAI) -> None:
    server.script(slow(10), completion("fast enough"))
    with client_for(server, timeout_s=0.5, max_retries=1) as client:
        assert client.chat(HI).content == "fast enough"
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize("reply", [
    malformed(),
    malformed(b"<html>502 Bad Gateway</html>"),
    Reply(body={"id": "x", "object": "chat.completion"}),
    Reply(body={"choices": [{"index": 0}]}),
], ids=["cut-off-json", "html", "no-choices", "no-message"])
def test_malformed_replies_are_bad_responses(server: FakeOpenAI, reply: Any) -> None:
    server.script(reply)
    with client_for(server) as client, pytest.raises(LLMError) as info:
        client.chat(HI)
    assert info.value.kind == "bad_response"
    assert "\n" not in str(info.value)


def test_no_server_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    client = LLMClient(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY,
                                 max_retries=0))
    with client, pytest.raises(LLMError) as info:
        client.chat(HI)
    assert info.value.kind == "connection"


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (403, "auth"),
                                              (400, "bad_request"), (404, "bad_request")])
def test_status_codes_map_to_kinds(server: FakeOpenAI, status: int, kind: str) -> None:
    server.script(error(status, f"Incorrect API key provided: {KEY}"))
    with client_for(server) as client, pytest.raises(LLMError) as info:
        client.chat(HI)
    assert info.value.kind == kind and KEY not in str(info.value)
    assert len(server.chat_requests) == 1, "4xx must not be retried"


# -- the token budget ------------------------------------------------------------------------

def test_budget_refuses_a_call_that_could_overrun(server: FakeOpenAI) -> None:
    server.script(completion("a", prompt_tokens=300, completion_tokens=50))
    with client_for(server, max_tokens=140, token_budget=500) as client:
        client.chat(HI)
        assert (client.budget.spent, client.budget.calls) == (350, 1)
        with pytest.raises(BudgetExceeded) as info:
            client.chat(HI)  # the prompt's estimate (~20) + 140 > the 150 left
    assert info.value.kind == "budget" and info.value.remaining == 150
    assert info.value.needed > 150 and "150 of 500" in str(info.value)
    assert len(server.chat_requests) == 1, "a refused call must not be sent"


def test_budget_is_per_question(server: FakeOpenAI) -> None:
    with client_for(server, max_tokens=50, token_budget=100) as client:
        client.chat(HI)  # the default reply spends 11 + 7
        first = client.budget
        with pytest.raises(BudgetExceeded):
            client.chat(HI, max_tokens=75)  # ~20 + 75 > the 82 left
        fresh = client.new_budget()
        client.chat(HI, max_tokens=75)
        shared = TokenBudget(1000)
        client.chat(HI, budget=shared)
    assert (first.spent, fresh.spent, shared.spent) == (18, 18, 18)
    assert client.budget is fresh


def test_a_budget_error_is_logged_and_never_sent(server: FakeOpenAI) -> None:
    with client_for(server, token_budget=10) as client, pytest.raises(BudgetExceeded):
        client.chat(HI)
    assert server.chat_requests == [] and log_lines()[-1]["outcome"] == "budget"


# -- configuration ---------------------------------------------------------------------------

def write_toml(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert LLMConfig.load() == LLMConfig()
    assert config_path() == tmp_path / "cfg" / "academy-tui" / "config.toml"
    write_toml('[llm]\nmodel = "from-toml"\ntimeout_s = 11\nmax_tokens = 300\n'
               'base_url = "http://127.0.0.1:9/v1"\nmode = "tools"\n')
    cfg = LLMConfig.load()
    assert (cfg.model, cfg.timeout_s, cfg.max_tokens, cfg.mode) == ("from-toml", 11.0, 300,
                                                                   "tools")
    assert cfg.max_retries == 3 and cfg.token_budget == 8000, "defaults where TOML is silent"
    monkeypatch.setenv("ACADEMY_TUI_MODEL", "from-env")
    monkeypatch.setenv("ACADEMY_TUI_LLM_TIMEOUT", "22.5")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = LLMConfig.load()
    assert (cfg.model, cfg.timeout_s, cfg.max_tokens, cfg.api_key) == ("from-env", 22.5, 300,
                                                                      KEY)
    cfg = LLMConfig.load(model="from-args", timeout_s=None, max_retries=0)
    assert (cfg.model, cfg.timeout_s, cfg.max_retries) == ("from-args", 22.5, 0)
    assert cfg.base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(("toml", "env", "match"), [
    ("[llm]\nmodle = 'x'\n", {}, "unknown llm setting"),
    ("[llm]\nmodel = \n", {}, "not readable TOML"),
    ("", {"ACADEMY_TUI_LLM_TIMEOUT": "soon"}, "timeout_s: expected float"),
    ("", {"ACADEMY_TUI_LLM_MODE": "chatty"}, "mode must be one of"),
    ("", {"ACADEMY_TUI_LLM_MAX_RETRIES": "-1"}, "max_retries must be >= 0"),
])
def test_bad_config_is_one_line_and_key_free(monkeypatch: pytest.MonkeyPatch, toml: str,
                                             env: dict[str, str], match: str) -> None:
    write_toml(toml + f"api_key = '{KEY}'\n" if toml.startswith("[llm]") else toml)
    for k, v in {**env, "OPENAI_API_KEY": KEY}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=match) as info:
        LLMConfig.load()
    assert KEY not in str(info.value) and "\n" not in str(info.value)


def test_configured_and_auto_mode() -> None:
    assert not LLMConfig().configured
    assert LLMConfig(api_key=KEY).configured and LLMConfig(base_url="http://x/v1").configured
    assert LLMConfig(api_key=KEY).resolved_mode == "tools"
    assert LLMConfig(base_url="http://127.0.0.1:8080/v1").resolved_mode == "kinds"
    assert LLMConfig(base_url="http://localhost:11434/v1", model="llama3.1:70b",
                     mode="tools").resolved_mode == "tools"
    for small in ("SmolLM2-135M-Instruct", "qwen2.5-0.5b-instruct", "llama-3.2-3b", "x.gguf"):
        assert LLMConfig(api_key=KEY, model=small).resolved_mode == "kinds", small
    for big in ("gpt-4o-mini", "llama-3.1-70b", "qwen2.5-32b", "gpt-3.5-turbo"):
        assert LLMConfig(api_key=KEY, model=big).resolved_mode == "tools", big


# -- secrecy and logging ---------------------------------------------------------------------

def test_the_key_never_leaks(server: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, openai's and httpx's
    cfg = LLMConfig(base_url=server.base_url, api_key=KEY, max_retries=1, timeout_s=0.5)
    assert KEY not in repr(cfg) and KEY not in str(cfg) and "sk-…WXYZ" in repr(cfg)
    assert KEY not in repr(LLMClient(cfg))
    server.script(error(401, f"Incorrect API key provided: {KEY}"),
                  error(500, f"upstream said: Bearer {KEY}"), error(500, f"key={KEY}"),
                  completion("fine"), slow(10), slow(10))
    errors: list[str] = []
    with LLMClient(cfg) as client:
        for _ in range(4):
            try:
                client.chat(HI, prompt=("ask_plan", "0" * 12))
            except LLMError as exc:
                errors.append(f"{exc} {exc!r}")
        list(client.stream_chat(HI))
    assert len(errors) == 3
    assert not [e for e in errors if KEY in e or KEY[3:15] in e]
    assert KEY not in call_log_path().read_text()
    assert KEY not in caplog.text
    assert not [r for r in caplog.records if KEY in repr(r.__dict__)]


def test_each_call_is_logged_without_content(server: FakeOpenAI,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="academy_tui.llm")
    root_handlers = list(logging.getLogger().handlers)
    plan = prompts.load("ask_plan")
    secret = "which agent leaked the payroll file?"
    text = plan.render(question=secret, summary="s", tools="t", max_calls=3)
    server.script(completion("answer text", prompt_tokens=40, completion_tokens=8),
                  error(400, "bad"))
    with client_for(server) as client:
        client.chat([{"role": "user", "content": text}], prompt=(plan.name, plan.hash))
        with pytest.raises(LLMError):
            client.chat(HI)
    ok, bad = log_lines()
    assert (ok["prompt"], ok["prompt_hash"], ok["outcome"]) == ("ask_plan", plan.hash, "ok")
    assert ok["usage"]["total_tokens"] == 48 and ok["response_chars"] == len("answer text")
    assert ok["model"] == "m1" and ok["server"] == "127.0.0.1" and ok["elapsed_s"] >= 0
    assert (bad["outcome"], bad["prompt"]) == ("bad_request", None)
    assert secret not in call_log_path().read_text() and "answer text" not in \
        call_log_path().read_text()
    records = [r for r in caplog.records if r.name == "academy_tui.llm"]
    assert len(records) == 2 and "ask_plan#" + plan.hash in records[0].getMessage()
    assert records[1].levelno == logging.WARNING
    assert secret not in caplog.text
    assert logging.getLogger().handlers == root_handlers


def test_call_log_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACADEMY_TUI_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert call_log_path() == tmp_path / "xdg" / "academy-tui" / "llm.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert call_log_path() == tmp_path / "home" / ".local/state/academy-tui/llm.jsonl"


def test_an_abandoned_stream_is_closed_and_logged(server: FakeOpenAI) -> None:
    server.script(completion("one two three four five"))
    with client_for(server) as client:
        stream = client.stream_chat(HI)
        assert next(stream) == "one"
        stream.close()  # type: ignore[attr-defined]
    assert log_lines()[-1]["outcome"] == "cancelled"


def test_importing_the_module_stays_cheap() -> None:
    """openai/httpx load with the first client: the TUI imports steering.llm at start-up, and
    httpx imports rich (its CLI) whenever rich and click are installed."""
    code = ("import sys, steering.llm, steering.llm_config, prompts\n"
            "print(sorted(m for m in ('openai', 'httpx', 'rich', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
