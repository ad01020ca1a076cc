"""The two ways a model answers: a tool-calling loop, or a structured-output plan.

Both take the question, the run summary and a :class:`~steering.ask.tools.Toolbox`, and
return the model's answer text; the tool results the model saw stay in the toolbox for
the verifier. Every failure is an :class:`~steering.llm.LLMError` (the engine falls back
to the built-in analyst and says why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import prompts
from steering.ask.questions import Reading
from steering.ask.schema import errors as schema_errors
from steering.ask.tools import Toolbox, ToolResult
from steering.llm import ChatResult, LLMClient, LLMError, Message, json_schema_format

__all__ = ["AskLimits", "ModelAnswer", "Progress", "default_calls", "plan_answer",
           "tools_answer"]

Progress = Callable[[str, str], None]
"""``progress(kind, text)``: ``delta`` (answer text as it streams), ``status`` (what is
happening) or ``restart`` (forget the text streamed so far: a new model turn begins)."""


@dataclass(frozen=True)
class AskLimits:
    """How much one question may show a model and ask of the tools."""

    summary_chars: int = 4000
    result_chars: int = 6000
    """Cap on one tool result's JSON."""
    results_chars: int = 16000
    """Cap on all tool results together in the plan path's answer prompt."""
    max_rounds: int = 4
    """Tool-calling rounds before the model must answer."""
    max_calls: int = 8
    """Tool calls per question."""
    plan_calls: int = 3
    """Calls a plan may hold."""
    brief_tools: bool = False
    """Describe the tools in a few words each (plan prompts for small contexts)."""
    answer_tokens: int | None = None
    """Cap on the answer's completion tokens (``None``: the config's ``max_tokens``)."""

    @classmethod
    def compact(cls) -> AskLimits:
        """For small local models (2k-token contexts)."""
        return cls(summary_chars=1100, result_chars=1200, results_chars=2000,
                   max_rounds=2, max_calls=3, plan_calls=2, brief_tools=True,
                   answer_tokens=300)


@dataclass(frozen=True)
class ModelAnswer:
    """What a model wrote, and the tool data it was shown (what it may cite and quote)."""

    text: str
    seen: str
    cut: bool = False
    """The answer stopped at its token limit (``finish_reason == "length"``)."""


def _quiet(kind: str, text: str) -> None:
    pass


def _stream(client: LLMClient, messages: Sequence[Message], progress: Progress,
            **kw: Any) -> ChatResult:
    """One streamed call: deltas go to ``progress``, the whole result comes back."""
    result: ChatResult | None = None
    for item in client.stream_chat(messages, **kw):
        if isinstance(item, str):
            progress("delta", item)
        else:
            result = item
    if result is None:  # pragma: no cover - stream_chat always ends with a result
        raise LLMError("bad_response", "the stream ended without a result")
    return result


def _tool_message(call_id: str, result: ToolResult) -> Message:
    p = prompts.load("ask_tool_result")
    return {"role": "tool", "tool_call_id": call_id,
            "content": p.render(tool=result.tool, result=result.to_json())}


def tools_answer(client: LLMClient, toolbox: Toolbox, r: Reading, summary: str,
                 history: Sequence[Message] = (), limits: AskLimits = AskLimits(),
                 progress: Progress = _quiet) -> ModelAnswer:
    """The tool-calling loop: the model calls tools (at most ``limits.max_calls`` over
    ``limits.max_rounds`` rounds), then answers; the answer streams to ``progress``."""
    system, user = prompts.load("ask_system"), prompts.load("ask_tools")
    messages: list[Message] = [
        {"role": "system", "content": system.render()}, *history,
        {"role": "user", "content": user.render(question=r.text, summary=summary,
                                                max_calls=limits.max_calls)}]
    specs = toolbox.specs()
    calls = 0
    for round_ in range(limits.max_rounds + 1):
        last = round_ == limits.max_rounds or calls >= limits.max_calls
        if round_:
            progress("restart", "")
        res = _stream(client, messages, progress, tools=specs,
                      tool_choice="none" if last else "auto", prompt=(user.name, user.hash))
        seen = "\n".join(r.to_json() for r in toolbox.results)
        cut = res.finish_reason == "length"
        if not res.tool_calls:
            if not res.content.strip():
                raise LLMError("bad_response", "the model returned an empty answer")
            return ModelAnswer(res.content, seen, cut)
        if last:
            if res.content.strip():
                return ModelAnswer(res.content, seen, cut)
            raise LLMError("bad_response", f"the model still asked for tools after "
                                           f"{round_} rounds and wrote no answer")
        ids = [tc.id or f"call_{round_}_{i}" for i, tc in enumerate(res.tool_calls)]
        messages.append({"role": "assistant", "content": res.content or None, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": tc.name,
                                                       "arguments": tc.arguments}}
            for i, tc in zip(ids, res.tool_calls, strict=True)]})
        for call_id, tc in zip(ids, res.tool_calls, strict=True):
            if calls >= limits.max_calls:
                result = ToolResult(tc.name[:64], {}, False, error=(
                    f"tool call limit ({limits.max_calls}) reached: answer with what you have"))
            else:
                progress("status", f"looking up {tc.name[:64]}…")
                result = toolbox.call(tc.name, tc.arguments)
                calls += 1
            messages.append(_tool_message(call_id, result))
    raise AssertionError("unreachable")  # pragma: no cover


def default_calls(r: Reading, toolbox: Toolbox) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the built-in analyst would make for this kind of question: used
    when a model's plan gives nothing usable."""
    kind, expected = r.kind, r.expected_s
    if kind == "slowest":
        return [("list_things", {"kind": "actions", "sort": "total_s", "limit": 5}),
                ("group_stats", {})]
    if kind == "errors":
        return [("query_events", {"where": "levelno>=40 or exc_text!=None", "limit": 5}),
                ("list_things", {"kind": "actions", "status": "exception"})]
    if kind == "concurrency":
        return [("concurrency", {"what": "executing"})]
    if kind == "hung":
        return [("anomalies", {})]
    if kind == "agent_at":
        who, when = r.agent, r.time_s
        if who is not None and when is not None:
            return [("events_at", {"agent": who, "time_s": when})]
    if kind == "compare":
        names = r.run_refs
        other = names[0] if names else (toolbox.others[0].uuid if toolbox.others else None)
        if other:
            return [("diff_run", {"other": other})]
    args = {"expected_s": expected} if expected is not None else {}
    return [("where_time_went", args), ("anomalies", {})]


def plan_answer(client: LLMClient, toolbox: Toolbox, r: Reading, summary: str,
                limits: AskLimits = AskLimits(), progress: Progress = _quiet,
                notes: list[str] | None = None) -> ModelAnswer:
    """A plan of tool calls as structured output (JSON schema), run here, then an answer
    written from the results; the answer streams to ``progress``. What went wrong with
    the plan is appended to ``notes``."""
    notes = notes if notes is not None else []
    system, plan_p, answer_p = (prompts.load(n) for n in ("ask_system", "ask_plan",
                                                         "ask_answer"))
    schema = toolbox.plan_schema(limits.plan_calls)
    progress("status", "planning…")
    res = client.chat(
        [{"role": "system", "content": system.render()},
         {"role": "user", "content": plan_p.render(question=r.text, summary=summary,
                                                   tools=toolbox.describe(
                                                       brief=limits.brief_tools),
                                                   max_calls=limits.plan_calls)}],
        response_format=json_schema_format("ask_plan", schema),
        prompt=(plan_p.name, plan_p.hash))
    plan = res.json()
    if not isinstance(plan, dict) or not isinstance(plan.get("calls"), list):
        raise LLMError("bad_response", "the plan is not an object with a list of calls")
    problems = schema_errors(plan, schema, limit=3)
    if problems:
        notes.append("The model's plan did not fully match its schema: "
                     + "; ".join(problems) + ".")
    for call in plan["calls"][: limits.plan_calls]:
        if not isinstance(call, dict):
            continue
        name = str(call.get("tool", ""))
        progress("status", f"looking up {name[:64]}…")
        args = call.get("arguments")
        toolbox.call(name, args if isinstance(args, dict) else {})
    if not any(r.ok for r in toolbox.results):
        if plan["calls"]:
            notes.append("None of the model's planned tool calls worked; the answer uses "
                         "the tools the built-in analyst would use.")
        for name, args in default_calls(r, toolbox):
            toolbox.call(name, args)
    results = _joined(toolbox.results, limits.results_chars)
    progress("restart", "")
    out = _stream(client, [
        {"role": "system", "content": system.render()},
        {"role": "user", "content": answer_p.render(question=r.text, summary=summary,
                                                    results=results)}],
        progress, prompt=(answer_p.name, answer_p.hash), max_tokens=limits.answer_tokens)
    if not out.content.strip():
        raise LLMError("bad_response", "the model returned an empty answer")
    return ModelAnswer(out.content, results, out.finish_reason == "length")


def _joined(results: Sequence[ToolResult], limit: int) -> str:
    """Tool results, one JSON per line, the successful ones first, within ``limit``."""
    lines: list[str] = []
    used = 0
    for r in sorted(results, key=lambda r: not r.ok):
        text = r.to_json()
        if used + len(text) > limit:
            text = text[: max(0, limit - used - 20)] + "…(cut)"
        lines.append(text)
        used += len(text) + 1
        if used >= limit:
            break
    return "\n".join(lines)
