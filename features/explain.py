"""What is different about the slow ones: every field of an action, compared between a
selection of actions and a baseline, the biggest differences said in plain words.

>>> from features.explain import explain_slowest
>>> print("\\n".join(explain_slowest(run, ("GeneratorAgent", "next_item")).lines()))

Each action is widened first (:func:`features.widen.action_fields`): its own columns,
its agent's and its process's, how many actions were executing when it started, and every
wide key of its records (agent side first, then caller side; the first non-null value
wins). Every field
then gets one score in [0, 1], the largest gap between selection and baseline over all
ways of splitting the values in two: for numbers the two-sample Kolmogorov-Smirnov
statistic (the split is a threshold), for categories the largest difference in the share
of one value (the split is "this value or not"). A score counts as a difference only when
it is above what chance alone reaches at these sizes: the two-sample KS critical value
``sqrt(-ln(a/2)/2) * sqrt(1/n1 + 1/n2)`` at ``a`` = 1% shared by all the fields tested
(Bonferroni), so fifty fields do not give a few "differences" by luck (the statistics
are in :mod:`features.two_sample`). Fields that split the actions the same way (an
agent, its file, its pid, its process name) are reported once. Nothing here claims
causation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.fmt import fmt_s
from features.table import Table
from features.two_sample import (
    ALPHA,
    EXACT_MAX,
    ID_LIKE,
    Difference,
    chance_gap,
    compare,
    median,
    numeric,
    plain,
    split_key,
)
from features.two_sample import ks_tail as _ks_tail  # noqa: F401 (its tests import it here)
from features.widen import (
    DURATIONS,
    OWN,
    STANDARD_KEYS,
    action_fields,
)

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["ALPHA", "DURATIONS", "EXACT_MAX", "ID_LIKE", "Difference", "Explanation",
           "action_fields", "explain", "explain_slowest", "moved_keys", "value_changes"]

MIN_N = 3
"""Fewer actions than this on either side: too few to tell."""
NAME_ORDER = ("processName", "caller.processName", "agent_class", "action", "status",
              "agent_id", "caller", "threadName", "executing_at_start", "in_flight_at_start")
"""Which field names a split that several fields share (earlier reads better)."""


@dataclass
class Explanation:
    """What differs between a selection of actions and a baseline."""

    label: str
    groups: list[str]
    n_selection: int
    n_baseline: int
    chance: float
    differences: list[Difference]
    """The top differences beyond chance, largest first."""
    candidates: list[Difference]
    """The next-ranked fields (not beyond chance), for the record."""
    context: list[str]
    symptoms: list[str]
    """Fields left out of the ranking because they defined the selection."""
    too_small: bool
    header: str

    def lines(self) -> list[str]:
        """The explanation as sentences."""
        out = [self.header, *self.context]
        if self.too_small:
            out.append(f"{self.n_selection} against {self.n_baseline} is too few to tell "
                       f"what differs: at least {MIN_N} are needed on each side.")
        elif not self.differences:
            best = self.candidates[0] if self.candidates else None
            out.append("Nothing differs by more than chance would give at these sizes"
                       + (f" (the largest gap, {best.field}, is {best.score:.2f}, "
                          f"chance alone reaches {self.chance:.2f})." if best else "."))
        else:
            out.append(f"They differ most in these (gap 0..1; chance alone reaches "
                       f"{self.chance:.2f} here):")
            out.extend(f"- {d.sentence} [{d.score:.2f}]" for d in self.differences)
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["chance"] = plain(self.chance)
        d["differences"] = [x.as_dict() for x in self.differences]
        d["candidates"] = [x.as_dict() for x in self.candidates]
        d["lines"] = self.lines()
        return d


# -- ranking ---------------------------------------------------------------------------


def _name_rank(name: str) -> int:
    """Which of the fields that split the actions the same way names the split best."""
    if name in NAME_ORDER:
        return NAME_ORDER.index(name)
    if name.endswith(("_file", ".uuid", ".file")):
        return 60
    if name.startswith("academy."):
        return 40
    if name.startswith(("agent.", "caller.")):
        return 30
    return 15 if name in OWN else 20


# -- sentences -------------------------------------------------------------------------

PHRASES = {
    "processName": "ran in {}",
    "caller.processName": "were called from {}", "threadName": "ran in thread {}",
    "caller.threadName": "were called from thread {}", "agent_id": "went to {}",
    "agent_class": "went to a {}", "caller": "came from {}", "status": "ended {}",
    "action": "were {} calls", "agent_file": "ran in the process of file {}",
    "caller_file": "were called from the process of file {}",
}


def _num(x: float | None) -> str:
    if x is None or x != x:
        return "-"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.3f}" if abs(x) >= 0.01 else f"{x:.3g}"


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _sentence(d: Difference, calls: str) -> str:
    """``calls`` names the selection, e.g. ``slow next_item calls``."""
    m1, m2 = d.median_selection, d.median_baseline
    if d.kind == "value":
        v = d.value
        shown = (v[:8] if d.field.endswith("_file") else v[:60]) if v is not None else None
        phrase = (f"had no {d.field}" if shown is None else
                  PHRASES.get(d.field, f"had {d.field} = {{}}").format(shown))
        s = (f"{_pct(d.share_selection)} of the {calls} {phrase} against "
             f"{_pct(d.share_baseline)} of the others")
    elif d.kind == "presence":
        s = (f"{d.field} is present in {_pct(d.share_selection)} of the {calls} against "
             f"{_pct(d.share_baseline)} of the others")
    elif d.field == "executing_at_start":
        were = "action was" if m1 == 1 else "actions were"
        s = (f"The {calls} started when {_g(m1)} {were} executing at once against "
             f"{_g(m2)} (median, itself included)")
    elif d.field == "in_flight_at_start":
        were = "call was" if m1 == 1 else "calls were"
        s = (f"The {calls} started when {_g(m1)} {were} in flight against {_g(m2)} "
             "(median, itself included)")
    elif d.field == "start_s":
        s = f"The {calls} started {fmt_s(m1)} into the run against {fmt_s(m2)} (median)"
    else:
        ratio = ""
        if m1 and m2 and m1 > 0 and m2 > 0:
            r = max(m1, m2) / min(m1, m2)
            ratio = f" ({r:.{0 if r >= 100 else 1}f}x{'' if m1 >= m2 else ' less'})"
        s = (f"{d.field} is {_num(m1)} in the {calls} (median) against {_num(m2)} in the "
             f"others{ratio}")
    if d.also:
        more = f" and {len(d.also) - 3} more" if len(d.also) > 3 else ""
        s += f" (the same split as {', '.join(d.also[:3])}{more})"
    return s + "."


def _context(fields: Table, sel: np.ndarray, base: np.ndarray, calls: str) -> str:
    parts = []
    for f, word in zip(DURATIONS, ("total", "queue", "execution", "reply"), strict=True):
        a, b = median(fields[f][sel]), median(fields[f][base])
        if a is not None or b is not None:
            parts.append(f"{word} {fmt_s(a)} against {fmt_s(b)}")
    return f"Median times of the {calls} against the others: {', '.join(parts)}."


# -- the API ---------------------------------------------------------------------------


def _mask(run: Run, which: np.ndarray | Sequence[str]) -> np.ndarray:
    acts = run.actions()
    arr = np.asarray(which)
    if arr.dtype == bool:
        if len(arr) != len(acts):
            raise ValueError(f"mask has {len(arr)} values for {len(acts)} actions")
        return arr
    return np.isin(acts["tag"], [str(t) for t in which])


def explain(run: Run, selection: np.ndarray | Sequence[str],
            baseline: np.ndarray | Sequence[str] | None = None, top: int = 5, *,
            symptoms: Sequence[str] = (), label: str = "selected",
            how: str | None = None) -> Explanation:
    """What differs between ``selection`` and ``baseline`` (boolean masks over
    ``run.actions()`` or lists of action tags). The default baseline is every other
    action of the selection's (agent class, action) groups; actions in both count as
    selected. ``symptoms`` are fields that defined the selection (left out of the
    ranking, reported as context); ``label`` names the selection in sentences (``slow``)
    and ``how`` says how it was chosen."""
    acts = run.actions()
    fields = action_fields(run)
    sel = _mask(run, selection)
    pairs = list(zip(acts["agent_class"].tolist(), acts["action"].tolist(), strict=True))
    groups = sorted({f"{c}.{a}" for (c, a), s in zip(pairs, sel, strict=True) if s})
    chosen = {p for p, s in zip(pairs, sel, strict=True) if s}
    same = np.array([p in chosen for p in pairs], dtype=bool) & ~sel
    base = same if baseline is None else _mask(run, baseline) & ~sel
    n1, n2 = int(sel.sum()), int(base.sum())
    names = {a for (_, a), s in zip(pairs, sel, strict=True) if s}
    calls = f"{label} {next(iter(names))} calls" if len(names) == 1 else f"{label} calls"
    others = "others of the same action" if np.array_equal(base, same) else "others"
    call = "call" if n1 == 1 else "calls"
    what = (f"{groups[0]} {call}" if len(groups) == 1 else
            f"{call} of {', '.join(groups)}" if groups else call)
    header = (f"{n1} {label} {what}"
              f"{f' ({how})' if how else ''} against {n2} {others}.")
    too_small = n1 < MIN_N or n2 < MIN_N
    context = [_context(fields, sel, base, calls)] if n1 and n2 else []
    ranked: list[Difference] = []
    chance = chance_gap(n1, n2, 1)
    if not too_small:
        both = sel | base
        in_sel = sel[both]
        by_split: dict[bytes, list[Difference]] = {}
        for name in fields.columns:
            if name in symptoms:
                continue
            got = compare(name, fields[name][both], in_sel)
            if got is not None:
                d, inv = got
                by_split.setdefault(split_key(inv), []).append(d)
        chance = chance_gap(n1, n2, len(by_split))
        for same in by_split.values():
            same.sort(key=lambda d: (-d.score, _name_rank(d.field)))
            best = same[0]
            best.chance = chance
            best.also = [d.field for d in sorted(same[1:], key=lambda d: _name_rank(d.field))]
            ranked.append(best)
        ranked.sort(key=lambda d: (-d.score, _name_rank(d.field)))
    diffs = [d for d in ranked if d.significant][:top]
    cands = [d for d in ranked if not d.significant][:top]
    for d in diffs + cands:
        d.sentence = _sentence(d, calls)
    return Explanation(label, groups, n1, n2, chance, diffs, cands, context, list(symptoms),
                       too_small, header)


def explain_slowest(run: Run, group: tuple[str, str] | None = None, fraction: float = 0.05,
                    by: str = "total_s", top: int = 5, at_least: int = 5) -> Explanation:
    """Explain the slowest ``fraction`` of the calls of ``group`` (agent class, action)
    by ``by``, against the other calls of the group; without a group, the slowest of
    each action against the rest of it (a slow call is slow for its kind). At least
    ``at_least`` calls are taken when a group has twice as many, so a small group can
    still be told apart. The durations are the symptom: context, not explanation."""
    acts = run.actions()
    timed = ~np.isnan(acts[by])
    keys = np.array([f"{c}.{a}" for c, a in zip(acts["agent_class"], acts["action"],
                                                  strict=True)], dtype=object)
    names = [f"{group[0]}.{group[1]}"] if group is not None else sorted(set(keys[timed]))
    sel = np.zeros(len(acts), dtype=bool)
    base = np.zeros(len(acts), dtype=bool)
    counts = []
    for name in names:
        idx = np.flatnonzero(timed & (keys == name))
        if len(idx) < 2 and group is None:
            continue  # a single call is not slow against anything
        k = max(math.ceil(fraction * len(idx)), min(at_least, len(idx) // 2))
        sel[idx[np.argsort(-acts[by][idx], kind="stable")][:k]] = True
        base[idx] = True
        counts.append((k, len(idx)))
    how = (f"the slowest {counts[0][0]} of {counts[0][1]} by {by}" if len(counts) == 1 else
           f"the slowest {fraction:.0%} of each action by {by}")
    return explain(run, sel, base & ~sel, top, symptoms=DURATIONS, label="slow", how=how)


# -- around a change point ----------------------------------------------------------------

CONTEXT_FIELDS = frozenset({"start_s", "executing_at_start", "in_flight_at_start",
                            "caller.processName"})


def _user_fields(fields: Table) -> list[str]:
    """The fields of :func:`action_fields` that are user keys of the calls' own records
    (``fib.delay_s``), not Academy's, the logging module's, the agent's or our own."""
    return [c for c in fields.columns
            if not (c in OWN or c in STANDARD_KEYS or c in CONTEXT_FIELDS
                    or c.startswith(("academy.", "agent.", "caller.")))]


def _key(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if v != v else float(f"{float(v):.9g}")
    return None if v is None else str(v)


def value_changes(run: Run, before: Sequence[str], after: Sequence[str],
                  share: float = 0.8) -> list[tuple[str, Any, Any]]:
    """User keys of the calls' own records that held one value on (nearly: ``share``) all
    the calls ``before`` and another on (nearly) all those ``after`` (action tags): what
    was set differently, as ``(key, value before, value after)``. A key that counts up
    (an iteration, a timestamp) has no one value on either side and is left out."""
    if not before or not after:
        return []
    fields = action_fields(run)  # row for row with run.actions()
    pos = {t: i for i, t in enumerate(run.actions()["tag"].tolist())}
    ib = [pos[t] for t in before if t in pos]
    ia = [pos[t] for t in after if t in pos]
    out: list[tuple[str, Any, Any]] = []
    for name in _user_fields(fields):
        col = fields[name]
        modes = []
        for idx in (ib, ia):
            vals = [_key(v) for v in col[idx].tolist()]
            present = [v for v in vals if v is not None]
            if not present:
                break
            # The first seen among equally common values (a set's order follows string
            # hashing, which changes from one process to the next).
            best, count = Counter(present).most_common(1)[0]
            if count < share * len(idx):
                break
            modes.append(best)
        if len(modes) == 2 and modes[0] != modes[1]:
            out.append((name, modes[0], modes[1]))
    return out


def moved_keys(run: Run, tags: Sequence[str], durations: np.ndarray,
               edge: int = 5) -> list[tuple[str, float, float]]:
    """Numeric user keys of the calls ``tags`` (in order, with their ``durations``) that
    moved with the durations: rank correlation at least 0.9, and from the first ``edge``
    calls to the last by about the same factor (within 2x of the durations' own), so an
    iteration counter that merely grows alongside is left out. As ``(key, median of the
    first calls, median of the last)``."""
    from scipy.stats import spearmanr

    fields = action_fields(run)
    pos = {t: i for i, t in enumerate(run.actions()["tag"].tolist())}
    keep = [(pos[t], d) for t, d in zip(tags, durations.tolist(), strict=True) if t in pos]
    if len(keep) < 2 * edge:
        return []
    idx = [i for i, _ in keep]
    dur = np.array([d for _, d in keep])
    d_ratio = float(np.median(dur[-edge:]) / np.median(dur[:edge]))
    out: list[tuple[str, float, float]] = []
    for name in _user_fields(fields):
        num = numeric(name, fields[name][idx])
        if num is None or np.isnan(num).mean() > 0.2:
            continue
        ok = ~np.isnan(num)
        a, b = float(np.median(num[ok][:edge])), float(np.median(num[ok][-edge:]))
        if a <= 0 or b <= 0 or len(np.unique(num[ok])) < 3:
            continue
        rho = spearmanr(num[ok], dur[ok]).statistic
        if not rho >= 0.9:
            continue
        if 0.5 <= (b / a) / d_ratio <= 2:
            out.append((name, a, b))
    return out
