"""Run against run: what changed between A and B, and where B's extra time went.

>>> from features.diff import diff
>>> d = diff(run_a, run_b)
>>> d.answer        # "B took 24.7 s against 16.2 s for A (+8.47 s, +52%): start-up ..."
>>> d.table()       # per (agent class, action, phase): counts, p50, p95, totals, changes

The wall-time change is split exactly by the where-the-time-went categories (they add up
to each run's wall time), so "how much of the difference" is a share of a sum, not a
guess. Per action the two runs are compared as distributions (p50, p95 of each phase) and
as totals, separately, so runs with different numbers of calls still compare per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.analyses import CATEGORIES, CATEGORY_WORDS
from features.fmt import count, fmt_s
from features.incident import times
from features.table import Table

if TYPE_CHECKING:
    from features.run import Run

PHASES = (("total", "total_s"), ("queue", "queue_s"), ("execution", "exec_s"),
          ("reply", "reply_s"))
CATEGORY_PHASE = {"execution": "execution", "queue": "queue", "reply": "reply"}
"""Categories of wall time that one phase of the actions explains."""
COLUMNS = ("agent_class", "action", "phase", "presence", "count_a", "count_b", "p50_a",
           "p50_b", "p50_change_s", "p50_change_pct", "p95_a", "p95_b", "p95_change_s",
           "p95_change_pct", "sum_a", "sum_b", "sum_change_s")


def _percentile(x: np.ndarray, q: float) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if len(x) else None


def _change(a: float | None, b: float | None) -> tuple[float | None, float | None]:
    """Absolute and relative (percent) change from ``a`` to ``b``."""
    if a is None or b is None:
        return None, None
    return b - a, ((b - a) / a * 100 if a > 0 else None)


def _signed(x: float | None) -> str:
    if x is None:
        return "-"
    # Below what fmt_s shows (0.05 ms) a sign is noise: "-0.0 ms" reads like a change.
    return ("+" if x >= 0 or abs(x) < 5e-5 else "-") + fmt_s(abs(x))


def _pct(x: float | None) -> str:
    """A relative change: ``+20%``, ``-80%``; ten times or more as a ratio (``179x``, not
    ``+17772%``)."""
    if x is None:
        return ""
    if x >= 900:
        return times(1 + x / 100)
    return f"{'+' if x >= 0 else '-'}{abs(x):.0f}%"


def _signed_pct(x: float | None) -> str:
    return "" if x is None else f", {_pct(x)}"


def _change_cell(s: float | None, pct: float | None) -> str:
    """``+0.447 s (179x)``, ``-81.7 ms (-80%)``, or ``-``."""
    if s is None:
        return "-"
    return _signed(s) + (f" ({_pct(pct)})" if pct is not None else "")


def summarize(run: Run) -> dict[str, Any]:
    """What one side of a diff needs: wall time and its categories, time to the first
    action, shutdown, agents' start-up (launched -> running) per class."""
    tb = run.where_time_went()
    ag = run.agents()
    startup: dict[str, dict[str, Any]] = {}
    if len(ag):
        up = ag["t_running"] - ag["t_launched"]
        for cls in sorted({c for c in ag["class"].tolist() if c is not None}):
            v = up[(ag["class"] == cls) & np.isfinite(up)]
            if len(v):
                startup[cls] = {"agents": len(v), "median_s": float(np.median(v)),
                                "max_s": float(v.max())}
    first = None if tb.first_action_t is None else tb.first_action_t - tb.t0
    return {"uuid": run.uuid, "path": str(run.path), "wall_s": tb.wall_s,
            "actions": tb.actions, "first_action_s": first,
            "shutdown_s": tb.seconds["shutdown"], "seconds": dict(tb.seconds),
            "agent_startup": startup}


def _groups(run: Run) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    acts = run.actions()
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    keys = list(zip(acts["agent_class"].tolist(), acts["action"].tolist(), strict=True))
    for key in set(keys):
        m = np.array([k == key for k in keys], dtype=bool)
        out[(str(key[0]), str(key[1]))] = {col: acts[col][m] for _, col in PHASES}
    return out


def _rows(ga: dict[tuple[str, str], dict[str, np.ndarray]],
          gb: dict[tuple[str, str], dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    empty = np.empty(0)
    rows = []
    for key in sorted(set(ga) | set(gb)):
        presence = "both" if key in ga and key in gb else ("new" if key in gb else "missing")
        for phase, col in PHASES:
            va = ga[key][col] if key in ga else empty
            vb = gb[key][col] if key in gb else empty
            row: dict[str, Any] = {"agent_class": key[0], "action": key[1], "phase": phase,
                                   "presence": presence, "count_a": len(va),
                                   "count_b": len(vb)}
            for q in (50, 95):
                a, b = _percentile(va, q), _percentile(vb, q)
                row[f"p{q}_a"], row[f"p{q}_b"] = a, b
                row[f"p{q}_change_s"], row[f"p{q}_change_pct"] = _change(a, b)
            sa = float(np.nansum(va)) if len(va) else None
            sb = float(np.nansum(vb)) if len(vb) else None
            row["sum_a"], row["sum_b"] = sa, sb
            # An action new in B (or gone from it) changes the total by all of its time.
            row["sum_change_s"] = (sb or 0.0) - (sa or 0.0)
            rows.append(row)
    return rows


def _group_change(r: dict[str, Any]) -> str:
    """The action whose time in a phase changed most, in words (calls of one action
    overlap others, so their sums are not shares of the wall time)."""
    what = f"{r['action']} {r['phase']}"
    if r["presence"] == "new":
        return f"where {what} is new ({count(r['count_b'], 'call')}, {fmt_s(r['sum_b'])} in all)"
    if r["presence"] == "missing":
        return f"where {what} is gone ({count(r['count_a'], 'call')}, {fmt_s(r['sum_a'])} in A)"
    return (f"where {what} changed most (per call p50 {_signed(r['p50_change_s'])}, p95 "
            f"{_signed(r['p95_change_s'])}; {count(r['count_b'], 'call')} against {r['count_a']}; "
            f"in all {_signed(r['sum_change_s'])})")


@dataclass
class RunDiff:
    """B against A: per action and phase, start-up, shutdown, wall and its categories."""

    a: dict[str, Any]
    """:func:`summarize` of run A."""
    b: dict[str, Any]
    rows: list[dict[str, Any]]
    """Per (agent class, action, phase): see :data:`COLUMNS`."""
    new: list[str]
    """``Class.action`` in B only."""
    missing: list[str]
    """``Class.action`` in A only."""

    @property
    def wall_change_s(self) -> float:
        return float(self.b["wall_s"] - self.a["wall_s"])

    @property
    def category_changes(self) -> dict[str, float]:
        """Category -> seconds of B minus A (they add up to the wall change)."""
        return {c: self.b["seconds"][c] - self.a["seconds"][c] for c in CATEGORIES}

    @property
    def identical(self) -> bool:
        """Nothing measured differs (a run against itself)."""
        changed = [r[k] for r in self.rows for k in ("p50_change_s", "p95_change_s",
                                                      "sum_change_s")]
        return (self.wall_change_s == 0 and not self.new and not self.missing
                and all(v == 0 for v in self.category_changes.values())
                and all(r["count_a"] == r["count_b"] for r in self.rows)
                and all(v is None or v == 0 for v in changed))

    def _top_group(self, phase: str) -> dict[str, Any] | None:
        """The action whose total time in ``phase`` changed most."""
        rows = [r for r in self.rows if r["phase"] == phase and r["sum_change_s"] is not None]
        return max(rows, key=lambda r: abs(r["sum_change_s"]), default=None)

    @property
    def answer(self) -> str:
        """The sentence that answers "B is slower (or faster): where?"."""
        wa, wb, d = self.a["wall_s"], self.b["wall_s"], self.wall_change_s
        if self.identical:
            return (f"B took {fmt_s(wb)}, the same as A, with the same {self.a['actions']} "
                    "actions: no difference.")
        pct = d / wa * 100 if wa > 0 else None
        head = f"B took {fmt_s(wb)} against {fmt_s(wa)} for A ({_signed(d)}{_signed_pct(pct)})"
        if abs(d) < 1e-3:
            head = f"B took as long as A ({fmt_s(wb)}; {_signed(d)})"
        cats = sorted(self.category_changes.items(), key=lambda kv: -abs(kv[1]))
        floor = max(0.05 * abs(d), 1e-3)
        parts = []
        for cat, dc in cats[:3]:
            if abs(dc) < floor:
                continue
            share = ""
            if abs(d) >= 1e-3:
                share = (f" ({dc / d * 100:.0f}% of the difference)" if dc * d > 0
                         else " (the other way)")
            part = f"{CATEGORY_WORDS[cat]} {_signed(dc)}{share}"
            top = self._top_group(CATEGORY_PHASE[cat]) if cat in CATEGORY_PHASE else None
            if top is not None and top["sum_change_s"]:
                part += ", " + _group_change(top)
            parts.append(part)
        return head + (": " + "; ".join(parts) if parts else "") + "."

    def lines(self) -> list[str]:
        """The answer, then the details as sentences."""
        a, b = self.a, self.b
        out = [self.answer, ""]
        ch = self.category_changes
        out.append("Where the time went, B against A: " + ", ".join(
            f"{CATEGORY_WORDS[c]} {fmt_s(b['seconds'][c])} against {fmt_s(a['seconds'][c])}"
            f" ({_signed(ch[c])})" for c in CATEGORIES) + ".")
        fa, fb = a["first_action_s"], b["first_action_s"]
        out.append(f"Time to the first action: {fmt_s(fb)} against {fmt_s(fa)} "
                   f"({_signed(fb - fa) if fa is not None and fb is not None else '-'}); "
                   f"shutdown after the last one: {fmt_s(b['shutdown_s'])} against "
                   f"{fmt_s(a['shutdown_s'])} ({_signed(b['shutdown_s'] - a['shutdown_s'])}).")
        for cls in sorted(set(a["agent_startup"]) | set(b["agent_startup"])):
            sa, sb = a["agent_startup"].get(cls), b["agent_startup"].get(cls)
            ma, mb = (s["median_s"] if s else None for s in (sa, sb))
            out.append(f"{cls} start-up (launched to running, median): {fmt_s(mb)} against "
                       f"{fmt_s(ma)} ({_signed(_change(ma, mb)[0])}).")
        for what, names in (("new in B", self.new), ("missing from B", self.missing)):
            if names:
                out.append(f"Actions {what}: {', '.join(names)}.")
        for r in self.rows:
            if r["phase"] != "total" or r["presence"] != "both":
                continue
            name = f"{r['agent_class']}.{r['action']}"
            line = (f"{name}: {count(r['count_b'], 'call')} against {r['count_a']}; per call p50 "
                    f"{fmt_s(r['p50_b'])} against {fmt_s(r['p50_a'])} "
                    f"({_signed(r['p50_change_s'])}{_signed_pct(r['p50_change_pct'])}), p95 "
                    f"{fmt_s(r['p95_b'])} against {fmt_s(r['p95_a'])} "
                    f"({_signed(r['p95_change_s'])}{_signed_pct(r['p95_change_pct'])})")
            if r["count_a"] != r["count_b"]:
                line += (f"; in total {fmt_s(r['sum_b'])} against {fmt_s(r['sum_a'])} "
                         f"({_signed(r['sum_change_s'])})")
            out.append(line + ".")
        return out

    def table(self) -> Table:
        """Per (agent class, action, phase): counts, p50, p95 and totals, A and B."""
        return Table({c: [r[c] for r in self.rows] for c in COLUMNS}, name="diff")

    def readable_table(self) -> Table:
        """:meth:`table` for people: durations as the report writes them (``3.0 ms``,
        ``0.450 s``), each change with its sign and its percentage or ratio (``+0.447 s
        (149x)``)."""
        cols: dict[str, list[Any]] = {c: [r[c] for r in self.rows] for c in
                                      ("agent_class", "action", "phase", "presence")}
        cols["calls A"] = [r["count_a"] for r in self.rows]
        cols["calls B"] = [r["count_b"] for r in self.rows]
        for q in ("p50", "p95"):
            cols[f"{q} A"] = [fmt_s(r[f"{q}_a"]) for r in self.rows]
            cols[f"{q} B"] = [fmt_s(r[f"{q}_b"]) for r in self.rows]
            cols[f"{q} change"] = [_change_cell(r[f"{q}_change_s"], r[f"{q}_change_pct"])
                                   for r in self.rows]
        cols["total A"] = [fmt_s(r["sum_a"]) for r in self.rows]
        cols["total B"] = [fmt_s(r["sum_b"]) for r in self.rows]
        cols["total change"] = [_signed(r["sum_change_s"]) for r in self.rows]
        return Table(cols, name="diff")

    def as_dict(self) -> dict[str, Any]:
        ch = self.category_changes
        wa = self.a["wall_s"]
        return {
            "a": self.a, "b": self.b, "answer": self.answer, "identical": self.identical,
            "wall_change_s": self.wall_change_s,
            "wall_change_pct": self.wall_change_s / wa * 100 if wa > 0 else None,
            "categories": {c: {"a": self.a["seconds"][c], "b": self.b["seconds"][c],
                               "change_s": ch[c]} for c in CATEGORIES},
            "new": self.new, "missing": self.missing, "rows": self.rows,
            "lines": self.lines(),
        }


def diff(run_a: Run, run_b: Run) -> RunDiff:
    """Compare two runs (B against A)."""
    ga, gb = _groups(run_a), _groups(run_b)
    new = [f"{c}.{a}" for c, a in sorted(set(gb) - set(ga))]
    missing = [f"{c}.{a}" for c, a in sorted(set(ga) - set(gb))]
    return RunDiff(summarize(run_a), summarize(run_b), _rows(ga, gb), new, missing)
