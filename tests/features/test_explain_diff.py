"""What differs about the slow ones (features.explain) and run against run
(features.diff, tui.cli.diff), on runs made here with real academy-py. Expected numbers
come from the raw .jsonlog lines, read with json, not from our reader."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.diff import diff
from features.explain import DURATIONS, action_fields, explain, explain_slowest
from features.fmt import fmt_s
from features.run import Run
from steering.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]
# A 10x slowdown: a scheduling hiccup on a loaded machine must not outdo it.
SLEEP, SLOW_AT, SLOW_LEN, FACTOR = 0.02, 10, 3, 10.0
SLOW_SLEEP = 0.05
"""The slow-pairs run's sleep: its slow calls (0.5 s) stay the slowest on a loaded machine,
where a 0.02 s call was once seen to take longer than 0.2 s."""
AB_SLOW = 4
"""Slowed calls of run B (20x): ~1.5 s more execution, well above start-up jitter on a
busy machine (with 2 calls, ~0.76 s, the share of the difference could drift out)."""


def _run(home: Path, **kw: Any) -> Run:
    res = run_demo(DemoOptions(academy_home=home, **kw))
    assert res.ok, res.error
    run = Run(res.pool_dir)
    run.load()
    return run


def raw(run: Run) -> list[dict[str, str]]:
    """Every record of the pool, parsed with json (one file per process)."""
    out = []
    for f in sorted(run.path.glob("*.jsonlog")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            rec["@file"] = f.name
            out.append(rec)
    return out


def raw_calls(run: Run, action: str) -> dict[str, dict[str, Any]]:
    """Per action tag: target agent, the agent side's processName and the state times."""
    calls: dict[str, dict[str, Any]] = defaultdict(dict)
    for r in raw(run):
        if r.get("academy.action") != action or "academy.action_state" not in r:
            continue
        c = calls[r["academy.action_tag"]]
        c.setdefault(r["academy.action_state"], float(r["created"]))
        if r["academy.action_state"] == "start":
            c["agent"] = r["academy.agent_id"]
        if r["academy.action_state"] == "execute_start":
            c["processName"] = r["processName"]
    return calls


@pytest.fixture(scope="module")
def slow_pairs(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Two generators in threads; in both, iterations 10..12 sleep 10x longer."""
    return _run(tmp_path_factory.mktemp("slow"), iterations=30, sleep=SLOW_SLEEP, pairs=2,
                slow_at=SLOW_AT, slow_len=SLOW_LEN, slow_factor=FACTOR)


@pytest.fixture(scope="module")
def process_pairs(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Two generators, each in its own spawned worker process, over the HTTP exchange."""
    return _run(tmp_path_factory.mktemp("proc"), iterations=10, sleep=SLEEP, pairs=2,
                executor="process", exchange="http")


@pytest.fixture(scope="module")
def runs_ab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """A plain run and the same run where iterations 5 and 6 sleep 20x longer."""
    home = tmp_path_factory.mktemp("ab")
    a = _run(home, iterations=15, sleep=SLEEP)
    b = _run(home, iterations=15, sleep=SLEEP, slow_at=5, slow_len=AB_SLOW, slow_factor=20.0)
    return a, b


# -- explain ---------------------------------------------------------------------------


def test_slowest_calls_differ_in_the_delay_the_agent_logged(slow_pairs: Run) -> None:
    run = slow_pairs
    e = explain_slowest(run, ("GeneratorAgent", "next_item"), fraction=0.1)
    # The truth, from the raw lines: per generator, the k-th call is iteration k.
    calls = raw_calls(run, "next_item")
    slow_tags = set()
    for agent in {c["agent"] for c in calls.values()}:
        mine = sorted((c["start"], t) for t, c in calls.items() if c["agent"] == agent)
        slow_tags |= {t for _, t in mine[SLOW_AT:SLOW_AT + SLOW_LEN]}
    acts = run.actions()
    assert len(calls) == 60 and len(slow_tags) == 2 * SLOW_LEN
    assert (e.n_selection, e.n_baseline) == (6, 54)
    chosen = set(acts["tag"][np.argsort(-acts["total_s"])][:6])
    assert chosen == slow_tags
    assert not e.too_small and e.differences
    top = e.differences[0]
    assert top.field == "fib.delay_s" and top.kind == "number" and top.score == 1.0
    assert top.median_selection == pytest.approx(SLOW_SLEEP * FACTOR)
    assert top.median_baseline == pytest.approx(SLOW_SLEEP)
    assert top.sentence == ("fib.delay_s is 0.500 in the slow next_item calls (median) "
                            "against 0.050 in the others (10.0x).")
    # The durations defined the selection: context, never an explanation.
    assert not {d.field for d in e.differences + e.candidates} & set(DURATIONS)
    assert e.symptoms == list(DURATIONS)
    lines = e.lines()
    assert lines[0].startswith("6 slow GeneratorAgent.next_item calls")
    # The slow calls' median execution: 0.5 s asleep, and whatever a loaded machine adds.
    assert re.search(r"execution 0\.5\d+ s against", lines[1]) and top.sentence in lines[3]
    js = json.loads(json.dumps(e.as_dict(), allow_nan=False))
    assert js["differences"][0]["field"] == "fib.delay_s" and js["lines"] == lines
    # The two generators are slow alike: the agent is no explanation.
    assert "agent_id" not in {d.field for d in e.differences}


def test_widened_fields_carry_the_agent_side_records(slow_pairs: Run) -> None:
    f = action_fields(slow_pairs)
    acts = slow_pairs.actions()
    assert len(f) == len(acts)
    nxt = acts["action"] == "next_item"
    assert np.isin(f["fib.delay_s"][nxt].astype(float),
                   [SLOW_SLEEP, SLOW_SLEEP * FACTOR]).all()
    # iteration logged by the agent inside the call = the call's rank for its agent
    for agent in set(acts["agent_id"][nxt]):
        mine = nxt & (acts["agent_id"] == agent)
        order = np.argsort(acts["t_start"][mine])
        assert f["fib.iteration"][mine][order].astype(int).tolist() == list(range(30))
    gen_pair = f["agent.fib.pair"][nxt].astype(int)
    assert sorted(set(gen_pair.tolist())) == [0, 1]
    assert set(f["processName"][nxt]) == {"MainProcess"}


def test_one_generators_calls_ran_in_its_own_process(process_pairs: Run) -> None:
    run = process_pairs
    acts = run.actions()
    calls = raw_calls(run, "next_item")
    gens = sorted({c["agent"] for c in calls.values()})
    assert len(gens) == 2
    sel_tags = [t for t, c in calls.items() if c["agent"] == gens[0]]
    other = [t for t, c in calls.items() if c["agent"] != gens[0]]
    proc = calls[sel_tags[0]]["processName"]
    assert proc.startswith("SpawnProcess-")
    share_sel = sum(calls[t]["processName"] == proc for t in sel_tags) / len(sel_tags)
    share_base = sum(calls[t]["processName"] == proc for t in other) / len(other)
    e = explain(run, sel_tags)
    assert (e.n_selection, e.n_baseline) == (len(sel_tags), len(other))
    top = e.differences[0]
    assert top.field == "processName" and top.value == proc
    assert (top.share_selection, top.share_baseline) == (share_sel, share_base) == (1.0, 0.0)
    assert top.sentence.startswith(
        f"100% of the selected next_item calls ran in {proc} against 0% of the others")
    assert "agent_id" in top.also  # the same split, said once
    # The same through a mask over run.actions().
    mask = np.isin(acts["tag"], sel_tags)
    assert explain(run, mask).differences[0].sentence == top.sentence


def test_too_small_selections_say_so(slow_pairs: Run) -> None:
    acts = slow_pairs.actions()
    nxt = np.flatnonzero(acts["action"] == "next_item")
    for sel in ([acts["tag"][nxt[0]]], list(acts["tag"][nxt[:2]])):
        e = explain(slow_pairs, sel)
        assert e.too_small and not e.differences
        assert any("too few to tell" in ln for ln in e.lines())
    e = explain(slow_pairs, list(acts["tag"][nxt[:10]]), baseline=list(acts["tag"][nxt[10:12]]))
    assert e.too_small and e.n_baseline == 2
    json.dumps(e.as_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="mask"):
        explain(slow_pairs, np.ones(3, dtype=bool))


# -- diff ------------------------------------------------------------------------------


def _durations(run: Run, action: str) -> dict[str, np.ndarray]:
    calls = raw_calls(run, action).values()
    return {"total": np.array([c["success"] - c["start"] for c in calls]),
            "execution": np.array([c["execute_success"] - c["execute_start"] for c in calls])}


def test_diff_matches_raw_numbers_and_finds_the_slowdown(runs_ab: tuple[Run, Run]) -> None:
    a, b = runs_ab
    d = diff(a, b)
    ra, rb = _durations(a, "next_item"), _durations(b, "next_item")
    for phase in ("total", "execution"):
        row = next(r for r in d.rows if r["action"] == "next_item" and r["phase"] == phase)
        assert (row["count_a"], row["count_b"]) == (15, 15)
        for q in (50, 95):
            pa, pb = np.percentile(ra[phase], q), np.percentile(rb[phase], q)
            assert row[f"p{q}_a"] == pytest.approx(pa, abs=1e-6)
            assert row[f"p{q}_b"] == pytest.approx(pb, abs=1e-6)
            assert row[f"p{q}_change_s"] == pytest.approx(pb - pa, abs=1e-6)
            assert row[f"p{q}_change_pct"] == pytest.approx((pb - pa) / pa * 100, rel=1e-4)
    assert sum(d.category_changes.values()) == pytest.approx(d.wall_change_s, abs=1e-6)
    # AB_SLOW calls slept 0.4 s instead of 0.02 s: ~1.5 s more execution, most of the change.
    extra = AB_SLOW * SLEEP * (20 - 1)
    assert d.category_changes["execution"] == pytest.approx(extra, abs=0.15)
    m = re.search(r"\): execution \+([\d.]+) (ms|s) \((\d+)% of the difference\), where "
                  r"next_item execution changed most", d.answer)
    assert m, d.answer
    assert d.answer.startswith(f"B took {fmt_s(d.b['wall_s'])} against {fmt_s(d.a['wall_s'])}")
    assert 60 <= int(m.group(3)) <= 140
    js = json.loads(json.dumps(d.as_dict(), allow_nan=False))
    assert js["answer"] == d.answer and len(d.table()) == 8


def test_diff_of_a_run_with_itself_is_no_difference(runs_ab: tuple[Run, Run]) -> None:
    a, _ = runs_ab
    d = diff(a, a)
    assert d.identical and "no difference" in d.answer
    assert d.wall_change_s == 0 and not any(d.category_changes.values())
    for r in d.rows:
        assert r["count_a"] == r["count_b"]
        assert r["p50_change_s"] == r["p95_change_s"] == r["sum_change_s"] == 0


def test_diff_lists_new_and_missing_actions_and_per_call_changes(
        sample: Callable[[str], Path], slow_pairs: Run, runs_ab: tuple[Run, Run]) -> None:
    plain, driver = Run(sample("thread")), Run(sample("agent_driver"))
    plain.load()
    driver.load()
    d = diff(plain, driver)
    assert d.new == ["FibonacciLauncher.run_fibs"] and d.missing == []
    assert "Actions new in B: FibonacciLauncher.run_fibs." in d.lines()
    assert diff(driver, plain).missing == ["FibonacciLauncher.run_fibs"]
    new_rows = [r for r in d.rows if r["action"] == "run_fibs"]
    assert {r["presence"] for r in new_rows} == {"new"} and new_rows[0]["count_a"] == 0
    # 60 calls against 15: per-call medians and totals, separately.
    d = diff(runs_ab[0], slow_pairs)
    row = next(r for r in d.rows if r["action"] == "next_item" and r["phase"] == "total")
    assert (row["count_a"], row["count_b"]) == (15, 60)
    assert row["sum_change_s"] == pytest.approx(row["sum_b"] - row["sum_a"])
    assert any(ln.startswith("GeneratorAgent.next_item: 60 calls against 15") and
               "in total" in ln for ln in d.lines())


# -- the command line ------------------------------------------------------------------


def test_cmd_diff_json(runs_ab: tuple[Run, Run], capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli.diff import cmd_diff

    a, b = runs_ab
    args = argparse.Namespace(run_a=str(a.path), run_b=str(b.path), format="json", home=None)
    assert cmd_diff(args) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["answer"] == diff(a, b).answer and js["a"]["uuid"] == a.uuid
    assert {r["action"] for r in js["rows"]} == {"calc_fibs", "next_item"}
    for fmt, marker in (("text", "B against A\n==="), ("markdown", "## B against A")):
        assert cmd_diff(argparse.Namespace(run_a=str(a.path), run_b=str(b.path),
                                           format=fmt)) == 0
        assert marker in capsys.readouterr().out


def test_cmd_diff_unknown_run_is_a_run_error(runs_ab: tuple[Run, Run]) -> None:
    from features.pools import RunError
    from tui.cli.diff import cmd_diff

    with pytest.raises(RunError):
        cmd_diff(argparse.Namespace(run_a=str(runs_ab[0].path), run_b="no-such-run",
                                    format="text", home=str(runs_ab[0].path.parents[1])))


def test_cli_diff_subprocess(runs_ab: tuple[Run, Run]) -> None:
    a, b = runs_ab
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "tui.cli", "diff", str(a.path), str(b.path),
                          "--format", "json"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["answer"].startswith("B took ")


def test_explain_works_on_a_partial_live_pool(slow_pairs: Run, tmp_path: Path) -> None:
    """The pool as a live reader sees it mid-run: every file cut at one instant, so
    actions are in flight and agents have records before their first action."""
    recs = raw(slow_pairs)
    times = sorted(float(r["created"]) for r in recs)
    for cut_at in (times[len(times) // 20], times[len(times) // 2]):
        pool = tmp_path / f"cut{cut_at}"
        pool.mkdir()
        for f in sorted(slow_pairs.path.glob("*.jsonlog")):
            keep = [ln for ln in f.read_text().splitlines()
                    if float(json.loads(ln)["created"]) <= cut_at]
            (pool / f.name).write_text("".join(ln + "\n" for ln in keep))
        run = Run(pool)
        run.load()
        fields = action_fields(run)
        assert len(fields) == len(run.actions())
        e = explain_slowest(run, ("GeneratorAgent", "next_item"), fraction=0.1)
        assert e.lines()  # too small or not, it says something and does not raise


def test_the_exact_ks_tail_is_scipys() -> None:
    """explain's exact two-sample Kolmogorov-Smirnov tail (a lattice-path count, 30
    lines) gives scipy's exact p-value for the same gap. It is kept because explain needs
    the inverse, the critical gap at a level, which scipy offers only for one sample
    (``kstwo``); this test holds the two to the same numbers."""
    import warnings

    from scipy.stats import ks_2samp

    from features.explain import _ks_tail

    rng = np.random.default_rng(7)
    checked = 0
    for n1, n2 in [(3, 33), (5, 5), (7, 12), (10, 40), (20, 25), (4, 60)]:
        for _ in range(20):
            x = rng.normal(0, 1, n1)
            y = rng.normal(rng.uniform(0, 2), 1, n2)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # scipy falling back to asymptotic
                try:
                    r = ks_2samp(x, y, method="exact")
                except RuntimeWarning:
                    continue
            g = round(float(r.statistic) * n1 * n2)
            assert _ks_tail(n1, n2, g) == pytest.approx(float(r.pvalue), abs=1e-12)
            checked += 1
    assert checked >= 100
