"""Features and the slowdown detector (features.featurize, features.anomaly,
features.detect) on real runs of the demo workflow and the sample pools. Expected values
come from the agent's own records (``fib.iteration``, ``fib.delay_s``) and from the raw
.jsonlog lines read with json, not from our reader."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from rawspans import raw_really_slow_tags
from sklearn.base import clone

from features.anomaly import SlowdownDetector
from features.detect import HUNG, HUNG_FLAG, DetectionResult, LiveDetector, detect, incidents
from features.featurize import (
    ACTION_FEATURES,
    AGENT_FEATURES,
    CATEGORICAL,
    PROCESS_FEATURES,
    Features,
    _read_lengths,
    action_features,
    agent_features,
    process_features,
)
from features.featurize_live import ActionFeaturizer
from features.record_keys import PAYLOAD_ARGS, PAYLOAD_RESULT
from features.run import Run
from features.table import Table
from steering.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]
# 50 ms steps: with 20 ms ones, a scheduler hiccup of ~30 ms on a busy machine made an
# unslowed call really 2.5x slow, and the detector was right to flag it.
SLEEP, SLOW_AT, SLOW_LEN, FACTOR, ITERATIONS = 0.05, 20, 3, 4.0, 36
NEXT = "GeneratorAgent.next_item"


ATTEMPTS = 4


def _run(home: Path, **kw: Any) -> Run:
    """A demo run whose only slow calls are the injected ones. The tests check the
    detector against that ground truth exactly, so a run in which a busy machine made an
    unslowed call really slow (over twice the median in the raw lines; CI met one at
    2.5x) is made again rather than judged: up to ``ATTEMPTS`` runs."""
    noisy: set[str] = set()
    for attempt in range(ATTEMPTS):
        res = run_demo(DemoOptions(academy_home=home / f"attempt-{attempt}", sleep=SLEEP,
                                   **kw))
        assert res.ok, res.error
        noisy = raw_really_slow_tags(Path(res.pool_dir), SLEEP)
        if not noisy:
            run = Run(res.pool_dir)
            run.load()
            return run
    raise AssertionError(f"machine too busy: {ATTEMPTS} runs each had calls slow without "
                         f"injection (last: {len(noisy)})")


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Iterations 20..22 of one generator sleep 4x longer."""
    return _run(tmp_path_factory.mktemp("slow"), iterations=ITERATIONS, slow_at=SLOW_AT,
                slow_factor=FACTOR, slow_len=SLOW_LEN)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("clean"), iterations=30)


def raw_records(pool: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(pool.glob("*.jsonlog"))
            for line in f.read_text().splitlines()]


def iterations_of(run: Run, tags: list[str]) -> list[int]:
    """The generator's ``fib.iteration`` for each action tag."""
    t = action_features(run).table
    pos = {tag: i for i, tag in enumerate(t["tag"].tolist())}
    return sorted(int(t["extra.fib.iteration"][pos[tag]]) for tag in tags)


def slowdowns(res: DetectionResult) -> list[Any]:
    return [i for i in res.incidents if i.kind == "slowdown"]


# -- features ---------------------------------------------------------------------------


def test_action_feature_schema(slow_run: Run) -> None:
    feats = action_features(slow_run)
    t = feats.table
    names = [n for n, _ in ACTION_FEATURES]
    assert all(desc for _, desc in ACTION_FEATURES)
    assert feats.names[: len(names)] == names
    for n in feats.names:
        assert n in t, n
    assert feats.X.shape == (len(t), len(feats.names))
    assert np.array_equal(feats.X[:, names.index("exec_s")], t["exec_s"], equal_nan=True)
    done = t["status"] == "ok"
    assert done.all()
    for n in ("queue_s", "exec_s", "reply_s", "total_s", "args_len", "result_len",
              "executing_at_start", "start_offset_s", "call_index", "agent_class_code",
              "action_code", "process_code"):
        assert np.isfinite(t[n]).all(), n
    assert (t["executing_at_start"] >= 1).all() and (t["start_offset_s"] >= 0).all()
    # One caller: only its first call has no previous call to be idle after.
    assert np.isnan(t["caller_gap_s"]).sum() == 1 and np.isnan(t["caller_gap_s"][0])
    nxt = t["action"] == "next_item"
    # The driver sleeps SLEEP between calls; the gap is that sleep (plus bookkeeping).
    assert np.nanmedian(t["caller_gap_s"][nxt]) == pytest.approx(SLEEP, abs=0.01)
    assert list(t["call_index"][nxt]) == list(range(ITERATIONS))
    assert list(t["extra.fib.iteration"][nxt]) == list(range(ITERATIONS))
    slow = (t["extra.fib.iteration"] >= SLOW_AT) & (t["extra.fib.iteration"] < SLOW_AT + SLOW_LEN)
    assert np.allclose(t["extra.fib.delay_s"][slow], SLEEP * FACTOR)
    assert np.allclose(t["extra.fib.delay_s"][nxt & ~slow], SLEEP)
    assert np.isnan(t["extra.fib.iteration"][~nxt]).all()
    # Payload sizes, checked against the raw records.
    raw = raw_records(slow_run.path)
    start = {r["academy.action_tag"]: r for r in raw if r.get("academy.action_state") == "start"}
    ok = {r["academy.action_tag"]: r for r in raw if r.get("academy.action_state") == "success"}
    for i, tag in enumerate(t["tag"].tolist()):
        s = start[tag]
        assert t["args_len"][i] == len(s["academy.action_args"]) + len(s["academy.action_kwargs"])
        assert t["result_len"][i] == len(ok[tag]["academy.result"])


def test_payload_sizes_of_long_values_are_their_lengths(sample: Callable[[str], Path]
                                                        ) -> None:
    """64 KiB action results (a text no number or id is that long): ``result_len`` is the
    length of the raw value, as for short ones, and ``args_len`` too."""
    run = Run(sample("big_records"))
    run.load()
    t = action_features(run).table
    raw = raw_records(run.path)
    start = {r["academy.action_tag"]: r for r in raw if r.get("academy.action_state") == "start"}
    ok = {r["academy.action_tag"]: r for r in raw if r.get("academy.action_state") == "success"}
    longs = 0
    for i, tag in enumerate(t["tag"].tolist()):
        if tag not in ok:
            continue
        longs += len(ok[tag]["academy.result"]) > 40
        assert t["result_len"][i] == len(ok[tag]["academy.result"])
        s = start[tag]
        assert t["args_len"][i] == len(s["academy.action_args"]) + len(s["academy.action_kwargs"])
    assert longs > 10


@pytest.mark.parametrize("name", ["thread", "exception", "agent_driver", "pairs",
                                  "big_records", "fork"])
def test_payload_sizes_worked_out_when_read_are_those_read_back(
        sample: Callable[[str], Path], name: str) -> None:
    """The parse works out the payload sizes of every record that carries an action's
    arguments or result (64 KiB results, records recovered from corrupt lines, calls
    that raised included): the same as reading those records back from the files, and
    of those records exactly."""
    run = Run(sample(name))
    run.load()
    store, ev = run.store, run.events()
    known = store.payload_rows.view().copy()
    carriers = {c for c, keys in enumerate(store.shape_keys)
                if set(keys) & {*PAYLOAD_ARGS, *PAYLOAD_RESULT}}
    assert known.tolist() == [r for r, c in enumerate(store.shape.view().tolist())
                              if c in carriers]
    assert len(known)
    args, result = np.full(len(known), np.nan), np.full(len(known), np.nan)
    _read_lengths(ev, known, np.ones(len(known), dtype=bool), args, result)
    for stored, read in ((store.payload_args, args), (store.payload_result, result)):
        np.testing.assert_array_equal(stored.view(len(known)), np.nan_to_num(read, nan=-1))
    # ... and as the features give them
    t = action_features(run).table
    starts = dict(zip(known.tolist(), args.tolist(), strict=True))
    ends = dict(zip(known.tolist(), result.tolist(), strict=True))
    for i in range(len(t)):
        if int(t["row_start"][i]) in starts:
            np.testing.assert_equal(t["args_len"][i], starts[int(t["row_start"][i])])
        if t["status"][i] == "ok" and int(t["row_end"][i]) in ends:
            np.testing.assert_equal(t["result_len"][i], ends[int(t["row_end"][i])])
    assert np.isfinite(args).any() and np.isfinite(result).any()


def test_agent_and_process_features(slow_run: Run) -> None:
    for feats, schema in ((agent_features(slow_run), AGENT_FEATURES),
                          (process_features(slow_run), PROCESS_FEATURES)):
        assert feats.names == [n for n, _ in schema]
        assert np.isfinite(feats.X).all()
    ag = agent_features(slow_run).table
    gen = ag["class"] == "GeneratorAgent"
    assert ag["actions"][gen][0] == ITERATIONS
    assert ag["max_exec_s"][gen][0] > SLEEP * FACTOR
    assert (ag["startup_s"] >= 0).all() and (ag["errors"] == 0).all()


def test_featurizer_hands_out_each_action_once(slow_run: Run) -> None:
    fz = ActionFeaturizer()
    first = fz.update(slow_run)
    assert len(first.table) == len(slow_run.actions())
    assert (np.diff(first.table["t_done"]) >= 0).all()
    assert len(fz.update(slow_run).table) == 0


# -- finished runs ---------------------------------------------------------------------


def test_injected_slowdown_is_one_incident(slow_run: Run) -> None:
    res = detect(slow_run)
    found = slowdowns(res)
    assert len(found) == 1, res.lines()
    inc = found[0]
    assert inc.group == NEXT and inc.count == SLOW_LEN
    assert iterations_of(slow_run, inc.tags) == list(range(SLOW_AT, SLOW_AT + SLOW_LEN))
    assert inc.max_ratio == pytest.approx(FACTOR, rel=0.15)
    assert inc.evidence_rows and all(t["ratio"] >= 2.5 for t in inc.things)
    # calc_fibs is called once: no baseline, said so rather than guessed.
    assert "FibonacciLauncher.calc_fibs" in res.too_little_data
    assert any("calc_fibs: not enough data (n=1" in n for n in res.notes)
    d = orjson.loads(orjson.dumps(res.as_dict()))
    assert d["incidents"][0]["tags"] == inc.tags
    assert {b["group"] for b in d["baselines"]} == {NEXT, "FibonacciLauncher.calc_fibs"}


def test_clean_run_has_no_incident(clean_run: Run) -> None:
    res = detect(clean_run)
    assert res.incidents == [], res.lines()
    flags = set(res.flags["flag"].tolist())
    assert flags <= {"ok", "warm-up", "not enough data"}


def test_estimator_conventions(slow_run: Run) -> None:
    feats = action_features(slow_run)
    det = SlowdownDetector(min_n=6)
    assert clone(det).get_params() == det.get_params()
    assert not hasattr(det, "baselines_")
    assert det.fit(feats) is det
    pred = det.predict(feats)
    slow = feats.table["extra.fib.delay_s"] > SLEEP * 1.01
    assert np.array_equal(pred == -1, slow)
    scores = det.score_samples(feats)
    assert np.nanargmin(scores) in np.flatnonzero(slow)
    assert (det.decision_function(feats)[slow] < 0).all()
    assert det.mv_ is not None
    i = int(slow.argmax())
    assert det.assess(feats)["mv_score"][i] == pytest.approx(
        det.mv_.score_samples(det._aligned(feats))[i])


def test_multivariate_off(slow_run: Run) -> None:
    feats = action_features(slow_run)
    det = SlowdownDetector(min_n=6, multivariate=False)
    assert det.get_params()["multivariate"] is False
    assert clone(det).get_params() == det.get_params()
    assert SlowdownDetector().get_params()["multivariate"] is True
    assert det.fit(feats) is det
    assert det.mv_ is None
    flags = det.assess(feats)
    assert np.isnan(flags["mv_score"]).all() and not flags["mv_outlier"].any()
    on = SlowdownDetector(min_n=6).fit(feats)
    assert np.array_equal(det.predict(feats), on.predict(feats))  # the baselines decide


def test_user_key_appearing_mid_run(slow_run: Run) -> None:
    """A numeric user key first logged mid-run widens the features between two refits of
    the forest: scoring uses the columns the forest was trained on, by name."""
    feats = action_features(slow_run)
    t = feats.table
    order = np.argsort(t["t_done"])
    first, later = order[: len(order) // 2], order[len(order) // 2:]
    keep = [j for j, n in enumerate(feats.names) if not n.startswith("extra.")]
    narrow_names = [feats.names[j] for j in keep]
    narrow = Table({c: t[c] for c in t.columns if not c.startswith("extra.")},
                   name=t.name)
    new = np.arange(len(t), dtype=np.float64)
    wide = Table({**{c: t[c] for c in t.columns}, "extra.zz.new": new}, name=t.name)
    wide_X = np.column_stack([feats.X, new])
    wide_names = [*feats.names, "extra.zz.new"]
    assert len(wide_names) > len(narrow_names)
    live = LiveDetector(SlowdownDetector(refit_every=10_000))
    for i in first:
        live.update_features(Features(narrow.take([i]), feats.X[[i]][:, keep],
                                      narrow_names))
    det = live.detector
    assert det.mv_ is not None and det.mv_feature_names_ == narrow_names
    for i in later:
        live.update_features(Features(wide.take([i]), wide_X[[i]], wide_names))
    assert det.feature_names_ == wide_names  # widened, forest not refitted
    assert det.mv_feature_names_ == narrow_names
    flags = live.flags()
    assert len(flags) == len(t) and set(live.position) == set(t["tag"].tolist())
    assert "in flight" not in set(flags["flag"].tolist())
    late = np.isin(flags["tag"], t["tag"][later])
    assert np.isfinite(flags["mv_score"][late]).all()  # scored, not skipped
    assert iterations_of(slow_run, list(live.flagged_at)) == list(
        range(SLOW_AT, SLOW_AT + SLOW_LEN))
    # A trained column a call lacks is imputed, not an error.
    det.assess(Features(narrow.take([0]), np.empty((1, 0)), []))


def test_exception_sample(sample: Callable[[str], Path]) -> None:
    run = Run(sample("exception"))
    run.load()
    res = detect(run)
    assert slowdowns(res) == []
    assert "exception" in set(res.flags["status"].tolist())
    orjson.dumps(res.as_dict())


def test_pairs_sample(sample: Callable[[str], Path]) -> None:
    run = Run(sample("pairs"))
    run.load()
    assert len(agent_features(run).table) == 16
    res = detect(run)
    assert slowdowns(res) == [], res.lines()
    base = {b.group: b for b in res.baselines}
    assert base[NEXT].n == 648 and base[NEXT].enough
    # Eight launchers, each called once: the group is its own baseline (no warm-up).
    calc = base["FibonacciLauncher.calc_fibs"]
    assert calc.enough and not calc.warmup and calc.n == 8


def _hung_last(sample: Callable[[str], Path], tmp_path: Path) -> tuple[Run, str]:
    """A copy of the thread sample whose last next_item lost its end records, read; and
    that call's tag."""
    src = sample("thread")
    pool = tmp_path / "logs" / src.name
    shutil.copytree(src, pool)
    [log] = list(pool.glob("*.jsonlog"))
    lines = log.read_text().splitlines(keepends=True)
    recs = [json.loads(line) for line in lines]
    last = [r["academy.action_tag"] for r in recs if r.get("academy.action") == "next_item"
            and r.get("academy.action_state") == "start"][-1]
    log.write_text("".join(line for line, r in zip(lines, recs, strict=True)
                           if not (r.get("academy.action_tag") == last and r.get(
                               "academy.action_state") in ("success", "execute_success"))))
    run = Run(pool)
    run.load()
    return run, last


def test_possibly_hung(sample: Callable[[str], Path], tmp_path: Path) -> None:
    """The last next_item of a copied pool loses its end records: a live reader sees it
    in flight far longer than any next_item took."""
    run, last = _hung_last(sample, tmp_path)
    assert run.live
    res = detect(run)
    row = res.flags["tag"].tolist().index(last)
    assert res.flags["flag"][row] == HUNG_FLAG
    [inc] = [i for i in res.incidents if i.kind == HUNG]
    assert inc.tags == [last]
    # Judged just after it started, the same call is merely in flight.
    t_start = float(res.flags["t_start"][row])
    early = detect(run, now=t_start + 0.05)
    assert early.flags["flag"][early.flags["tag"].tolist().index(last)] == "in flight"
    assert not [i for i in early.incidents if i.kind == HUNG]


def test_a_live_detector_judges_hangs_from_the_calls_in_flight_alone(
        sample: Callable[[str], Path], tmp_path: Path) -> None:
    """A live detector (the steering watcher's) looks for hangs with the features of the
    calls in flight only, not of every call of the run (2.3 s of CPU at 1M records per
    look): the same calls with the same values as the whole run's features give them,
    its categorical codes its own featurizer's, and the same hang as ``detect``."""
    run, last = _hung_last(sample, tmp_path)
    live = LiveDetector()
    live.update(run)
    mine = live._inflight(run)
    whole = action_features(run)
    fly = np.flatnonzero(whole.table["status"] == "in flight")
    assert mine.table["tag"].tolist() == whole.table["tag"][fly].tolist() == [last]
    assert set(mine.names) <= set(whole.names)
    for name in mine.names:
        got = mine.X[:, mine.names.index(name)]
        if name in CATEGORICAL:  # the featurizer's codes: those of the calls it learnt on
            raw = CATEGORICAL[name]
            want = [live.featurizer.vocab.codes[raw].get(str(v), -1)
                    for v in mine.table[raw].tolist()]
            assert got.tolist() == want, name
        else:
            np.testing.assert_array_equal(got, whole.X[fly, whole.names.index(name)],
                                          err_msg=name)
    now = float(mine.table["t_start"][0]) + 3600
    res = live.result(run, now=now)
    assert [i.tags for i in res.incidents if i.kind == HUNG] == [[last]]
    assert [i.tags for i in detect(run, now=now).incidents if i.kind == HUNG] == [[last]]


# -- live ------------------------------------------------------------------------------


def test_replay_matches_finished_run(slow_run: Run) -> None:
    feats = action_features(slow_run)
    t = feats.table
    live = LiveDetector()
    for i in np.argsort(t["t_done"]):
        live.update_features(Features(t.take([i]), feats.X[[i]], feats.names))
    slow_tags = set(detect(slow_run).flags.where(
        detect(slow_run).flags["flag"] == "slow")["tag"].tolist())
    assert set(live.flagged_at) == slow_tags
    assert all(live.flagged_at[tag] == live.position[tag] for tag in slow_tags)
    assert len(slowdowns(live.result())) == 1


def test_lasting_change_is_rebaselined(tmp_path: Path) -> None:
    """A slowdown that lasts (20 of 36 calls) is a new normal for a live detector after
    ``shift_after`` slow calls in a row, not an incident without end; and it is said as
    what it is: a level shift from call 10 that went back at call 30, not 6 slow calls."""
    run = _run(tmp_path, iterations=36, slow_at=10, slow_len=20, slow_factor=FACTOR)
    feats = action_features(run)
    t = feats.table
    live = LiveDetector(SlowdownDetector(shift_after=6))
    for i in np.argsort(t["t_done"]):
        live.update_features(Features(t.take([i]), feats.X[[i]], feats.names))
    assert iterations_of(run, list(live.flagged_at)) == list(range(10, 16))
    res = live.result()
    assert any("re-baselined" in n for n in res.notes)
    for found in (res, detect(run)):
        [inc] = [i for i in found.incidents if i.kind == "level_shift"]
        assert iterations_of(run, inc.tags) == list(range(10, 30)), found.lines()
        assert re.fullmatch(r"#\d+ high: from \+\d+\.\d s \(call 10\) GeneratorAgent\."
                            r"next_item takes 0\.\d\d s, [34]\.\dx its earlier \d+\.\d ms "
                            r"\(a level shift over 20 calls, until \+\d+\.\d s \(call 30\) "
                            r"when it went back\)(; around it: .*)?", inc.describe()), \
            inc.describe()
        # Its calls are the shift, not slow calls as well.
        assert not {tg for i in slowdowns(found) for tg in i.tags} & set(inc.tags)


def test_live_run_flags_first_slow_action(tmp_path: Path) -> None:
    sleep, slow_at = 0.03, 25
    proc = subprocess.Popen(
        [sys.executable, "-m", "steering.demo.workflow", "--iterations", "40", "--sleep",
         str(sleep), "--slow-at", str(slow_at), "--slow-factor", "5", "--academy-home",
         str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("pool: "), line + proc.stderr.read() if proc.stderr else ""
        run = Run(line.removeprefix("pool: ").strip())
        live = LiveDetector()
        flagged_in: dict[str, int] = {}
        completed_in: dict[str, int] = {}
        polls = 0
        while True:
            running = proc.poll() is None
            run.refresh()
            before = set(live.position)
            for tag in live.update(run):
                flagged_in[tag] = polls
            for tag in set(live.position) - before:
                completed_in[tag] = polls
            polls += 1
            if not running:
                break
            time.sleep(0.02)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert polls > 20  # really followed live, not read at the end
    t = action_features(run).table
    slow = t["tag"][np.nan_to_num(t["extra.fib.delay_s"]) > sleep * 1.01].tolist()
    assert iterations_of(run, slow) == [slow_at]
    onset = slow[0]
    assert onset in live.flagged_at, live.result(run).lines()
    assert live.flagged_at[onset] - live.position[onset] <= 1
    assert flagged_in[onset] == completed_in[onset]  # judged in the poll it arrived in
    res = live.result(run)
    found = [i.tags for i in slowdowns(res)]
    assert [onset] in found
    # Anything else flagged was really slow in the raw lines (a busy machine does that).
    others = {t for tags in found if tags != [onset] for t in tags}
    assert others <= raw_really_slow_tags(run.path, sleep), found
    assert not math.isnan(res.now)


def test_report_lists_incidents_with_explanations(slow_run: Run, clean_run: Run) -> None:
    from features.render import render_markdown, render_text, to_json
    from features.report import build

    secs = build(slow_run)
    js = orjson.loads(orjson.dumps(to_json(secs), option=orjson.OPT_SERIALIZE_NUMPY,
                                   default=str))
    data = js["anomalies"]["data"]
    assert len(data["incidents"]) == 1
    inc = data["incidents"][0]
    assert inc["group"] == NEXT and inc["count"] == SLOW_LEN
    assert iterations_of(slow_run, inc["tags"]) == list(range(SLOW_AT, SLOW_AT + SLOW_LEN))
    # What differs: the delay the slow calls logged (fib.delay_s), with both medians.
    top = inc["explanation"]["differences"][0]
    assert top["field"] == "fib.delay_s"
    assert top["median_selection"] == pytest.approx(SLEEP * FACTOR)
    assert top["median_baseline"] == pytest.approx(SLEEP)
    text = render_text(secs)
    section = text[text.index("Anomalies\n"):]
    assert section.splitlines()[2].startswith("#1 ") and NEXT in section.splitlines()[2]
    # The evidence names the file and line of the first slow call's start record.
    m = re.search(r"\[([0-9a-f]{8}):(\d+)\]", section.splitlines()[2])
    assert m is not None
    f = next(p for p in slow_run.path.glob("*.jsonlog") if p.name.startswith(m.group(1)))
    rec = json.loads(f.read_text().splitlines()[int(m.group(2)) - 1])
    assert rec["academy.action_tag"] == inc["tags"][0]
    assert "fib.delay_s" in section and "## Anomalies" in render_markdown(secs)
    clean = to_json(build(clean_run))["anomalies"]
    assert clean["data"]["incidents"] == []
    assert clean["text"][0].startswith("No slowdowns, level shifts, drift or hangs found "
                                       "among")


@pytest.mark.parametrize("name", ["pairs", "exception", "thread"])
def test_features_of_a_subset_equal_the_full_computation(
        sample: Callable[[str], Path], name: str) -> None:
    """``action_features(run, only=idx)`` (what the live featurizer computes) gives the
    same values as the full computation at those positions, context columns included."""
    run = Run(sample(name))
    run.load()
    full = action_features(run)
    n = len(full.table)
    idx = np.r_[np.arange(n)[::-3], [n - 1]][::-1] if n else np.arange(0)
    part = action_features(run, only=idx)
    assert part.table["tag"].tolist() == full.table["tag"][idx].tolist()
    codes = {c for c in part.names if c.endswith("_code")}
    for j, name_ in enumerate(part.names):
        if name_ in codes:
            continue  # codes follow first appearance: compared through the raw values
        assert np.array_equal(part.X[:, j], full.X[idx, full.names.index(name_)],
                              equal_nan=True), name_
    for name_ in set(full.names) - set(part.names):  # no value on the subset's calls
        assert np.isnan(full.X[idx, full.names.index(name_)]).all(), name_
    for raw in ("action", "agent_class", "status", "agent_id"):
        assert part.table[raw].tolist() == full.table[raw][idx].tolist()


def test_live_featurizer_matches_a_full_pass_as_a_run_grows(
        sample: Callable[[str], Path], tmp_path: Path) -> None:
    """A pool written in three goes: each time, what the featurizer hands out (only the
    new calls) equals a full pass over the run as read so far, at those calls; and the
    numeric user keys (converted once per row, extended as the run grows) match a
    fresh read of the same lines."""
    src = sample("pairs")
    dst = tmp_path / src.name
    dst.mkdir()
    lines = {f.name: f.read_bytes().splitlines(keepends=True) for f in src.glob("*.jsonlog")}
    fz = ActionFeaturizer()
    run = Run(dst)
    tags: list[str] = []
    for part in range(3):
        for fname, ls in lines.items():
            with open(dst / fname, "ab") as fh:
                fh.writelines(ls[len(ls) * part // 3: len(ls) * (part + 1) // 3])
        if part == 0:
            run.load()
        else:
            run.refresh()
        got = fz.update(run)
        full = action_features(run)
        pos = {t: i for i, t in enumerate(full.table["tag"].tolist())}
        rows = [pos[t] for t in got.table["tag"].tolist()]
        assert len(rows) > 0
        for j, name_ in enumerate(got.names):
            if not name_.endswith("_code"):  # codes follow first appearance
                assert np.array_equal(got.X[:, j], full.X[rows, full.names.index(name_)],
                                      equal_nan=True), (part, name_)
        tags += got.table["tag"].tolist()
        assert _by_line(run, "fib.delay_s") == _by_line(_fresh(dst), "fib.delay_s")
    assert len(tags) == len(set(tags)) == len(_fresh(dst).actions())


def _by_line(run: Run, key: str) -> dict[tuple[str, int], float]:
    """``key`` as floats by (file, line): row numbers depend on the order of reading."""
    ev = run.events()
    vals = ev.numeric(key)
    assert vals is not None
    ok = np.flatnonzero(~np.isnan(vals))
    return {(ev.file_names[int(ev.file[r])], int(ev.line[r])): float(vals[r]) for r in ok}


def _fresh(pool: Path) -> Run:
    run = Run(pool)
    run.load()
    return run


def test_caller_gap_equals_a_plain_search() -> None:
    """The idle gap before each call (one sort over all callers) equals a plain search
    per call: the latest end of the same caller's calls at or before its start (ties
    included), NaN where there is none, for many callers and missing values."""
    from features.featurize import _caller_gap

    rng = np.random.default_rng(7)
    n = 600
    caller = np.array([None if rng.random() < 0.05 else f"c{rng.integers(40)}"
                       for _ in range(n)], dtype=object)
    t_start = np.round(rng.uniform(0, 50, n), 1)  # coarse: many exact ties
    t_end = t_start + np.round(rng.uniform(0, 5, n), 1)
    t_start[rng.random(n) < 0.05] = np.nan
    t_end[rng.random(n) < 0.1] = np.nan
    t_end[:5] = t_start[5:10]  # ends exactly at other calls' starts
    want = np.full(n, np.nan)
    for i in range(n):
        if caller[i] is None or np.isnan(t_start[i]):
            continue
        ends = [t_end[j] for j in range(n) if caller[j] == caller[i]
                and np.isfinite(t_end[j]) and t_end[j] <= t_start[i]]
        if ends:
            want[i] = t_start[i] - max(ends)
    assert np.isfinite(want).sum() > n // 2
    assert np.array_equal(_caller_gap(caller, t_start, t_end), want, equal_nan=True)
    only = rng.permutation(n)[:77]
    assert np.array_equal(_caller_gap(caller, t_start, t_end, only), want[only],
                          equal_nan=True)


# -- the thresholds, pinned (a hand mutation of each must fail a test) -----------------


def _calls(durations: list[float], group: tuple[str, str] = ("Gen", "step"),
           t0: float = 1000.0) -> Table:
    """A features table of successful calls of one agent, one after another (a call of
    0.1 s every 0.2 s), with the given execution times; no warm-up call."""
    n = len(durations)
    x = np.asarray(durations, dtype=np.float64)
    start = t0 + 0.2 * np.arange(n)

    def obj(v: Any) -> np.ndarray:
        return np.array([v] * n, dtype=object)

    return Table({
        "tag": np.array([f"{group[1]}-{t0:.0f}-{i:04d}" for i in range(n)], dtype=object),
        "agent_class": obj(group[0]), "action": obj(group[1]), "agent_id": obj("AgentId<a1>"),
        "status": obj("ok"), "t_start": start, "t_done": start + x + 0.002,
        "call_index": np.arange(1, n + 1, dtype=np.float64),
        "row_start": np.full(n, -1), "row_exec": np.full(n, -1), "row_end": np.full(n, -1),
        "exec_s": x, "total_s": x + 0.002, "queue_s": np.full(n, 0.001),
        "reply_s": np.full(n, 0.001)}, name="action_features")


def test_a_call_past_the_ratio_but_within_the_noise_of_its_group_is_not_slow() -> None:
    """The z-score pins noisy groups: with calls spread evenly over 50-250 ms (median
    150 ms, robust spread 74 ms), a 400 ms call is 2.7x the median but only 3.4 spreads
    above it: not slow. A 550 ms call (3.7x, 5.4 spreads) is."""
    rng = np.random.default_rng(3)
    base = list(rng.permutation(np.linspace(0.05, 0.25, 41)))
    det = SlowdownDetector(multivariate=False).fit(_calls(base))
    b = det.baselines_[("Gen", "step")]
    assert b.median["exec_s"] == pytest.approx(0.15)
    assert b.scale["exec_s"] == pytest.approx(1.4826 * 0.05, rel=0.02)
    flags = det.assess(_calls([0.40, 0.55], t0=2000.0))
    assert flags["flag"].tolist() == ["ok", "slow"]
    assert flags["ratio"][0] >= det.ratio_threshold and flags["z"][0] < det.z_threshold
    [inc] = incidents(flags)
    assert inc.describe() == ("#1 medium: 1 slow call of Gen.step, up to 3.7x its median, "
                              "0.400s extra over 0.552s")


def test_slow_calls_one_normal_call_apart_are_one_incident_two_apart_two() -> None:
    """The incident gap, pinned: slow, normal, slow is one incident of 2 calls (one lucky
    call inside a slowdown); slow, normal, normal, slow is two. Through the default of
    :func:`incidents` and of a live detector's result alike."""
    normal, slow = 0.05, 0.3
    pattern = [slow, normal, slow] + [normal] * 4 + [slow, normal, normal, slow] + [normal] * 3
    feats = _calls([normal] * 20 + pattern)
    live = LiveDetector(SlowdownDetector(multivariate=False))
    for i in range(len(feats)):
        live.update_features(Features(feats.take([i]), np.empty((1, 0)), []))
    res = live.result()
    found = slowdowns(res)
    assert [i.count for i in found] == [2, 1, 1], res.lines()
    assert found[0].describe().startswith("#1 high: 2 slow calls of Gen.step, up to 6.0x "
                                          "its median, 0.500s extra over ")
    assert [i.count for i in slowdowns_of(incidents(res.flags))] == [2, 1, 1]
    # The same calls judged after the fact (fit on all of them).
    det = SlowdownDetector(multivariate=False).fit(feats)
    assert [i.count for i in slowdowns_of(incidents(det.assess(feats)))] == [2, 1, 1]


def slowdowns_of(incs: list[Any]) -> list[Any]:
    return [i for i in incs if i.kind == "slowdown"]


def test_judging_before_fit_raises_not_fitted() -> None:
    """scikit-learn's contract (check_is_fitted): not a silent 'normal' for every call."""
    from sklearn.exceptions import NotFittedError

    from features.anomaly import SlowdownDetector
    from features.table import Table

    det = SlowdownDetector()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        det.predict(Table({"action": np.array([], dtype=object)}))


def _two_groups() -> Features:
    """Calls of two groups, interleaved in completion order, with slow calls in both."""
    a = [0.1] * 40
    a[14] = a[30] = 0.6
    b = [0.05] * 30
    b[20] = 0.4
    ta, tb = _calls(a), _calls(b, group=("Other", "op"), t0=1000.05)
    cols = {c: np.concatenate([ta[c], tb[c]]) for c in ta.columns}
    t = Table(cols, name="action_features").sort("t_done")
    return Features(t, np.empty((len(t), 0)), [])


def _feed(feats: Features, sizes: list[int], flags_between: bool = False) -> LiveDetector:
    live = LiveDetector(SlowdownDetector(multivariate=False))
    i = k = 0
    while i < len(feats.table):
        idx = np.arange(i, min(i + sizes[k % len(sizes)], len(feats.table)))
        live.update_features(Features(feats.table.take(idx), feats.X[idx], feats.names))
        if flags_between:
            live.flags()
        i, k = i + len(idx), k + 1
    return live


def test_calls_waiting_for_a_baseline_are_judged_together() -> None:
    """A first update with every call (a watcher opening a big run): each group's calls
    wait for its baseline, then are judged at once, as the detector that learnt them all
    judges them; each slow one is said once, counted at the end of that update."""
    feats = _two_groups()
    n = len(feats.table)
    live = _feed(feats, [n])
    got = live.flags()
    want = live.detector.assess(feats)
    assert got["tag"].tolist() == feats.table["tag"].tolist()
    for c in ("flag", "ratio", "baseline_s", "group", "decided_on"):
        assert got[c].tolist() == want[c].tolist(), c
    slow = sorted(got["tag"][got["flag"] == "slow"].tolist())
    assert len(slow) == 3 and sorted(live.flagged_at) == slow
    assert set(live.flagged_at.values()) == {n}
    assert "not enough data" not in got["flag"].tolist()


def test_live_flags_same_whether_read_between_updates_or_not() -> None:
    """Reading the flags joins the kept tables into one; reading them between updates
    (of one call, of many) leaves every call's judgement as it was."""
    feats = _two_groups()
    for sizes in ([1], [1, 1, 30, 2, 1], [7], [25, 1]):
        a, b = _feed(feats, sizes).flags(), _feed(feats, sizes, True).flags()
        assert len(a) == len(feats.table)
        for c in a.columns:
            assert np.array_equal(a[c], b[c], equal_nan=a[c].dtype.kind == "f"), (sizes, c)


def test_a_call_is_judged_once_when_its_group_has_a_baseline() -> None:
    """Group A has its baseline in the first update, B only after A's last call: A's
    calls judged then keep that judgement while A learns 30 more (its median moves);
    B's early calls are judged when B has a baseline, against B's."""
    a = [0.1 + 0.001 * i for i in range(60)]  # A keeps learning: its median moves
    a[10] = 0.6
    ta = _calls(a)
    tb = _calls([0.05] * 30, group=("Other", "op"), t0=1000.05)
    first = np.concatenate([np.arange(30), 60 + np.arange(3)])  # A has 30, B 3
    cols = {c: np.concatenate([ta[c], tb[c]]) for c in ta.columns}
    both = Table(cols, name="action_features")
    rest = np.concatenate([np.arange(30, 60), np.arange(63, 90)])
    live = LiveDetector(SlowdownDetector(multivariate=False))
    live.update_features(Features(both.take(first), np.empty((len(first), 0)), []))
    early = live.flags()
    early_a = early.where(early["agent_class"] == "Gen")
    assert "not enough data" not in early_a["flag"].tolist()
    assert set(early.where(early["agent_class"] == "Other")["flag"].tolist()) == \
        {"not enough data"}
    for i in rest:
        live.update_features(Features(both.take([i]), np.empty((1, 0)), []))
    final = live.flags()
    kept = final.where(np.isin(final["tag"], early_a["tag"]))
    for c in ("flag", "ratio", "baseline_s", "z"):
        assert kept[c].tolist() == early_a[c].tolist(), c
    b = final.where(final["agent_class"] == "Other")
    assert set(b["flag"].tolist()) <= {"ok", "warm-up"} and len(b) == 30
