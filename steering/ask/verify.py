"""Check an answer against the run and the data it was built from.

Two checks, both reported to the user, never silent:

- **Citations**: every ``[ev:...]``, ``[act:...]`` and ``[agent:...]`` must name something
  that exists in the run (:class:`~steering.ask.refs.EvidenceIndex`). Invalid ones are
  removed from the text and listed in a note.
- **Numbers**: every number in the answer (outside citations and identifiers) must
  appear in the sources (the run summary, the tool results and the question), allowing
  for rounding to the digits written and for unit changes (s, ms, min, %). Numbers that
  do not are marked ``[?]`` in the text and listed in a note.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steering.ask.refs import Citation, EvidenceIndex, find_refs

__all__ = ["UNSUPPORTED", "NumberCheck", "Verified", "number_tokens", "source_numbers",
           "verify"]

UNSUPPORTED = "[?]"
"""Written after a number the sources do not hold."""
REL_TOLERANCE = 0.005
"""A number within 0.5% of a source value counts as that value (models round freely)."""

_NUMBER = re.compile(
    r"(?<![\w.<>:/#@$-])(?P<sign>[-+−])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s?(?P<unit>ms|milliseconds?|µs|us|seconds?|secs?|s|minutes?|mins?|min|hours?|h|x|×|%))?"
    r"(?![\w<>]|\.\d)")
# A number in the data, also with its unit glued on ("0.265s", "4.9x" in detector wording),
# but not the digits that start an id ("8b46bb7c").
_SOURCE_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
                            r"(?=(?:ms|s|x|%)?(?![\w.]*[A-Za-z_]))")
_SCALE = {"ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3, "µs": 1e-6, "us": 1e-6,
          "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0,
          "hour": 3600.0, "hours": 3600.0, "%": 0.01}


@dataclass(frozen=True)
class NumberCheck:
    """One number of the answer."""

    text: str
    """As written, with its unit (``0.103 s``, ``38.0 ms``, ``49%``)."""
    value: float
    unit: str
    supported: bool
    decimals: int = 0
    """Digits after the point as written: how much rounding to allow."""
    start: int = 0
    end: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "value": self.value, "unit": self.unit,
                "supported": self.supported}


@dataclass
class Verified:
    """The checked answer."""

    text: str
    """The answer with invalid citations removed and unsupported numbers marked."""
    citations: list[Citation] = field(default_factory=list)
    """Every citation of the original answer, valid or not, in order of appearance."""
    numbers: list[NumberCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was removed or flagged, for the user."""

    @property
    def valid_citations(self) -> list[Citation]:
        return [c for c in self.citations if c.valid]


def number_tokens(text: str) -> list[NumberCheck]:
    """The numbers written in ``text`` outside citations (``supported`` left False)."""
    spans = [(s, e) for s, e, _ in find_refs(text)]
    out = []
    for m in _NUMBER.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        digits = m.group("int").replace(",", "") + (m.group("frac") or "")
        value = float(digits)
        unit = (m.group("unit") or "").lower()
        decimals = len(m.group("frac") or ".") - 1
        out.append(NumberCheck(m.group(0).strip(), value, unit, False, decimals, m.start(),
                               m.end()))
    return out


def source_numbers(*texts: str) -> np.ndarray:
    """Every number in ``texts`` (absolute values), sorted, with the same values in
    milliseconds and in seconds so a unit change still matches."""
    vals: list[float] = []
    for t in texts:
        for m in _SOURCE_NUMBER.finditer(t):
            try:
                v = abs(float(m.group(0)))
            except ValueError:
                continue
            if math.isfinite(v):
                vals.append(v)
    arr = np.asarray(vals, dtype=np.float64)
    return np.unique(np.concatenate([arr, arr * 1000.0, arr / 1000.0]))


def _supported(n: NumberCheck, sources: np.ndarray) -> bool:
    if not len(sources):
        return False
    step = 0.5 * 10.0 ** -n.decimals
    scale = _SCALE.get(n.unit, 1.0)
    candidates = {(n.value, step)}
    if scale != 1.0:
        candidates.add((n.value * scale, step * scale))
    for value, tol in candidates:
        tol = max(tol + 1e-12, REL_TOLERANCE * value)
        i = int(np.searchsorted(sources, value - tol))
        if i < len(sources) and sources[i] <= value + tol:
            return True
    return False


def verify(text: str, index: EvidenceIndex, sources: str, question: str = "") -> Verified:
    """Check ``text`` (see the module docstring); ``sources`` is everything the answer was
    built from, as text (the summary and the tool results' JSON)."""
    notes: list[str] = []
    citations: list[Citation] = []
    out = text
    # Citations, last first so the offsets stay right while the text changes.
    found = find_refs(text)
    rebuilt: list[tuple[int, int, str]] = []
    for start, end, refs in found:
        kept = []
        for ref in refs:
            c = index.resolve(ref)
            c = Citation(c.ref, c.kind, c.valid, c.label, c.rows, c.expr, c.reason,
                         ref in sources)
            citations.append(c)
            if c.valid:
                kept.append(ref)
        if len(kept) != len(refs):
            rebuilt.append((start, end, f"[{', '.join(kept)}]" if kept else ""))
    for start, end, new in reversed(rebuilt):
        if not new and start > 0 and out[start - 1] == " ":
            start -= 1
        out = out[:start] + new + out[end:]
    bad = [c for c in citations if not c.valid]
    if bad:
        shown = "; ".join(f"[{c.ref}] ({c.reason})" for c in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        notes.append(f"Removed {len(bad)} citation(s) that name nothing in this run: "
                     f"{shown}{more}.")
    guessed = [c for c in citations if c.valid and not c.in_sources]
    if guessed:
        notes.append(f"{len(guessed)} citation(s) exist in the run but were not in the data "
                     "the answer was built from: " + ", ".join(f"[{c.ref}]"
                                                            for c in guessed[:5]) + ".")
    if not any(c.valid for c in citations):
        notes.append("The answer cites no evidence from this run; check it against the "
                      "events before relying on it.")
    # Numbers, on the text as it now stands.
    pool = source_numbers(sources, question)
    numbers = [NumberCheck(n.text, n.value, n.unit, _supported(n, pool), n.decimals,
                           n.start, n.end) for n in number_tokens(out)]
    for n in reversed([n for n in numbers if not n.supported]):
        out = out[:n.end] + " " + UNSUPPORTED + out[n.end:]
    unsupported = [n.text for n in numbers if not n.supported]
    if unsupported:
        notes.append(f"{len(unsupported)} number(s) do not appear in the data the answer was "
                     f"built from and are marked {UNSUPPORTED}: {', '.join(unsupported[:8])}"
                     + (" …" if len(unsupported) > 8 else "") + ".")
    return Verified(out, citations, numbers, notes)
