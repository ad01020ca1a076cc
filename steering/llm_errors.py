"""Any failure of an LLM call as one :class:`~steering.llm_config.LLMError`: a ``kind``
and a one-line message without the key (:func:`as_llm_error`).

Apart from :mod:`steering.llm` (the client) because sorting the openai and httpx
exceptions into kinds, and keeping the key out of every message, is its own checklist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steering.llm_config import ErrorKind, LLMConfig, LLMError, redact

if TYPE_CHECKING:
    # Imported when a failure is wrapped: openai and httpx load with the first client
    # (see steering.llm), never with this module.
    import openai


def as_llm_error(exc: Exception, config: LLMConfig, tries: int) -> LLMError:
    """``exc`` as an :class:`LLMError`, one line, without ``config``'s key; ``tries``: the
    HTTP requests the call made (named in the message when more than one)."""
    import httpx
    import openai

    if isinstance(exc, LLMError):
        return exc
    key = config.api_key
    after = f" after {tries} attempt{'s' if tries != 1 else ''}" if tries > 1 else ""
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", f"no reply within {config.timeout_s:g} s{after}")
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


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message
