"""Evaluate the detector on real demo runs with injected slowdowns, level shifts, drift
and speed-ups.

    .venv/bin/python bench/eval_anomaly.py [--quick] [--keep DIR] [--load N]
        [--shifts N] [--drifts N] [--speedups N]

Generates real runs of the fibonacci demo (thread executor, a few on process/HTTP; 1-2
pairs) into a temporary ACADEMY_HOME:

- runs with a slowdown of factor 2-8 lasting 1-4 iterations at a random position, and
  clean runs (as before);
- level shifts: from a random iteration on, every call 2-6x slower, on 20-60% of the
  calls (``slow_len`` to the end);
- drift: the sleep grows steadily 3-10x from the first call to the last (``drift``);
- speed-ups: before a random iteration the driver calls ``set_sleep`` with a sleep
  2.5-10x shorter (``set_sleep_at``/``set_sleep_to``).

Each run is judged twice:

- finished: :func:`features.detect.detect` fitted on the whole run;
- live: its completed actions replayed in completion order through a fresh
  :class:`features.detect.LiveDetector`, one at a time.

Ground truth comes from the agent, not from timings: an action is injected-slow when the
generator's ``fib.delay_s`` record inside it exceeds the run's base sleep; a change is
where the options put it.

``--load N`` keeps N busy-looping processes running meanwhile: a stress check of the
false-alarm rate when the agents compete for the CPU (not part of the targets).

Prints a table per run and the summary against the targets: recall >= 0.95 for slowdowns
of 3x or more, for level shifts of 2x or more and for drifts of 3x or more (a change is
found when an incident of its kind starts within 2 calls of it); <= 1 false alarm per
1,000 normal actions (calls flagged slow that were not slowed, and change incidents in
runs without a change); speed-ups never reported as slowdowns (no call before the change
flagged slow); live detection within one completed action of the onset (for onsets after
the group's baseline exists: a live baseline needs ``min_n`` calls past warm-up).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.detect import LiveDetector, detect  # noqa: E402
from features.featurize import Features, action_features  # noqa: E402
from features.run import Run  # noqa: E402
from steering.demo import DemoOptions, run_demo  # noqa: E402

DELAY = "extra.fib.delay_s"


CHANGES = ("shift", "drift", "speedup")
KIND_OF = {"shift": "level_shift", "drift": "drift", "speedup": "speedup"}
"""Case kind -> the incident kind that finds it."""


@dataclass
class Case:
    """One run to make."""

    iterations: int
    sleep: float
    pairs: int = 1
    executor: str = "thread"
    factor: float | None = None
    slow_len: int = 1
    slow_at: int | None = None
    kind: str = "burst"
    """``burst`` (or clean, without ``factor``), ``shift``, ``drift`` or ``speedup``."""
    to: float | None = None
    """``speedup``: the new sleep."""

    def options(self, home: Path) -> DemoOptions:
        kw: dict[str, Any] = {}
        if self.executor == "process":
            kw = {"executor": "process", "exchange": "http"}
        if self.kind == "drift":
            kw.update(drift=self.factor)
        elif self.kind == "speedup":
            kw.update(set_sleep_at=self.slow_at, set_sleep_to=self.to)
        elif self.factor is not None:
            kw.update(slow_at=self.slow_at, slow_factor=self.factor, slow_len=self.slow_len)
        return DemoOptions(iterations=self.iterations, sleep=self.sleep, pairs=self.pairs,
                           academy_home=home, label="eval", **kw)

    @property
    def change_at(self) -> int:
        """The first iteration at the new level (a drift: 0)."""
        return 0 if self.kind == "drift" else int(self.slow_at or 0)


@dataclass
class Outcome:
    """What the detector did on one run."""

    case: Case
    wall_s: float
    actions: int = 0
    injected: int = 0
    found: int = 0
    normal_judged: int = 0
    false_alarms: int = 0
    incidents: int = 0
    live_found: int = 0
    live_false: int = 0
    delays: list[int | None] = field(default_factory=list)
    """Per injected episode (one per generator): completed actions between its onset
    and the live flag (None: missed)."""
    early: list[bool] = field(default_factory=list)
    """Per episode: the onset came before the group had a live baseline."""
    max_normal_ratio: float = float("nan")
    min_injected_ratio: float = float("nan")
    change_found: bool = False
    """A change case: an incident of its kind starts within 2 calls of it (per generator)."""
    change_words: str = ""
    change_ratio: float = float("nan")
    change_cause: bool = False
    """A speed-up: what happened around it names the set_sleep call."""
    other_changes: int = 0
    """Change incidents that are not the injected change (false alarms)."""
    before_slow: int = 0
    """A speed-up: calls before the change flagged slow."""
    live_change: int | None = None
    """Completed calls from the change to its live detection (None: not found live)."""


def change_cases(shifts: int, drifts: int, speedups: int) -> list[Case]:
    """Level shifts, drifts and speed-ups (seeded like :func:`cases`)."""
    rng = random.Random(20261)
    out: list[Case] = []
    for k in range(shifts):
        iters = rng.randint(30, 60)
        share = rng.uniform(0.2, 0.6)
        at = iters - max(round(share * iters), 6)
        out.append(Case(iters, rng.choice([0.02, 0.03, 0.04, 0.05]), pairs=1 + k % 2,
                        executor="process" if k == shifts - 1 else "thread",
                        factor=[2.0, 2.5, 3.0, 4.0, 6.0][k % 5], slow_len=iters, slow_at=at,
                        kind="shift"))
    for k in range(drifts):
        out.append(Case(rng.randint(30, 60), rng.choice([0.01, 0.02, 0.03]), pairs=1 + k % 2,
                        factor=[3.0, 4.0, 6.0, 10.0][k % 4], kind="drift"))
    for k in range(speedups):
        iters = rng.randint(30, 50)
        sleep = rng.choice([0.05, 0.08, 0.1])
        out.append(Case(iters, sleep, pairs=1 + k % 2, slow_at=rng.randint(8, iters - 10),
                        to=round(sleep / [2.5, 3.0, 5.0, 10.0][k % 4], 4), kind="speedup"))
    return out


def cases(quick: bool) -> list[Case]:
    """The evaluation design (seeded: every run of this script makes the same cases)."""
    rng = random.Random(20260)
    out: list[Case] = []
    factors = [2, 3, 4, 5, 6, 8, 3, 4, 2, 5, 3, 8, 6, 4, 3, 2, 5, 3, 4, 6, 3, 8]
    for k, f in enumerate(factors):
        iters = rng.randint(30, 60)
        length = rng.randint(1, 4)
        at = rng.randint(10, iters - length - 3)
        out.append(Case(iters, rng.choice([0.02, 0.03, 0.04, 0.05]), pairs=1 + k % 2,
                        factor=float(f), slow_len=length, slow_at=at))
    for f, at in ((4, 14), (3, 20), (6, 12)):
        out.append(Case(30, 0.02, executor="process", factor=float(f), slow_len=2,
                        slow_at=at))
    # Onsets inside the warm-up/baseline window: found in the finished run, late live.
    out.append(Case(40, 0.02, factor=4.0, slow_len=2, slow_at=3))
    out.append(Case(40, 0.03, pairs=2, factor=5.0, slow_len=1, slow_at=6))
    for k in range(11):
        out.append(Case(rng.randint(30, 60), rng.choice([0.02, 0.03, 0.04, 0.05]),
                        pairs=1 + k % 2))
    out.append(Case(30, 0.02, executor="process"))
    if quick:
        out = out[::4]
    return out


def judge(case: Case, run: Run, wall: float) -> Outcome:
    """Compare the finished and live judgements of ``run`` with its ground truth."""
    if case.kind in CHANGES:
        return judge_change(case, run, wall)
    out = Outcome(case, wall)
    feats = action_features(run)
    t = feats.table
    delay = t[DELAY] if DELAY in t else np.full(len(t), np.nan)
    truth = np.nan_to_num(delay) > case.sleep * 1.0001
    out.actions, out.injected = len(t), int(truth.sum())
    res = detect(run)
    fl = res.flags
    pos = {tag: i for i, tag in enumerate(fl["tag"].tolist())}
    row = np.array([pos[tag] for tag in t["tag"].tolist()])
    slow = fl["flag"][row] == "slow"
    judged = np.isin(fl["flag"][row], ("ok", "slow"))
    ratio = fl["ratio"][row]
    out.found = int((slow & truth).sum())
    out.normal_judged = int((judged & ~truth).sum())
    out.false_alarms = int((slow & ~truth).sum())
    out.incidents = len(res.incidents)
    out.other_changes = sum(1 for i in res.incidents if i.kind in KIND_OF.values())
    if (judged & ~truth).any():
        out.max_normal_ratio = float(np.nanmax(ratio[judged & ~truth]))
    if (judged & truth).any():
        out.min_injected_ratio = float(np.nanmin(ratio[judged & truth]))
    _replay(out, feats, truth)
    return out


def judge_change(case: Case, run: Run, wall: float) -> Outcome:
    """A level shift, drift or speed-up: found (kind, within 2 calls of where it is), its
    words, the calls before a speed-up flagged slow, other changes, live delay."""
    out = Outcome(case, wall)
    feats = action_features(run)
    t = feats.table
    nxt = t["action"] == "next_item"
    out.actions = len(t)
    res = detect(run)
    want = KIND_OF[case.kind]
    hits = [i for i in res.incidents if i.kind == want
            and abs(int(i.detail.get("at_call", -99)) - case.change_at) <= 2]
    out.change_found = bool(hits)
    out.other_changes = sum(1 for i in res.incidents if i.kind in KIND_OF.values()
                            and i not in hits)
    if hits:
        out.change_words = hits[0].describe()
        out.change_ratio = float(hits[0].max_ratio)
        out.change_cause = any("set_sleep" in c for c in hits[0].cause)
    fl = res.flags
    pos = {tag: i for i, tag in enumerate(fl["tag"].tolist())}
    row = np.array([pos[tag] for tag in t["tag"].tolist()])
    slow = fl["flag"][row] == "slow"
    judged = np.isin(fl["flag"][row], ("ok", "slow"))
    before = nxt & (t["call_index"] < case.change_at)
    if case.kind == "speedup":
        # Every call is normal for its level: the ones before the change most of all.
        out.before_slow = int((slow & before).sum())
        out.normal_judged, out.false_alarms = int(judged.sum()), int(slow.sum())
    elif case.kind == "shift":
        out.normal_judged = int((judged & (before | ~nxt)).sum())
        out.false_alarms = int((slow & (before | ~nxt)).sum())
    live = _live(feats)
    seen = [n for (key, kind, tag), n in live.changed_at.items() if kind == want
            and abs(int(t["call_index"][np.flatnonzero(t["tag"] == tag)[0]])
                    - case.change_at) <= 2]
    if seen:
        onset = t["tag"][nxt & (t["call_index"] == max(case.change_at, 0))]
        first = min(live.position[str(g)] for g in onset) if len(onset) else 0
        out.live_change = min(seen) - first
    return out


def _live(feats: Features) -> LiveDetector:
    """A LiveDetector fed the completed actions one by one, in completion order."""
    t = feats.table
    order = np.argsort(t["t_done"], kind="stable")
    order = order[np.isfinite(t["t_done"][order])]
    live = LiveDetector()
    for i in order:
        live.update_features(Features(t.take([i]), feats.X[[i]], feats.names))
    return live


def _replay(out: Outcome, feats: Features, truth: np.ndarray) -> None:
    """Feed the completed actions one by one, in completion order, to a LiveDetector."""
    t = feats.table
    live = _live(feats)
    flagged = set(live.flagged_at)
    tags = t["tag"]
    out.live_found = sum(1 for i in np.flatnonzero(truth) if tags[i] in flagged)
    out.live_false = sum(1 for i in np.flatnonzero(~truth) if tags[i] in flagged)
    # One episode per generator: its first injected action is the onset.
    for agent in sorted({a for a in t["agent_id"][truth].tolist()}):
        idx = np.flatnonzero(truth & (t["agent_id"] == agent))
        onset = tags[idx[np.argmin(t["t_done"][idx])]]
        first = [live.flagged_at[tags[i]] for i in idx if tags[i] in live.flagged_at]
        out.delays.append(None if not first else min(first) - live.position[onset])
        # Baseline forms after min_n calls past warm-up (one warm-up call per agent).
        n_before = int(np.sum((t["agent_class"] == t["agent_class"][idx[0]])
                              & (t["action"] == t["action"][idx[0]])
                              & (t["t_done"] < t["t_done"][idx[0]])
                              & (t["call_index"] >= 1)))
        out.early.append(n_before < live.detector.min_n)


def change_row(o: Outcome) -> str:
    c = o.case
    inj = (f"{c.factor:g}x@{c.slow_at}" if c.kind == "shift" else f"{c.factor:g}x" if
           c.kind == "drift" else f"{c.sleep:g}->{c.to:g}@{c.slow_at}")
    live = "miss" if o.live_change is None else str(o.live_change)
    return (f"{c.kind:8} {c.executor:7} {c.pairs:>2} {c.iterations:>4} {c.sleep:>5.2f} "
            f"{inj:>15} {'yes' if o.change_found else 'NO':>5} {o.change_ratio:>6.2f} "
            f"{o.other_changes:>5} {o.before_slow:>6} "
            f"{('yes' if o.change_cause else 'no') if c.kind == 'speedup' else '-':>6} "
            f"{live:>5} {o.wall_s:>6.1f}")


CHANGE_HEADER = ("kind     executor pr iter sleep       injection found  ratio other "
                 "b4slow  cause  live   wall")


def row(o: Outcome) -> str:
    c = o.case
    inj = f"{c.factor:g}x{c.slow_len}@{c.slow_at}" if c.factor else "clean"
    delays = ",".join("miss" if d is None else str(d) for d in o.delays) or "-"
    early = "*" if any(o.early) else " "
    return (f"{c.executor:7} {c.pairs:>2} {c.iterations:>4} {c.sleep:>5.2f} {inj:>10} "
            f"{o.actions:>5} {o.injected:>4} {o.found:>5} {o.false_alarms:>4} "
            f"{o.incidents:>4} {o.live_found:>5} {o.live_false:>4} {delays:>9}{early} "
            f"{o.min_injected_ratio:>6.2f} {o.max_normal_ratio:>6.2f} {o.wall_s:>6.1f}")


HEADER = ("executor pr iter sleep  injection  acts  inj found  FA  inc  live  lFA   delay  "
          "minInj maxNorm  wall")


def summary(outs: list[Outcome]) -> list[str]:
    """The aggregate numbers against the targets."""
    def rec(sel: list[Outcome], live: bool = False) -> tuple[float, int, int]:
        inj = sum(o.injected for o in sel)
        hit = sum(o.live_found if live else o.found for o in sel)
        return (hit / inj if inj else float("nan")), hit, inj

    changed = [o for o in outs if o.case.kind in CHANGES]
    outs = [o for o in outs if o.case.kind not in CHANGES]
    injected = [o for o in outs if o.case.factor]
    big = [o for o in injected if (o.case.factor or 0) >= 3]
    r_all, h_all, n_all = rec(injected)
    r_big, h_big, n_big = rec(big)
    lr_big, lh_big, _ = rec(big, live=True)
    normal = sum(o.normal_judged for o in outs + changed)
    fa = sum(o.false_alarms for o in outs + changed)
    lfa = sum(o.live_false for o in outs)
    per_k = 1000 * fa / normal if normal else float("nan")
    lper_k = 1000 * lfa / normal if normal else float("nan")
    on_time = [d for o in big for d, e in zip(o.delays, o.early, strict=True) if not e]
    late = [d for o in big for d, e in zip(o.delays, o.early, strict=True) if e]
    ok_delay = [d for d in on_time if d is not None and d <= 1]
    clean = [o for o in outs if not o.case.factor]
    lines = [
        f"runs: {len(injected)} with injected slowdowns, {len(clean)} clean; "
        f"{sum(o.actions for o in outs)} actions",
        f"recall, all factors (2-8x):   {r_all:.3f} ({h_all}/{n_all} injected actions)",
        f"recall, factor >= 3:          {r_big:.3f} ({h_big}/{n_big})   target >= 0.95  "
        f"{'PASS' if r_big >= 0.95 else 'FAIL'}",
        f"live recall, factor >= 3:     {lr_big:.3f} ({lh_big}/{n_big})",
        f"false alarms / 1000 normal:   {per_k:.2f} ({fa} of {normal} judged normal actions)"
        f"   target <= 1  {'PASS' if per_k <= 1 else 'FAIL'}",
        f"live false alarms / 1000:     {lper_k:.2f} ({lfa})",
        f"clean runs with an incident:  {sum(1 for o in clean if o.incidents)} of {len(clean)}",
        f"live delay (onset after baseline, factor >= 3): {len(ok_delay)}/{len(on_time)} "
        f"episodes within 1 action; delays {sorted(d for d in on_time if d is not None)}"
        f"{' missed ' + str(on_time.count(None)) if None in on_time else ''}   target all  "
        f"{'PASS' if on_time and len(ok_delay) == len(on_time) else 'FAIL'}",
        f"live delay (onset before the baseline existed): {late}",
    ]
    return lines + change_summary(outs, changed, normal)


def change_summary(plain: list[Outcome], changed: list[Outcome], normal: int) -> list[str]:
    """Level shifts, drift, speed-ups against their targets."""
    out: list[str] = []

    def rate(sel: list[Outcome]) -> str:
        hit = sum(o.change_found for o in sel)
        return f"{hit / len(sel):.3f} ({hit}/{len(sel)})" if sel else "- (no runs)"

    def live(sel: list[Outcome]) -> str:
        d = sorted(o.live_change for o in sel if o.live_change is not None)
        miss = sum(o.live_change is None for o in sel)
        return f"found live in {len(d)}/{len(sel)}, calls after the change: {d}" + \
            (f" (missed {miss})" if miss else "")

    for kind, floor, label in (("shift", 2.0, "level shifts >= 2x"),
                               ("drift", 3.0, "drifts >= 3x"),
                               ("speedup", 0.0, "speed-ups")):
        sel = [o for o in changed if o.case.kind == kind and (o.case.factor or 9) >= floor]
        if not sel:
            continue
        hit = sum(o.change_found for o in sel)
        ok = hit >= 0.95 * len(sel)
        target = "   target >= 0.95  " + ("PASS" if ok else "FAIL") if kind != "speedup" else ""
        out.append(f"recall, {label + ':':<22}{rate(sel)}{target}")
        out.append(f"  live: {live(sel)}")
    sp = [o for o in changed if o.case.kind == "speedup"]
    if sp:
        b4 = sum(o.before_slow for o in sp)
        out.append(f"speed-ups reported as slowdowns: {b4} call(s) before the change flagged "
                   f"slow in {len(sp)} runs   target 0  {'PASS' if b4 == 0 else 'FAIL'}")
        out.append(f"speed-ups whose cause names the set_sleep call: "
                   f"{sum(o.change_cause for o in sp)}/{sum(o.change_found for o in sp)}")
    fa_changes = sum(o.other_changes for o in plain + changed)
    calls = sum(o.actions for o in plain + changed)
    out.append(f"change incidents where none was injected: {fa_changes} in "
               f"{len(plain) + len(changed)} runs ({1000 * fa_changes / max(calls, 1):.2f} "
               f"per 1000 calls)   target <= 1  "
               f"{'PASS' if 1000 * fa_changes / max(calls, 1) <= 1 else 'FAIL'}")
    examples = [o.change_words for o in changed if o.change_words]
    if examples:
        out.append("examples of the words:")
        seen: set[str] = set()
        for o in changed:
            if o.change_words and o.case.kind not in seen:
                seen.add(o.case.kind)
                out.append(f"  {o.change_words}")
    return out


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="every 4th case only")
    p.add_argument("--keep", type=Path, default=None, help="ACADEMY_HOME to keep the runs in")
    p.add_argument("--load", type=int, default=0, help="busy processes to run meanwhile")
    p.add_argument("--shifts", type=int, default=10, help="level-shift runs (default 10)")
    p.add_argument("--drifts", type=int, default=8, help="drift runs (default 8)")
    p.add_argument("--speedups", type=int, default=8, help="speed-up runs (default 8)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    outs: list[Outcome] = []
    spinners = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
                for _ in range(args.load)]
    for sp in spinners:
        sp.start()
    try:
        code = _evaluate(args, outs)
    finally:
        for sp in spinners:
            sp.terminate()
            sp.join()
    if code:
        return code
    print("(delay: completed actions from the onset to its live flag; * onset before the "
          "live baseline existed)")
    print()
    if args.load:
        print(f"under load: {args.load} busy process(es) ran meanwhile")
    print("\n".join(summary(outs)))
    print(f"evaluation took {time.perf_counter() - t0:.0f}s")
    return 0


def _evaluate(args: argparse.Namespace, outs: list[Outcome]) -> int:
    """Make the runs and judge each one, printing a row per run."""
    with tempfile.TemporaryDirectory(prefix="eval-anomaly-") as tmp:
        home = args.keep or Path(tmp)
        div = 4 if args.quick else 1
        more = change_cases(*(-(-n // div) for n in (args.shifts, args.drifts,
                                                     args.speedups)))
        for header, todo, show in ((HEADER, cases(args.quick), row),
                                   (CHANGE_HEADER, more, change_row)):
            print(header, flush=True)
            for case in todo:
                t = time.perf_counter()
                res = run_demo(case.options(home))
                wall = time.perf_counter() - t
                if not res.ok:
                    print(f"run failed: {res.error}", file=sys.stderr)
                    return 1
                run = Run(res.pool_dir)
                run.load()
                outs.append(judge(case, run, wall))
                print(show(outs[-1]), flush=True)
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
