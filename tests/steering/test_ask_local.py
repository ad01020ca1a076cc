"""ask() end to end with a real small model (SmolLM2-135M on llama.cpp via xllamacpp) in
plan mode: structured-output plan, tools run here, a streamed answer, verification.
Asserts protocol and validity, not wisdom: a 135M model's answers are mostly noise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_llm import LocalLLM, LocalLLMUnavailable

from features.run import Run
from steering.ask import EvidenceIndex, ask
from steering.ask.refs import find_refs
from steering.ask.verify import UNSUPPORTED
from steering.llm import LLMConfig, call_log_path


@pytest.fixture(scope="module")
def local_llm() -> Iterator[LocalLLM]:
    try:
        with LocalLLM() as llm:
            yield llm
    except LocalLLMUnavailable as exc:
        print(f"\nlocal model test skipped: {exc}")
        pytest.skip(str(exc))


def test_plan_path_end_to_end(local_llm: LocalLLM, sample: Callable[[str], Path],
                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(tmp_path))
    run = Run(sample("exception"))
    run.load()
    cfg = LLMConfig(base_url=local_llm.base_url, model="smollm2-135m", timeout_s=120,
                    max_retries=0, max_tokens=512, token_budget=12000, mode="plan")
    progress: list[tuple[str, str]] = []
    a = ask(run, "What failed in this run?", cfg,
            progress=lambda k, t: progress.append((k, t)))

    assert (a.backend, a.mode) == ("llm", "plan"), a.fallback_reason
    # A 135M model's answer usually loses facts: then the analyst's answer follows it.
    assert a.fallback_reason is None or (
        a.fallback_reason.startswith("the model's answer lost facts")
        and "The built-in analyst's answer (" in a.text), a.fallback_reason
    log = [json.loads(line) for line in call_log_path().read_text().splitlines()]
    assert [(e["prompt"], e["outcome"], e["response_format"], e["stream"]) for e in log] == [
        ("ask_plan", "ok", "json_schema", False), ("ask_answer", "ok", None, True)]
    assert log[0]["finish_reason"] == "stop", "the plan's JSON was cut off"
    assert a.steps and any(s["ok"] for s in a.steps)
    assert a.usage["calls"] == 2 and a.usage["completion_tokens"] > 0
    # What is left in the text is valid; everything removed or flagged is said.
    index = EvidenceIndex(run)
    assert all(index.resolve(ref).valid for _, _, refs in find_refs(a.text) for ref in refs)
    unsupported = [n for n in a.numbers if not n.supported]
    assert a.text.count(UNSUPPORTED) >= len(unsupported)
    if unsupported:
        assert any("number(s) do not appear" in n for n in a.notes)
    if not a.valid_citations:
        assert any("cites no evidence" in n for n in a.notes)
    deltas = "".join(t for k, t in progress if k == "delta")
    assert deltas == a.raw_text


def test_kinds_mode_end_to_end(local_llm: LocalLLM, sample: Callable[[str], Path],
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default for small local models: the analyst reads the kind when it can (no model
    call), the model picks it from an enum when it cannot; asked to phrase, every number of
    the phrasing is a fact or marked."""
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(tmp_path))
    run = Run(sample("exception"))
    run.load()
    cfg = LLMConfig(base_url=local_llm.base_url, model="smollm2-135m", timeout_s=120,
                    max_retries=0, max_tokens=512, token_budget=12000)
    assert cfg.resolved_mode == "kinds" and not cfg.phrase
    plain = ask(run, "How many agents were launched?", cfg)
    assert (plain.backend, plain.mode, plain.kind, plain.usage.get("calls", 0)) == (
        "builtin", "kinds", "counts", 0)
    assert not call_log_path().exists()
    progress: list[tuple[str, str]] = []
    a = ask(run, "How many agents were launched?", cfg.replace(phrase=True),
            progress=lambda k, t: progress.append((k, t)))
    assert (a.mode, a.kind) == ("kinds", "counts")
    assert a.usage["calls"] == 1
    log = [json.loads(line) for line in call_log_path().read_text().splitlines()]
    assert [(e["prompt"], e["outcome"], e["stream"]) for e in log] == [
        ("ask_phrase", "ok", True)]
    # The analyst's answer with its evidence is always there, whatever the model wrote.
    assert "2 agents launched" in a.text and a.valid_citations
    assert a.facts and a.facts[0].text == "2 agents"
    lead = a.text.split("\n\n")[0] if a.fallback_reason is None else ""
    for tok in re.findall(r"(?<![\w.+\[:<-])\d+(?:\.\d+)?", lead):
        assert any(tok in f.text for f in a.facts), (tok, lead)

    b = ask(run, "zorp the frobnicator?", cfg)
    assert b.mode == "kinds" and b.usage["calls"] in (1, 2)
    log = [json.loads(line) for line in call_log_path().read_text().splitlines()]
    route = next(e for e in log if e["prompt"] == "ask_route")
    assert route["response_format"] == "json_schema" and route["finish_reason"] == "stop"
    assert any("chosen by the model" in n for n in b.notes)
