"""What one LLM call returned (:class:`ChatResult`, and its tool calls), read from a
whole completion (:func:`completion_result`) or from a stream's chunks
(:class:`StreamAccumulator`).

Apart from :mod:`steering.llm` (the client: budgets, retries, the call log) because reading
a reply checks the server's objects field by field, a job of its own: the openai client does
not validate replies, so a wrong shape shows up as missing attributes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from steering.llm_config import LLMError, Usage, estimate_tokens, redact


class ToolCall(NamedTuple):
    """A tool call the model asked for; ``arguments`` is the JSON text exactly as sent."""

    id: str
    name: str
    arguments: str

    def parse(self, allowed: Collection[str] | None = None) -> dict[str, Any]:
        """The arguments as a dict. Raises ``LLMError("bad_response")`` when the tool is not
        in ``allowed`` or the arguments are not a JSON object: models invent both."""
        if allowed is not None and self.name not in allowed:
            raise LLMError("bad_response", redact(f"call to unknown tool {self.name[:64]!r}"))
        try:
            args = json.loads(self.arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            raise LLMError("bad_response", f"tool {self.name[:64]!r}: arguments are not a "
                                           f"JSON object ({len(self.arguments)} chars)")
        return args


@dataclass(frozen=True)
class ChatResult:
    """What one call returned."""

    content: str
    """The text ("" when the model only called tools)."""
    tool_calls: list[ToolCall]
    finish_reason: str | None
    """``stop``, ``length`` (cut at ``max_tokens``), ``tool_calls``, ... as the server said."""
    usage: Usage
    model: str
    """The model the server says answered."""
    elapsed_s: float
    """Wall time of the call, retries included."""

    def json(self) -> Any:
        """``content`` parsed as JSON (the structured-output path). Raises
        ``LLMError("bad_response")`` when it is not JSON or was cut off at ``max_tokens``."""
        if self.finish_reason == "length":
            raise LLMError("bad_response", f"reply cut off at max_tokens "
                                           f"({self.usage.completion_tokens} tokens)")
        try:
            return json.loads(self.content)
        except json.JSONDecodeError as exc:
            raise LLMError("bad_response", f"reply is not JSON: {exc.msg} at char {exc.pos}") \
                from None


def completion_result(completion: Any, started: float) -> ChatResult:
    """A non-streamed completion, checked field by field (the openai client does not
    validate replies, so a wrong shape shows up as missing attributes)."""
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices in the reply")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise ValueError("no message in the first choice")
    content = getattr(message, "content", None) or ""
    if not isinstance(content, str):
        raise ValueError("message content is not text")
    calls = []
    for tc in getattr(message, "tool_calls", None) or ():
        fn = getattr(tc, "function", None)
        name, args = getattr(fn, "name", None), getattr(fn, "arguments", None)
        if not isinstance(name, str) or not isinstance(args, str):
            raise ValueError("tool call without a function name and arguments")
        calls.append(ToolCall(str(getattr(tc, "id", "") or ""), name, args))
    return ChatResult(content, calls, getattr(choices[0], "finish_reason", None),
                      reply_usage(getattr(completion, "usage", None), content),
                      str(getattr(completion, "model", "") or ""),
                      time.monotonic() - started)


def reply_usage(usage: Any, content: str, prompt_estimate: int = 0) -> Usage:
    """The server's token counts, or an estimate when it sent none."""
    p, c = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if isinstance(p, int) and isinstance(c, int):
        return Usage(p, c)
    return Usage(prompt_estimate, estimate_tokens([{"content": content}]), estimated=True)


class StreamAccumulator:
    """Chunks -> text deltas, and at the end the whole :class:`ChatResult`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.model = ""

    def add(self, chunk: Any) -> str:
        """Take one chunk in; the text it adds (maybe "")."""
        self.model = str(getattr(chunk, "model", "") or self.model)
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        text = []
        for choice in getattr(chunk, "choices", None) or ():
            self.finish_reason = getattr(choice, "finish_reason", None) or self.finish_reason
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            if getattr(delta, "content", None):
                text.append(str(delta.content))
            for tc in getattr(delta, "tool_calls", None) or ():
                slot = self.calls.setdefault(int(getattr(tc, "index", 0) or 0), ["", "", ""])
                slot[0] = str(getattr(tc, "id", None) or slot[0])
                fn = getattr(tc, "function", None)
                slot[1] += str(getattr(fn, "name", None) or "")
                slot[2] += str(getattr(fn, "arguments", None) or "")
        self.parts.extend(text)
        return "".join(text)

    def result(self, prompt_estimate: int, started: float) -> ChatResult:
        """Everything received, as one result (``prompt_estimate``: the prompt's tokens when
        the server sent no usage; ``started``: when the call began, by ``time.monotonic``)."""
        content = "".join(self.parts)
        calls = [ToolCall(*cast(tuple[str, str, str], tuple(v)))
                 for _, v in sorted(self.calls.items())]
        if any(not c.name for c in calls):
            raise ValueError("streamed tool call without a function name")
        return ChatResult(content, calls, self.finish_reason,
                          reply_usage(self.usage, content, prompt_estimate), self.model,
                          time.monotonic() - started)
