"""Where the LLM lives and what bounds a call: :class:`LLMConfig`, the per-question
:class:`TokenBudget`, :class:`LLMError`, the call log file, and keeping the key secret.

Precedence, lowest first: the defaults below, ``[llm]`` in
``$XDG_CONFIG_HOME/academy-tui/config.toml`` (``~/.config/...`` without XDG), the
environment, then explicit arguments to :meth:`LLMConfig.load`.

========================================  ==================================
environment variable                      field
========================================  ==================================
``OPENAI_API_KEY``                        ``api_key``
``OPENAI_BASE_URL``                       ``base_url``
``ACADEMY_TUI_MODEL``                     ``model``
``ACADEMY_TUI_LLM_TIMEOUT``               ``timeout_s``
``ACADEMY_TUI_LLM_MAX_RETRIES``           ``max_retries``
``ACADEMY_TUI_LLM_MAX_TOKENS``            ``max_tokens``
``ACADEMY_TUI_LLM_TOKEN_BUDGET``          ``token_budget``
``ACADEMY_TUI_LLM_TEMPERATURE``           ``temperature``
``ACADEMY_TUI_LLM_MODE``                  ``mode``
``ACADEMY_TUI_LLM_LOG_CALLS``             ``log_calls`` (0/1)
``ACADEMY_TUI_LLM_PHRASE``                 ``phrase`` (0/1)
========================================  ==================================

The TOML keys are the field names. The key is best kept in the environment, not the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import re
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "ENV", "MODES", "BudgetExceeded", "ErrorKind", "LLMConfig", "LLMError", "TokenBudget",
    "Usage", "call_log", "call_log_path", "config_path", "estimate_tokens", "redact",
    "redact_key", "scrub",
]

log = logging.getLogger("academy_tui.llm")
log.addHandler(logging.NullHandler())  # no "last resort" stderr lines under a TUI

Mode = Literal["auto", "tools", "plan", "kinds"]
MODES: tuple[str, ...] = ("auto", "tools", "plan", "kinds")

ENV: dict[str, str] = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "model": "ACADEMY_TUI_MODEL",
    "timeout_s": "ACADEMY_TUI_LLM_TIMEOUT",
    "max_retries": "ACADEMY_TUI_LLM_MAX_RETRIES",
    "max_tokens": "ACADEMY_TUI_LLM_MAX_TOKENS",
    "token_budget": "ACADEMY_TUI_LLM_TOKEN_BUDGET",
    "temperature": "ACADEMY_TUI_LLM_TEMPERATURE",
    "mode": "ACADEMY_TUI_LLM_MODE",
    "log_calls": "ACADEMY_TUI_LLM_LOG_CALLS",
    "phrase": "ACADEMY_TUI_LLM_PHRASE",
}
"""Field -> environment variable."""

# Names that say "a model small enough that tool calling is unreliable" (see shared/LLM.md):
# parameter counts up to ~3B ("135m", "0.5b", "1.5b", "3b"), GGUF files, known tiny families.
_SMALL_MODEL = re.compile(
    r"(?<![\d.])(\d{1,3}m|[0-3](\.\d+)?b)(?![a-z0-9])|gguf|smollm|tinyllama|phi-?[12]\b",
    re.IGNORECASE)
_LOCAL_HOSTS = {"localhost", "localhost.localdomain", "host.docker.internal"}


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/academy-tui/config.toml``, else ``~/.config/academy-tui/...``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "academy-tui" / "config.toml"


def redact_key(key: str | None) -> str:
    """A key as safe to show: ``sk-…abcd`` (last four only for long ``sk-`` keys), else ``***``."""
    if not key:
        return "None"
    if key.startswith("sk-") and len(key) >= 20:
        return f"sk-…{key[-4:]}"
    return "***"


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4,}|Bearer\s+\S+)")


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with each of ``secrets`` and anything key-shaped (``sk-...``, ``Bearer ...``)
    replaced by ``***``: for messages that quote a server's reply, which may echo the key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def redact(text: str, *secrets: str | None, limit: int = 300) -> str:
    """``text`` scrubbed of secrets, on one line, at most ``limit`` characters."""
    line = " ".join(scrub(text, *secrets).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _is_local(base_url: str | None) -> bool:
    if not base_url:
        return False
    host = (urlsplit(base_url).hostname or "").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, repr=False)
class LLMConfig:
    """How to reach an OpenAI-compatible chat-completions server, and the limits to keep."""

    base_url: str | None = None
    """``None`` means OpenAI's own API (``https://api.openai.com/v1``)."""
    api_key: str | None = None
    """Never shown: :meth:`__repr__` redacts it; local servers accept any placeholder."""
    model: str = "gpt-4o-mini"
    """Model name sent with every request."""
    timeout_s: float = 60.0
    """Per-attempt time-out (httpx: connect, read, write and pool) in seconds."""
    max_retries: int = 3
    """Retries after the first attempt, on 408/409/429/5xx and connection errors or time-outs."""
    max_tokens: int = 1024
    """Completion tokens per call, sent as ``max_tokens``."""
    token_budget: int = 8000
    """Prompt plus completion tokens allowed for one question, across all its calls."""
    temperature: float = 0.0
    """Sampling temperature; 0 keeps answers repeatable."""
    mode: Mode = "auto"
    """``"tools"``: a tool-calling loop; ``"plan"``: one structured-output (JSON schema) plan,
    then an answer; ``"kinds"``: the model picks the question's kind from an enum (only when
    the built-in analyst cannot tell) and phrases the analyst's facts by reference;
    ``"auto"``: see :attr:`resolved_mode`."""
    log_calls: bool = True
    """Append a line per call (sizes and hashes, no content) to the call log file."""
    phrase: bool = False
    """``kinds`` mode: have the model phrase the analyst's facts by reference, before the
    analyst's answer. Off by default: measured with Qwen2.5-Coder-0.5B, its phrasings put
    the right numbers on the wrong meaning ("next_item takes 8 calls")."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"llm mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        for name in ("timeout_s", "max_tokens", "token_budget"):
            if not getattr(self, name) > 0:
                raise ValueError(f"llm {name} must be positive, not {getattr(self, name)!r}")
        if self.max_retries < 0:
            raise ValueError(f"llm max_retries must be >= 0, not {self.max_retries!r}")

    def __repr__(self) -> str:
        shown = {f.name: repr(getattr(self, f.name)) for f in dataclasses.fields(self)}
        shown["api_key"] = redact_key(self.api_key)
        fields = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"LLMConfig({fields})"

    __str__ = __repr__

    @property
    def configured(self) -> bool:
        """Whether an LLM was set up at all; if not, the built-in analyst answers."""
        return bool(self.base_url or self.api_key)

    @property
    def is_local(self) -> bool:
        """Whether ``base_url`` points at this machine (llama.cpp, Ollama, vLLM, ...)."""
        return _is_local(self.base_url)

    @property
    def resolved_mode(self) -> Literal["tools", "plan", "kinds"]:
        """The mode to use: ``mode`` unless it is ``"auto"``, which means ``"kinds"`` when the
        model name looks small (``135m``, ``0.5b``..``3b``, ``gguf``, SmolLM, TinyLlama) or the
        server is on this machine (llama.cpp-style servers parse tool calls unreliably), and
        ``"tools"`` otherwise. Set ``mode`` explicitly to override."""
        if self.mode != "auto":
            return self.mode
        small = bool(_SMALL_MODEL.search(self.model))
        return "kinds" if small or self.is_local else "tools"

    def replace(self, **changes: Any) -> LLMConfig:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> LLMConfig:
        """Defaults < TOML ``[llm]`` at ``path`` (default :func:`config_path`) < ``env``
        (default ``os.environ``) < ``overrides`` (``None`` values are ignored, so CLI flags
        that were not given can be passed straight through).

        Raises ``ValueError`` (one line, key-free) for a malformed file or value.
        """
        values: dict[str, Any] = {}
        values.update(_from_toml(path or config_path()))
        values.update(_from_env(os.environ if env is None else env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown llm setting(s): {', '.join(sorted(unknown))}")
        return cls(**{k: _coerce(k, v) for k, v in values.items()})


_TYPES: dict[str, type] = {"timeout_s": float, "temperature": float, "max_retries": int,
                           "max_tokens": int, "token_budget": int, "log_calls": bool,
                           "phrase": bool}


def _coerce(name: str, value: Any) -> Any:
    """``value`` (from TOML, an env string or an argument) as the field's type."""
    kind = _TYPES.get(name, str)
    try:
        if kind is bool and isinstance(value, str):
            if value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if value.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        shown = "***" if name == "api_key" else repr(value)[:40]
        raise ValueError(f"llm {name}: expected {kind.__name__}, got {shown}") from None


def _from_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # Say where, never what: the offending text may be the key.
        where = re.search(r"line \d+, column \d+", str(exc))
        raise ValueError(f"{path}: not readable TOML" + (f" ({where[0]})" if where else "")) \
            from None
    section = data.get("llm", {})
    if not isinstance(section, dict):
        raise ValueError(f"{path}: [llm] must be a table")
    return dict(section)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {name: env[var] for name, var in ENV.items() if env.get(var, "") != ""}


# -- errors and the token budget -------------------------------------------------------------

ErrorKind = Literal["auth", "rate_limited", "server", "timeout", "connection", "bad_request",
                    "bad_response", "budget"]


class LLMError(Exception):
    """A call failed. ``kind`` says how (see :data:`ErrorKind`); the message is one line and
    never holds the key. ``status`` is the HTTP status when the server answered with one."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        """auth, rate_limited, server, timeout, connection, bad_request (the server refused
        the request: 400/404/422), bad_response (not a completion) or budget."""
        self.message = message
        """One line, key-free, fit to show a user."""
        self.status = status

    def __repr__(self) -> str:
        return f"LLMError({self.kind!r}, {self.message!r})"


class BudgetExceeded(LLMError):
    """The call could spend more tokens than the question has left; it was not sent."""

    def __init__(self, needed: int, remaining: int, total: int) -> None:
        super().__init__("budget", f"token budget exceeded: the call may need {needed} tokens, "
                                   f"{remaining} of {total} are left for this question")
        self.needed, self.remaining, self.total = needed, remaining, total


class Usage(NamedTuple):
    """Tokens one call spent."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    """True when the server reported none and these are :func:`estimate_tokens` guesses."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int | bool]:
        """The counts (with the total) as a plain dict, for logs."""
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "estimated": self.estimated}


def estimate_tokens(messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None,
                    response_format: Mapping[str, Any] | None = None) -> int:
    """A rough, deliberately high token count for a request: one per 3 characters of its JSON
    (English runs ~4, JSON and log text less) plus a few per message for the chat template."""
    chars = len(json.dumps([list(messages), tools, response_format], ensure_ascii=False,
                           default=str))
    return chars // 3 + 4 * len(messages) + 1


class TokenBudget:
    """Tokens one question may spend across its calls, prompt and completion together.

    :meth:`check` runs before a call, with the estimated prompt and the completion limit;
    :meth:`charge` after it, with what the server reports. Shared by threads safely.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        """Tokens allowed."""
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.calls = 0
        """Calls charged so far."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBudget(spent={self.spent}, total={self.total})"

    @property
    def spent(self) -> int:
        """Tokens charged so far."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def remaining(self) -> int:
        """Tokens left (0 when overspent)."""
        return max(0, self.total - self.spent)

    def check(self, prompt_tokens: int, max_tokens: int) -> None:
        """Raise :class:`BudgetExceeded` unless a call of ``prompt_tokens`` that may write
        ``max_tokens`` fits in what is left."""
        needed = prompt_tokens + max_tokens
        with self._lock:
            if needed > self.total - self.spent:
                raise BudgetExceeded(needed, self.remaining, self.total)

    def charge(self, usage: Usage) -> None:
        """Record what a call spent."""
        with self._lock:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.calls += 1


# -- the call log ----------------------------------------------------------------------------

_log_lock = threading.Lock()


def call_log_path() -> Path:
    """``$ACADEMY_TUI_STATE_DIR/llm.jsonl``, else ``$XDG_STATE_HOME/academy-tui/llm.jsonl``,
    else ``~/.local/state/academy-tui/llm.jsonl``."""
    env = os.environ.get("ACADEMY_TUI_STATE_DIR")
    if env:
        return Path(env) / "llm.jsonl"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "academy-tui" / "llm.jsonl"


def call_log(entry: Mapping[str, Any]) -> Path | None:
    """Append ``entry`` as one JSON line to :func:`call_log_path`; the path, or ``None`` when
    it could not be written (a read-only home must not break a question; a warning is logged).

    The caller keeps content out: :class:`~steering.llm.LLMClient` passes sizes and hashes.
    """
    path = call_log_path()
    line = json.dumps(dict(entry), ensure_ascii=False, default=str) + "\n"
    try:
        with _log_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line)
    except OSError as exc:
        log.warning("cannot append to the LLM call log %s: %s", path, exc.strerror or exc)
        return None
    return path
