"""The LLM client: one OpenAI-compatible chat-completions call at a time, with limits.

:class:`LLMClient` wraps the official ``openai.OpenAI`` client (httpx underneath). Retries with
exponential back-off on 408/409/429/5xx, connection errors and time-outs are the openai
client's own (``max_retries``; it honours ``retry-after``/``retry-after-ms`` up to 2 min);
``timeout_s`` bounds each attempt, so a call can take up to about
``(max_retries + 1) * timeout_s`` plus the back-off. Every failure surfaces as one
:class:`LLMError` with a ``kind`` and a one-line, key-free message.

A :class:`TokenBudget` caps the tokens one question may spend across its calls; a call that
could overrun it (estimated prompt + ``max_tokens``) is refused before it is sent.

Each call is logged: a record on the ``academy_tui.llm`` logger and a JSON line in
:func:`call_log_path` (prompt name and hash, model, sizes and hashes of what was sent and
received, tokens, time, attempts, outcome). Never the key, never the content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import urlsplit

from steering.llm_config import (
    BudgetExceeded,
    ErrorKind,
    LLMConfig,
    LLMError,
    TokenBudget,
    Usage,
    call_log,
    call_log_path,
    estimate_tokens,
    redact,
)

__all__ = [
    "BudgetExceeded", "ChatResult", "LLMClient", "LLMConfig", "LLMError", "Message",
    "TokenBudget", "ToolCall", "Usage", "call_log", "call_log_path", "estimate_tokens",
    "json_schema_format", "unbounded_strings",
]

if TYPE_CHECKING:
    # Imported when the first client is made: openai takes ~0.5 s to import, and importing
    # httpx drags in rich (its CLI) when rich and click are installed, as they are next to
    # textual. Importing this module stays cheap and UI-free.
    import httpx
    import openai

log = logging.getLogger("academy_tui.llm")

Message = dict[str, Any]
"""A chat message as the API takes it: ``{"role": "user", "content": "..."}``."""
PromptRef = tuple[str, str]
"""``(prompt name, prompt hash)`` of the template a call was built from, for the log."""

_PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, the openai client insists on one


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def json_schema_format(name: str, schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """``response_format`` asking for JSON matching ``schema``. Raises ``ValueError`` when a
    string in it has neither ``maxLength`` nor ``enum``: small models can loop inside an
    unbounded string until ``max_tokens`` and return cut-off JSON."""
    loose = unbounded_strings(schema)
    if loose:
        raise ValueError(f"schema {name!r}: strings without maxLength or enum at "
                         + ", ".join(loose))
    return {"type": "json_schema",
            "json_schema": {"name": name, "strict": strict, "schema": schema}}


def unbounded_strings(schema: Any, path: str = "$") -> list[str]:
    """JSON paths of ``type: string`` schemas in ``schema`` with neither maxLength nor enum."""
    if isinstance(schema, list):
        return [p for i, s in enumerate(schema) for p in unbounded_strings(s, f"{path}[{i}]")]
    if not isinstance(schema, dict):
        return []
    types = schema.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    found = [path] if is_string and not {"maxLength", "enum", "const"} & set(schema) else []
    for key, sub in schema.items():
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(sub, dict):
                found += [p for k, s in sub.items() for p in unbounded_strings(s, f"{path}.{k}")]
        elif isinstance(sub, dict | list) and key not in ("enum", "const", "required"):
            found += unbounded_strings(sub, f"{path}.{key}")
    return found


@dataclass
class _Call:
    """What one call is about, gathered for its log line."""

    prompt: PromptRef | None
    messages: Sequence[Message]
    tools: Sequence[dict[str, Any]] | None
    response_format: dict[str, Any] | None
    max_tokens: int
    stream: bool
    budget: TokenBudget
    started: float = field(default_factory=time.monotonic)


class LLMClient:
    """Chat completions against the server ``config`` names, within ``config``'s limits.

    Thread-safe: the openai client is, and budgets lock. ``http_client`` is for tests and
    proxies; by default the openai client's own httpx settings are used.
    """

    def __init__(self, config: LLMConfig, *, http_client: httpx.Client | None = None) -> None:
        self.config = config
        """The settings this client was made with."""
        self.budget = TokenBudget(config.token_budget)
        """The budget of the current question; :meth:`new_budget` starts the next one."""
        import httpx
        import openai

        self._failures: tuple[type[Exception], ...] = (
            openai.OpenAIError, httpx.HTTPError, ValueError, TypeError, AttributeError)
        """What a call can raise because of the server or its reply (our bugs propagate)."""
        self._attempts = threading.local()
        hooks = {"request": [self._count_attempt]}
        if http_client is None:
            http_client = openai.DefaultHttpxClient(event_hooks=hooks)
        else:
            http_client.event_hooks["request"].append(self._count_attempt)
        self._client = openai.OpenAI(
            api_key=config.api_key or _PLACEHOLDER_KEY,
            # Explicit, so the openai client never picks up OPENAI_BASE_URL behind our back.
            base_url=config.base_url or "https://api.openai.com/v1",
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"LLMClient({self.config!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_budget(self, total: int | None = None) -> TokenBudget:
        """Start a new question: a fresh :attr:`budget` of ``total`` (default the config's)."""
        self.budget = TokenBudget(total or self.config.token_budget)
        return self.budget

    def _count_attempt(self, request: httpx.Request) -> None:
        # httpx runs request hooks once per attempt, in the calling thread.
        self._attempts.n = getattr(self._attempts, "n", 0) + 1

    # -- calls ----------------------------------------------------------------------------

    def chat(self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None,
             tool_choice: str | dict[str, Any] | None = None,
             response_format: dict[str, Any] | None = None, max_tokens: int | None = None,
             prompt: PromptRef | None = None, budget: TokenBudget | None = None) -> ChatResult:
        """One completion. Raises :class:`LLMError` (``BudgetExceeded`` when over budget)."""
        call = self._begin(messages, tools, response_format, max_tokens, prompt, budget,
                           stream=False)
        try:
            completion = self._client.chat.completions.create(
                **self._request(call, tool_choice))
            result = _result(completion, call.started)
        except self._failures as exc:
            raise self._fail(call, exc) from None
        self._finish(call, result)
        return result

    def stream_chat(self, messages: Sequence[Message],
                    tools: Sequence[dict[str, Any]] | None = None,
                    tool_choice: str | dict[str, Any] | None = None,
                    response_format: dict[str, Any] | None = None,
                    max_tokens: int | None = None, prompt: PromptRef | None = None,
                    budget: TokenBudget | None = None) -> Iterator[str | ChatResult]:
        """Like :meth:`chat`, streamed: yields text deltas (``str``) as they arrive, then the
        final :class:`ChatResult` (whole content, tool calls reassembled, usage) last.

        ``timeout_s`` bounds each wait for the next chunk, not the whole stream. Closing the
        generator early closes the connection (logged as ``cancelled``).
        """
        call = self._begin(messages, tools, response_format, max_tokens, prompt, budget,
                           stream=True)
        acc = _StreamAccumulator()
        stream: Any = None
        try:
            stream = self._client.chat.completions.create(
                **self._request(call, tool_choice), stream=True,
                stream_options={"include_usage": True})
            for chunk in stream:
                delta = acc.add(chunk)
                if delta:
                    yield delta
            result = acc.result(call)
        except GeneratorExit:
            self._record(call, None, "cancelled", None)
            raise
        except self._failures as exc:
            raise self._fail(call, exc) from None
        finally:
            if stream is not None:
                stream.close()
        self._finish(call, result)
        yield result

    # -- plumbing -------------------------------------------------------------------------

    def _begin(self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None,
               response_format: dict[str, Any] | None, max_tokens: int | None,
               prompt: PromptRef | None, budget: TokenBudget | None, stream: bool) -> _Call:
        call = _Call(prompt, messages, tools, response_format,
                     max_tokens or self.config.max_tokens, stream, budget or self.budget)
        self._attempts.n = 0
        try:
            call.budget.check(estimate_tokens(messages, tools, response_format),
                              call.max_tokens)
        except BudgetExceeded as exc:
            self._record(call, None, "budget", exc)
            raise
        return call

    def _request(self, call: _Call, tool_choice: str | dict[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(call.messages),
            "max_tokens": call.max_tokens,
            "temperature": self.config.temperature,
        }
        if call.tools:
            kwargs["tools"] = list(call.tools)
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        if call.response_format is not None:
            kwargs["response_format"] = call.response_format
        return kwargs

    def _fail(self, call: _Call, exc: Exception) -> LLMError:
        err = self._wrap(exc)
        if err.kind == "bad_response":
            # The server read the prompt before it answered badly: that much was spent.
            call.budget.charge(Usage(estimate_tokens(call.messages, call.tools,
                                                     call.response_format), 0, estimated=True))
        self._record(call, None, err.kind, err)
        return err

    def _finish(self, call: _Call, result: ChatResult) -> None:
        call.budget.charge(result.usage)
        self._record(call, result, "ok", None)

    def _wrap(self, exc: Exception) -> LLMError:
        """Any failure as an :class:`LLMError`, one line, without the key."""
        import httpx
        import openai

        if isinstance(exc, LLMError):
            return exc
        key = self.config.api_key
        tries = getattr(self._attempts, "n", 0)
        after = f" after {tries} attempt{'s' if tries != 1 else ''}" if tries > 1 else ""
        if isinstance(exc, openai.APITimeoutError):
            return LLMError("timeout", f"no reply within {self.config.timeout_s:g} s{after}")
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            cause = exc.__cause__ or exc
            return LLMError("connection", redact(f"cannot reach the LLM server{after}: "
                                                 f"{type(cause).__name__}: {cause}", key))
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            kind: ErrorKind = (
                "auth" if code in (401, 403) else "rate_limited" if code == 429
                else "timeout" if code == 408 else "server" if code >= 500 else "bad_request")
            return LLMError(kind, redact(f"HTTP {code}{after}: {_server_message(exc)}", key),
                            status=code)
        # Any other failure: a body that is not JSON (JSONDecodeError), an error event in a
        # stream (APIError), or an object without the fields of a completion.
        return LLMError("bad_response", redact(f"malformed reply: {type(exc).__name__}: {exc}",
                                               key))

    def _record(self, call: _Call, result: ChatResult | None, outcome: str,
                error: LLMError | None) -> None:
        """The per-call log record and call-log line: sizes and hashes, never content."""
        request = json.dumps(list(call.messages), ensure_ascii=False, default=str)
        entry: dict[str, Any] = {
            "ts": time.time(),
            "prompt": call.prompt[0] if call.prompt else None,
            "prompt_hash": call.prompt[1] if call.prompt else None,
            "model": self.config.model,
            "server": _host(self.config.base_url),
            "stream": call.stream,
            "messages": len(call.messages),
            "request_chars": len(request),
            "request_sha": _sha(request),
            "tools": [str(t.get("function", {}).get("name", "?")) for t in call.tools or ()],
            "response_format": (call.response_format or {}).get("type"),
            "max_tokens": call.max_tokens,
            "attempts": getattr(self._attempts, "n", 0),
            "elapsed_s": round(time.monotonic() - call.started, 4),
            "outcome": outcome,
            "error": str(error) if error else None,
            "budget_spent": call.budget.spent,
            "budget_total": call.budget.total,
        }
        if result is not None:
            entry.update({
                "response_model": result.model,
                "finish_reason": result.finish_reason,
                "response_chars": len(result.content),
                "response_sha": _sha(result.content),
                "tool_calls": [tc.name[:64] for tc in result.tool_calls],
                "usage": result.usage.as_dict(),
            })
        name = f"{entry['prompt']}#{entry['prompt_hash']}" if call.prompt else "(no prompt)"
        usage = result.usage if result else None
        log.log(logging.INFO if outcome in ("ok", "cancelled") else logging.WARNING,
                "llm call %s model=%s outcome=%s tokens=%s+%s elapsed=%.2fs attempts=%d%s",
                name, entry["model"], outcome, usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0, entry["elapsed_s"], entry["attempts"],
                f" error={error}" if error else "", extra={"llm_call": entry})
        if self.config.log_calls:
            call_log(entry)


def _host(base_url: str | None) -> str:
    return (urlsplit(base_url).hostname or "?") if base_url else "api.openai.com"


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message


def _result(completion: Any, started: float) -> ChatResult:
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
                      _usage(getattr(completion, "usage", None), content),
                      str(getattr(completion, "model", "") or ""),
                      time.monotonic() - started)


def _usage(usage: Any, content: str, prompt_estimate: int = 0) -> Usage:
    """The server's token counts, or an estimate when it sent none."""
    p, c = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if isinstance(p, int) and isinstance(c, int):
        return Usage(p, c)
    return Usage(prompt_estimate, estimate_tokens([{"content": content}]), estimated=True)


class _StreamAccumulator:
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

    def result(self, call: _Call) -> ChatResult:
        """Everything received, as one result."""
        content = "".join(self.parts)
        calls = [ToolCall(*cast(tuple[str, str, str], tuple(v)))
                 for _, v in sorted(self.calls.items())]
        if any(not c.name for c in calls):
            raise ValueError("streamed tool call without a function name")
        estimate = estimate_tokens(call.messages, call.tools, call.response_format)
        return ChatResult(content, calls, self.finish_reason,
                          _usage(self.usage, content, estimate), self.model,
                          time.monotonic() - call.started)
