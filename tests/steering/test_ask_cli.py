"""``academy-tui ask`` run as a user runs it: a subprocess, exit codes, stdout, stderr; the
LLM at the far end of a loopback server; the key never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, completion, error

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-CliS3CRETkey0123456789abcdWXYZ"


def cli(*args: str, home: Path, env: dict[str, str] | None = None,
        code: int = 0) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "ACADEMY_HOME": str(home), **(env or {})}
    res = subprocess.run([sys.executable, "-m", "tui.cli", "ask", *args], capture_output=True,
                         text=True, env=full, cwd=ROOT, timeout=180)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    return res


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def test_builtin_text_answer_with_evidence(samples_home: Path) -> None:
    res = cli("2ecb", "What failed?", home=samples_home)
    out = res.stdout
    assert out.startswith("1 call raised and 2 records are errors")
    # When it raised, not when it was called (issue 14: the send time was given as the raise).
    assert "- next_item 1b0601a6 on AgentId<25664cb3>, called at +1.930 s, raised at " \
        "+2.037 s [act:1b0601a6]" in out
    assert "\nEvidence:\n  [act:1b0601a6]  action next_item 1b0601a6 on AgentId<25664cb3> " \
           "(exception)" in out
    assert "(Answered by the built-in analyst: no LLM is configured" in out
    assert "Checks:" not in out and res.stderr == ""


def test_json_with_expect_and_compare(samples_home: Path) -> None:
    js = json.loads(cli("08a9", "Why?", "--expect", "2s", "--format", "json",
                        home=samples_home).stdout)
    assert js["backend"] == "builtin" and js["kind"] == "time"
    assert js["text"].startswith("The run took 3.26 s against 2.00 s expected (+1.26 s")
    assert js["citations"] and all(c["valid"] for c in js["citations"])
    assert all(n["supported"] for n in js["numbers"]) and js["notes"] == []
    out = cli("08a9", "How does it compare?", "--compare", "ebe7", home=samples_home).stdout
    assert out.startswith("A is the other run ebe7713b, B is this run 08a98d9a. B took "
                          "3.26 s against 4.64 s for A")


@pytest.mark.parametrize(("args", "env", "message"), [
    (("zzzz", "q"), {}, "academy-tui: error: no run matches 'zzzz'"),
    (("08a9", "   "), {}, "academy-tui: error: the question is empty"),
    (("08a9", "q", "--expect", "soon"), {}, "academy-tui: error: cannot read duration"),
    (("08a9", "q"), {"ACADEMY_TUI_LLM_MODE": "chatty", "OPENAI_API_KEY": KEY},
     "academy-tui: error: llm mode must be one of auto, tools, plan, kinds, not 'chatty'"),
], ids=["no-run", "empty", "bad-expect", "bad-config"])
def test_errors_are_one_line(samples_home: Path, args: tuple[str, ...], env: dict[str, str],
                             message: str) -> None:
    res = cli(*args, home=samples_home, env=env, code=2)
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1
    assert res.stdout == "" and KEY not in res.stderr


def test_an_llm_answer(samples_home: Path, server: FakeOpenAI) -> None:
    server.script(completion("The generator raised at iteration 7 [ev:8b46bb7c:85] after "
                             "2.037 s [act:1b0601a6].", prompt_tokens=900,
                             completion_tokens=30))
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
    res = cli("2ecb", "What failed?", "--mode", "tools", "--model", "m-test", home=samples_home,
              env=env)
    assert res.stdout.startswith("The generator raised at iteration 7 [ev:8b46bb7c:85] after "
                                 "2.037 s [act:1b0601a6].")
    assert "  [ev:8b46bb7c:85]  event 8b46bb7c:85 +2.037 s ERROR «pair failed" in res.stdout
    assert res.stdout.rstrip().endswith("(Answered by m-test in tools mode: 0 tool calls, "
                                        "930 tokens.)")
    (req,) = server.chat_requests
    assert req.body["model"] == "m-test" and req.headers["authorization"] == f"Bearer {KEY}"


def test_a_failing_llm_falls_back_and_never_shows_the_key(samples_home: Path,
                                                          server: FakeOpenAI) -> None:
    server.script(error(401, f"Incorrect API key provided: {KEY}"))
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
    res = cli("2ecb", "What failed?", "--mode", "plan", home=samples_home, env=env)
    assert res.stderr == ("academy-tui: note: the LLM failed (auth): HTTP 401: Incorrect API "
                          "key provided: ***; the built-in analyst answered\n")
    assert res.stdout.startswith("1 call raised")
    assert "(Answered by the built-in analyst: the LLM failed (auth)" in res.stdout
    js = cli("2ecb", "What failed?", "--format", "json", home=samples_home, env=env).stdout
    assert KEY not in res.stdout + res.stderr + js
    assert KEY[3:15] not in res.stdout + res.stderr + js
