"""What one LLM call is about (:class:`Call`) and its log line (:func:`record_call`): a
record on the ``academy_tui.llm`` logger and a JSON line in the call log, with sizes and
hashes of what was sent and received, never the key, never the content.

Apart from :mod:`steering.llm` (the client) because what a call log line holds, and what
it must never hold, is read and reviewed on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from steering.llm_config import LLMConfig, LLMError, TokenBudget, call_log
from steering.llm_reply import ChatResult

log = logging.getLogger("academy_tui.llm")

Message = dict[str, Any]
"""A chat message as the API takes it: ``{"role": "user", "content": "..."}``."""
PromptRef = tuple[str, str]
"""``(prompt name, prompt hash)`` of the template a call was built from, for the log."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Call:
    """What one call is about, gathered for its log line."""

    prompt: PromptRef | None
    messages: Sequence[Message]
    tools: Sequence[dict[str, Any]] | None
    response_format: dict[str, Any] | None
    max_tokens: int
    stream: bool
    budget: TokenBudget
    started: float = field(default_factory=time.monotonic)


def record_call(config: LLMConfig, call: Call, result: ChatResult | None, outcome: str,
                error: LLMError | None, attempts: int) -> None:
    """The per-call log record and call-log line: sizes and hashes, never content.
    ``attempts``: how many HTTP requests the call made (retries included)."""
    request = json.dumps(list(call.messages), ensure_ascii=False, default=str)
    entry: dict[str, Any] = {
        "ts": time.time(),
        "prompt": call.prompt[0] if call.prompt else None,
        "prompt_hash": call.prompt[1] if call.prompt else None,
        "model": config.model,
        "server": _host(config.base_url),
        "stream": call.stream,
        "messages": len(call.messages),
        "request_chars": len(request),
        "request_sha": _sha(request),
        "tools": [str(t.get("function", {}).get("name", "?")) for t in call.tools or ()],
        "response_format": (call.response_format or {}).get("type"),
        "max_tokens": call.max_tokens,
        "attempts": attempts,
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
    if config.log_calls:
        call_log(entry)


def _host(base_url: str | None) -> str:
    return (urlsplit(base_url).hostname or "?") if base_url else "api.openai.com"
