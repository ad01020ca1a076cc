"""An incident in words, and the choice among the allowed remedies: by the LLM when one is
configured, by a template otherwise or whenever the LLM fails, is slow or answers garbage.

The model sees the incident as fenced, untrusted data (``prompts/steer_summary.txt``) and
may only pick a remedy id from the list it is given, or ``none``; its summary is stored as
text and never acted on. Blocking: the agent calls :func:`decide` in a worker thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import prompts
from steering.llm_config import LLMError, TokenBudget
from steering.policy import Remedy
from steering.watch import SteerIncident

if TYPE_CHECKING:
    from steering.llm import LLMClient

SUMMARY_MAX = 400
WHY_MAX = 120


@dataclass
class Decision:
    """What to say about an incident and which remedy (an id, or ``none``) to suggest."""

    summary: str
    remedy: str
    why: str
    source: str
    """``llm`` or ``template``."""
    error: str | None = None
    """Why the LLM's answer was not used (one line, key-free)."""
    llm_s: float | None = None


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 10)}"


def incident_text(inc: SteerIncident, explanation: list[str] | None = None) -> str:
    """The incident as data for the prompt: numbers, ids and evidence references."""
    base = f", usual {inc.baseline_s:.3f}s" if inc.baseline_s else ""
    ratio = f"{inc.max_ratio:.1f}x" if math.isfinite(inc.max_ratio) else "?"
    lines = [
        f"incident {inc.id}: {inc.kind}, severity {inc.severity}",
        f"group: {inc.group}; {inc.count} call(s), up to {ratio} the group's median{base}; "
        f"{inc.excess_s:.3f}s extra; from {_clock(inc.start)} to {_clock(inc.end)}",
        "agents: " + ", ".join(f"[agent:{a}]" for a in inc.agents),
        "calls: " + " ".join(f"[act:{t[:8]}]" for t in inc.tags[:8]),
        "evidence: " + " ".join(f"[ev:{e}]" for e in inc.evidence),
    ]
    if explanation:
        lines.append("what differs about the slow calls:")
        lines += [f"  {ln[:200]}" for ln in explanation[:8]]
    return "\n".join(lines)


def remedies_text(remedies: list[Remedy]) -> str:
    if not remedies:
        return "(none allowed)"
    return "\n".join(f"- {r.id}: {r.describe()}" for r in remedies)


def template(inc: SteerIncident, remedies: list[Remedy]) -> Decision:
    """The built-in summary: the detector's sentence, the agents, the first remedy."""
    who = ", ".join(inc.agents) or "unknown agents"
    summary = f"{inc.description} on {who}, since {_clock(inc.start)}."
    if remedies:
        return Decision(summary, remedies[0].id,
                        f"declared remedy for {inc.group}", "template")
    return Decision(summary, "none", "no declared steerable action fits", "template")


def _schema(ids: list[str]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": SUMMARY_MAX},
            "remedy": {"type": "string", "enum": [*ids, "none"]},
            "why": {"type": "string", "maxLength": WHY_MAX},
            "evidence": {"type": "array", "maxItems": 4,
                         "items": {"type": "string", "maxLength": 80}},
        },
        "required": ["summary", "remedy", "why", "evidence"],
        "additionalProperties": False,
    }


def _clean(text: str, limit: int) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


def decide(client: LLMClient | None, inc: SteerIncident, remedies: list[Remedy],
           explanation: list[str] | None = None) -> Decision:
    """Ask the LLM (one call, the client's time-out, no retries beyond its own); fall back
    to :func:`template` on any failure or on a reply that breaks the contract."""
    fallback = template(inc, remedies)
    if client is None:
        return fallback
    from steering.llm import json_schema_format

    t0 = time.monotonic()
    ids = [r.id for r in remedies]
    try:
        prompt = prompts.load("steer_summary")
        text = prompt.render(incident=incident_text(inc, explanation),
                             remedies=remedies_text(remedies))
        res = client.chat([{"role": "user", "content": text}],
                          response_format=json_schema_format("steer_summary", _schema(ids)),
                          max_tokens=300, prompt=(prompt.name, prompt.hash),
                          budget=TokenBudget(client.config.token_budget))
        data = res.json()
        if not isinstance(data, dict):
            raise LLMError("bad_response", "reply is not a JSON object")
        summary, remedy, why = data.get("summary"), data.get("remedy"), data.get("why", "")
        if not isinstance(summary, str) or not _clean(summary, SUMMARY_MAX):
            raise LLMError("bad_response", "reply has no summary")
        if remedy not in [*ids, "none"]:
            raise LLMError("bad_response", f"remedy {str(remedy)[:40]!r} is not in the list")
        return Decision(_clean(summary, SUMMARY_MAX), str(remedy),
                        _clean(why if isinstance(why, str) else "", WHY_MAX), "llm",
                        llm_s=time.monotonic() - t0)
    except LLMError as exc:
        fallback.error = f"{exc.kind}: {exc.message}"[:300]
    except (ValueError, TypeError, KeyError) as exc:
        fallback.error = f"{type(exc).__name__}: {exc}"[:300]
    fallback.llm_s = time.monotonic() - t0
    return fallback
