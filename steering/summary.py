"""An incident in words, and the choice among the allowed remedies: by the model when one
is configured, by a template otherwise or whenever the model fails, is slow or answers
garbage.

What people read (``steering.summary``) is always the fact-built sentence of
:mod:`steering.factsummary`; the model picks a remedy id from the list it is given (or
``none``) and may phrase the facts, by reference (``{F3}``). Its words are appended only
when they pass :func:`steering.factsummary.vet` (every number a fact, no log text
repeated unquoted); its ``why`` likewise. It sees the facts and the incident as fenced,
untrusted data (``prompts/steer_summary.txt``), and nothing it writes is acted on.
Blocking: the agent calls :func:`decide` off its loop (:mod:`steering.offloop`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import prompts
from steering.factsummary import IncidentFacts, incident_facts, summary, vet
from steering.llm_config import LLMError, TokenBudget
from steering.policy import Remedy
from steering.watch import SteerIncident

if TYPE_CHECKING:
    from steering.llm import LLMClient

SUMMARY_MAX = 400
WHY_MAX = 120
MAX_FACTS = 30
"""Facts shown to the model (the incident's come first, then the remedies' values)."""


@dataclass
class Decision:
    """What to say about an incident and which remedy (an id, or ``none``) to suggest."""

    summary: str
    remedy: str
    why: str
    source: str
    """``llm`` (the model's choice of remedy) or ``template``."""
    error: str | None = None
    """Why the model's answer, or its words, were not used (one line, key-free)."""
    llm_s: float | None = None


def incident_text(inc: SteerIncident, explanation: list[str] | None = None) -> str:
    """The incident's ids and the log-derived lines, for the fenced block of the prompt
    (its numbers are in the facts)."""
    change = f" ({inc.change.replace('_', ' ')})" if inc.change else ""
    lines = [
        f"incident {inc.id}: {inc.kind}{change}, severity {inc.severity}",
        f"group: {inc.group}",
        "agents: " + ", ".join(f"[agent:{a}]" for a in inc.agents),
        "calls: " + " ".join(f"[act:{t[:8]}]" for t in inc.tags[:8]),
        "evidence: " + " ".join(f"[ev:{e}]" for e in inc.evidence),
    ]
    if inc.cause:
        lines.append("what happened around it (log data):")
        lines += [f"  {c[:200]}" for c in inc.cause[:4]]
    if explanation:
        lines.append("what differs about the slow calls (log data):")
        lines += [f"  {ln[:200]}" for ln in explanation[:8]]
    return "\n".join(lines)


def remedies_text(remedies: list[Remedy]) -> str:
    if not remedies:
        return "(none allowed)"
    return "\n".join(f"- {r.id}: {r.describe()}" for r in remedies)


def template(inc: SteerIncident, remedies: list[Remedy],
             facts: IncidentFacts | None = None, *, none_why: str | None = None) -> Decision:
    """The built-in decision: the fact-built summary, the first remedy (none, for the
    reason ``none_why``, when that is given)."""
    facts = facts or incident_facts(inc, remedies)
    first = remedies[0] if remedies and none_why is None else None
    if none_why is not None:
        return Decision(summary(inc, facts, None, len(remedies)), "none", none_why,
                        "template")
    text = summary(inc, facts, first, len(remedies))
    if first is not None:
        return Decision(text, first.id, "the first declared remedy that fits", "template")
    return Decision(text, "none", "no declared steerable action fits", "template")


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
    """Ask the model (one call, the client's time-out, no retries beyond its own); fall
    back to :func:`template` on any failure or on a reply that breaks the contract."""
    facts = incident_facts(inc, remedies)
    fallback = template(inc, remedies, facts)
    if client is None:
        return fallback
    from steering.llm import json_schema_format

    t0 = time.monotonic()
    ids = [r.id for r in remedies]
    try:
        prompt = prompts.load("steer_summary")
        text = prompt.render(facts=facts.sheet.lines(MAX_FACTS),
                             incident=incident_text(inc, explanation),
                             remedies=remedies_text(remedies))
        res = client.chat([{"role": "user", "content": text}],
                          response_format=json_schema_format("steer_summary", _schema(ids)),
                          max_tokens=300, prompt=(prompt.name, prompt.hash),
                          budget=TokenBudget(client.config.token_budget))
        data = res.json()
        if not isinstance(data, dict):
            raise LLMError("bad_response", "reply is not a JSON object")
        said, remedy, why = data.get("summary"), data.get("remedy"), data.get("why", "")
        if not isinstance(said, str) or not _clean(said, SUMMARY_MAX):
            raise LLMError("bad_response", "reply has no summary")
        if remedy not in [*ids, "none"]:
            raise LLMError("bad_response", f"remedy {str(remedy)[:40]!r} is not in the list")
    except LLMError as exc:
        fallback.error = (f"the model did not answer within {client.config.timeout_s:g} s"
                          if exc.kind == "timeout" else f"{exc.kind}: {exc.message}")
        fallback.error = f"{fallback.error[:280]}; template used"
        fallback.llm_s = time.monotonic() - t0
        return fallback
    except (ValueError, TypeError, KeyError) as exc:
        fallback.error = f"{type(exc).__name__}: {exc}"[:280] + "; template used"
        fallback.llm_s = time.monotonic() - t0
        return fallback
    chosen = next((r for r in remedies if r.id == remedy), None)
    sources = [*(explanation or ()), *inc.cause]
    words, left_out = vet(_clean(said, SUMMARY_MAX), facts, sources)
    reason, _ = vet(_clean(why, WHY_MAX), facts, sources, need_fact=False) \
        if isinstance(why, str) else (None, None)
    told = summary(inc, facts, chosen, len(remedies))
    return Decision(told + (f" In the model's words: {words}" if words else ""), str(remedy),
                    reason or ("chosen by the model" if chosen else "the model chose none"),
                    "llm", f"the model's words were left out: {left_out}" if left_out else None,
                    llm_s=time.monotonic() - t0)
