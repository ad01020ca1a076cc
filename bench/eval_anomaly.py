"""Evaluate the slowdown detector on real demo runs with injected slowdowns.

    .venv/bin/python bench/eval_anomaly.py [--quick] [--keep DIR] [--load N]

Generates real runs of the fibonacci demo (thread executor, a few on process/HTTP; 1-2
pairs) into a temporary ACADEMY_HOME: runs with a slowdown of factor 2-8 lasting 1-4
iterations at a random position, and clean runs. Each run is judged twice:

- finished: :func:`features.detect.detect` fitted on the whole run;
- live: its completed actions replayed in completion order through a fresh
  :class:`features.detect.LiveDetector`, one at a time.

Ground truth comes from the agent, not from timings: an action is injected-slow when the
generator's ``fib.delay_s`` record inside it exceeds the run's base sleep.

``--load N`` keeps N busy-looping processes running meanwhile: a stress check of the
false-alarm rate when the agents compete for the CPU (not part of the targets).

Prints a table per run and the summary against the targets: recall >= 0.95 for slowdowns
of 3x or more; <= 1 false alarm per 1,000 normal actions; live detection within one
completed action of the onset (for onsets after the group's baseline exists: a live
baseline needs ``min_n`` calls past warm-up).
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

    def options(self, home: Path) -> DemoOptions:
        kw: dict[str, Any] = {}
        if self.executor == "process":
            kw = {"executor": "process", "exchange": "http"}
        if self.factor is not None:
            kw.update(slow_at=self.slow_at, slow_factor=self.factor, slow_len=self.slow_len)
        return DemoOptions(iterations=self.iterations, sleep=self.sleep, pairs=self.pairs,
                           academy_home=home, label="eval", **kw)


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
    if (judged & ~truth).any():
        out.max_normal_ratio = float(np.nanmax(ratio[judged & ~truth]))
    if (judged & truth).any():
        out.min_injected_ratio = float(np.nanmin(ratio[judged & truth]))
    _replay(out, feats, truth)
    return out


def _replay(out: Outcome, feats: Features, truth: np.ndarray) -> None:
    """Feed the completed actions one by one, in completion order, to a LiveDetector."""
    t = feats.table
    order = np.argsort(t["t_done"], kind="stable")
    order = order[np.isfinite(t["t_done"][order])]
    live = LiveDetector()
    for i in order:
        live.update_features(Features(t.take([i]), feats.X[[i]], feats.names))
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

    injected = [o for o in outs if o.case.factor]
    big = [o for o in injected if (o.case.factor or 0) >= 3]
    r_all, h_all, n_all = rec(injected)
    r_big, h_big, n_big = rec(big)
    lr_big, lh_big, _ = rec(big, live=True)
    normal = sum(o.normal_judged for o in outs)
    fa = sum(o.false_alarms for o in outs)
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
    return lines


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="every 4th case only")
    p.add_argument("--keep", type=Path, default=None, help="ACADEMY_HOME to keep the runs in")
    p.add_argument("--load", type=int, default=0, help="busy processes to run meanwhile")
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
        print(HEADER, flush=True)
        for case in cases(args.quick):
            t = time.perf_counter()
            res = run_demo(case.options(home))
            wall = time.perf_counter() - t
            if not res.ok:
                print(f"run failed: {res.error}", file=sys.stderr)
                return 1
            run = Run(res.pool_dir)
            run.load()
            outs.append(judge(case, run, wall))
            print(row(outs[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
