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

Its parts live beside it: replies (:mod:`steering.llm_reply`), structured-output schemas
(:mod:`steering.llm_schema`), failures as :class:`LLMError` (:mod:`steering.llm_errors`) and
the call log (:mod:`steering.llm_calllog`); their public names stay importable from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from steering.llm_calllog import Call, Message, PromptRef, record_call
from steering.llm_config import (
    BudgetExceeded,
    LLMConfig,
    LLMError,
    TokenBudget,
    Usage,
    call_log,
    call_log_path,
    estimate_tokens,
)
from steering.llm_errors import as_llm_error
from steering.llm_reply import ChatResult, StreamAccumulator, ToolCall, completion_result
from steering.llm_schema import json_schema_format, unbounded_strings

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

_PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, the openai client insists on one


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
            result = completion_result(completion, call.started)
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
        acc = StreamAccumulator()
        stream: Any = None
        try:
            stream = self._client.chat.completions.create(
                **self._request(call, tool_choice), stream=True,
                stream_options={"include_usage": True})
            for chunk in stream:
                delta = acc.add(chunk)
                if delta:
                    yield delta
            result = acc.result(estimate_tokens(call.messages, call.tools,
                                                call.response_format), call.started)
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
               prompt: PromptRef | None, budget: TokenBudget | None, stream: bool) -> Call:
        call = Call(prompt, messages, tools, response_format,
                    max_tokens or self.config.max_tokens, stream, budget or self.budget)
        self._attempts.n = 0
        try:
            call.budget.check(estimate_tokens(messages, tools, response_format),
                              call.max_tokens)
        except BudgetExceeded as exc:
            self._record(call, None, "budget", exc)
            raise
        return call

    def _request(self, call: Call, tool_choice: str | dict[str, Any] | None) -> dict[str, Any]:
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

    def _fail(self, call: Call, exc: Exception) -> LLMError:
        err = self._wrap(exc)
        if err.kind == "bad_response":
            # The server read the prompt before it answered badly: that much was spent.
            call.budget.charge(Usage(estimate_tokens(call.messages, call.tools,
                                                     call.response_format), 0, estimated=True))
        self._record(call, None, err.kind, err)
        return err

    def _finish(self, call: Call, result: ChatResult) -> None:
        call.budget.charge(result.usage)
        self._record(call, result, "ok", None)

    def _wrap(self, exc: Exception) -> LLMError:
        """Any failure as an :class:`LLMError`, one line, without the key."""
        return as_llm_error(exc, self.config, getattr(self._attempts, "n", 0))

    def _record(self, call: Call, result: ChatResult | None, outcome: str,
                error: LLMError | None) -> None:
        """The per-call log record and call-log line: sizes and hashes, never content."""
        record_call(self.config, call, result, outcome, error,
                    getattr(self._attempts, "n", 0))
