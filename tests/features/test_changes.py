"""Level shifts, speed-ups, drift and hangs (features.changepoint, features.shifts,
features.around, features.hangs) on real runs of the demo workflow, read the way people
read them: incident sentences, report lines, JSON fields. Ground truth comes from the raw
.jsonlog lines read with json (the agent's own ``fib.delay_s``, the driver's calls), not
from our reader. Margins are ones a busy machine cannot reach: 4x and more on sleeps of
50 ms and more, or a change to 5x faster."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from ask_runs import stuck_shutdown
from rawspans import raw_executions, raw_really_slow_tags

from features.changepoint import MIN_SEG
from features.detect import HUNG, HUNG_FLAG, LiveDetector, detect, incidents
from features.featurize import Features, action_features
from features.run import Run
from steering.demo import DemoOptions, run_demo

NEXT = "GeneratorAgent.next_item"
SLEEP = 0.05


def _run(home: Path, **kw: Any) -> Run:
    res = run_demo(DemoOptions(academy_home=home, **kw))
    if kw.get("step_timeout") is None:
        assert res.ok, res.error
    run = Run(res.pool_dir)
    run.load()
    return run


def raw_calls(pool: Path) -> list[dict[str, Any]]:
    """Per next_item call in iteration order: tag, iteration, the delay the agent logged,
    its execution time; from the raw lines."""
    recs, spans = raw_executions(pool)
    out = []
    for r in recs:
        if "fib.delay_s" not in r:
            continue
        t = float(r["created"])
        tag = next(tag for tag, s in spans.items()
                   if s.get("execute_start", np.inf) <= t <= s.get("execute_success", -np.inf))
        s = spans[tag]
        out.append({"tag": tag, "iteration": int(r["fib.iteration"]),
                    "delay": float(r["fib.delay_s"]),
                    "exec": s["execute_success"] - s["execute_start"]})
    return sorted(out, key=lambda c: c["iteration"])


def raw_line(pool: Path, cite: str) -> dict[str, Any]:
    """The raw record a ``file8:line`` citation points at."""
    prefix, line = cite.split(":")
    f = next(p for p in pool.glob("*.jsonlog") if p.name.startswith(prefix))
    return json.loads(f.read_text().splitlines()[int(line) - 1])


def of_kind(run_or_res: Any, kind: str) -> list[Any]:
    res = detect(run_or_res) if isinstance(run_or_res, Run) else run_or_res
    return [i for i in res.incidents if i.kind == kind]


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """From iteration 20 on, every call 4x slower."""
    return _run(tmp_path_factory.mktemp("shift"), iterations=36, sleep=SLEEP, slow_at=20,
                slow_len=16, slow_factor=4.0)


@pytest.fixture(scope="module")
def speedup_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Before iteration 10 the driver calls set_sleep(0.02): 5x faster from there."""
    return _run(tmp_path_factory.mktemp("speedup"), iterations=30, sleep=0.1,
                set_sleep_at=10, set_sleep_to=0.02)


# -- level shifts -------------------------------------------------------------------------


def test_level_shift_is_named_with_its_start_ratio_and_cause(shift_run: Run) -> None:
    calls = raw_calls(shift_run.path)
    shifted = [c["tag"] for c in calls if c["delay"] > SLEEP * 1.01]
    assert [c["iteration"] for c in calls if c["tag"] in shifted] == list(range(20, 36))
    res = detect(shift_run)
    [inc] = of_kind(res, "level_shift")
    assert inc.tags == shifted
    words = inc.describe()
    m = re.fullmatch(r"#\d+ high: from \+(\d+\.\d) s \(call 20\) GeneratorAgent\.next_item "
                     r"takes (0\.\d\d) s, (\d\.\d)x its earlier (\d+\.\d) ms \(a level shift "
                     r"over 16 calls\); around it: fib\.delay_s was 0\.050 on the calls "
                     r"before and 0\.200 after", words)
    assert m is not None, words
    assert float(m.group(2)) == pytest.approx(0.2, rel=0.1)
    assert float(m.group(3)) == pytest.approx(4.0, rel=0.15)
    assert float(m.group(4)) == pytest.approx(SLEEP * 1000, rel=0.15)
    ev = shift_run.events()
    first = np.flatnonzero(shift_run.actions()["tag"] == shifted[0])[0]
    at = float(shift_run.actions()["t_start"][first]) - ev.t0
    assert float(m.group(1)) == pytest.approx(at, abs=0.05)
    assert inc.detail["at_call"] == 20 and inc.detail["calls_before"] == 20
    # The shifted calls are the new normal, not 16 slow calls: anything flagged slow was
    # really slow in the raw lines (a busy machine makes such calls before the shift).
    slow = {t for i in of_kind(res, "slowdown") for t in i.tags}
    assert slow <= raw_really_slow_tags(shift_run.path, SLEEP)


def test_level_shift_live(shift_run: Run) -> None:
    """Replayed call by call: found once MIN_SEG calls at the new level completed, and the
    live result says the same as the finished run."""
    feats = action_features(shift_run)
    t = feats.table
    live = LiveDetector()
    for i in np.argsort(t["t_done"]):
        live.update_features(Features(t.take([i]), feats.X[[i]], feats.names))
    shifted = [c["tag"] for c in raw_calls(shift_run.path) if c["delay"] > SLEEP * 1.01]
    found = {k: n for k, n in live.changed_at.items() if k[1] == "level_shift"}
    assert found, live.changed_at
    key, n = min(found.items(), key=lambda kv: kv[1])
    assert key[2] == shifted[0]
    assert n - live.position[shifted[0]] <= MIN_SEG  # the 5th call at the new level
    [inc] = of_kind(live.result(), "level_shift")
    assert "(call 20) GeneratorAgent.next_item takes " in inc.describe()


def test_level_shift_in_the_report_text_and_json(shift_run: Run,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main

    assert main(["report", str(shift_run.path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["anomalies"]["data"]
    [inc] = [i for i in data["incidents"] if i["kind"] == "level_shift"]
    assert inc["cause"] == ["fib.delay_s was 0.050 on the calls before and 0.200 after"]
    assert inc["detail"]["at_call"] == 20 and inc["count"] == 16
    assert "a level shift over 16 calls" in inc["description"]
    # Its evidence starts with the first call at the new level, as written.
    rec = raw_line(shift_run.path, inc["evidence"][0])
    assert rec["academy.action_tag"] == inc["tags"][0]
    assert main(["report", str(shift_run.path)]) == 0
    text = capsys.readouterr().out
    section = text[text.index("Anomalies\n"):]
    line = next(ln for ln in section.splitlines() if "a level shift" in ln)
    assert line.endswith(f"(a level shift over 16 calls) [{inc['evidence'][0]}]"), line
    assert "    around it: fib.delay_s was 0.050 on the calls before and 0.200 after" in section


# -- speed-ups ----------------------------------------------------------------------------


def test_speedup_is_not_a_slowdown_and_names_the_call_before_it(speedup_run: Run) -> None:
    calls = raw_calls(speedup_run.path)
    assert [c["delay"] for c in calls[:10]] == [0.1] * 10 and calls[10]["delay"] == 0.02
    res = detect(speedup_run)
    [inc] = of_kind(res, "speedup")
    assert inc.tags == [c["tag"] for c in calls[10:]]
    assert inc.severity == "info" and inc.max_ratio < 0.3
    m = re.match(r"#\d+ info: from \+\d+\.\d s \(call 10\) GeneratorAgent\.next_item takes "
                 r"(\d+\.\d) ms, (\d\.\d)x faster than its earlier 0\.10 s \(a speed-up over "
                 r"20 calls\); around it: GeneratorAgent\.set_sleep\(0\.02\) called on "
                 r"(AgentId<[0-9a-f]{8}>) at \+\d+\.\d{3} s \(ok\) \[([0-9a-f]{8}:\d+)\]; "
                 r"fib\.delay_s was 0\.100 on the calls before and 0\.020 after$",
                 inc.describe())
    assert m is not None, inc.describe()
    assert float(m.group(1)) == pytest.approx(20, rel=0.25)
    assert 3.5 <= float(m.group(2)) <= 6
    assert m.group(3) in inc.agents
    # The citation is the driver's set_sleep call, as written.
    rec = raw_line(speedup_run.path, m.group(4))
    assert rec["academy.action"] == "set_sleep" and rec["academy.action_state"] == "start"
    # The calls before the change are not slow: judged against their own level. (Those a
    # busy machine really made twice as slow as their neighbours may be.)
    before = calls[1:10]
    med = float(np.median([c["exec"] for c in before]))
    normal = {c["tag"] for c in before if c["exec"] < 2 * med}
    slow = {t for i in of_kind(res, "slowdown") for t in i.tags}
    assert not slow & normal, res.lines()
    # What the whole run's baseline alone said about them (what people used to read).
    from features.anomaly import SlowdownDetector

    feats = action_features(speedup_run)
    flags = SlowdownDetector().fit(feats).assess(feats)
    old = set(flags["tag"][flags["flag"] == "slow"].tolist())
    assert len(old & normal) >= len(normal) - 1


def test_speedup_words_in_json(speedup_run: Run) -> None:
    from features.render import to_json
    from features.report import build

    js = orjson.loads(orjson.dumps(to_json(build(speedup_run)),
                                   option=orjson.OPT_SERIALIZE_NUMPY, default=str))
    incs = js["anomalies"]["data"]["incidents"]
    [sp] = [i for i in incs if i["kind"] == "speedup"]
    assert sp["cause"][0].startswith("GeneratorAgent.set_sleep(0.02) called on AgentId<")
    assert sp["detail"]["before_s"] == pytest.approx(0.1, rel=0.1)
    assert sp["detail"]["after_s"] == pytest.approx(0.02, rel=0.3)


# -- drift --------------------------------------------------------------------------------


def test_drift(tmp_path: Path) -> None:
    run = _run(tmp_path, iterations=40, sleep=0.02, drift=8.0)
    delays = [c["delay"] for c in raw_calls(run.path)]
    assert delays[-1] / delays[0] == pytest.approx(8.0)
    [inc] = of_kind(run, "drift")
    m = re.fullmatch(r"#\d+ high: GeneratorAgent\.next_item drifting from (\d+\.\d) ms to "
                     r"(0\.\d\d) s over 40 calls \((\d+\.\d)x\), from \+\d+\.\d s; around "
                     r"it: fib\.delay_s went from (0\.\d+) to (0\.\d+) with them",
                     inc.describe())
    assert m is not None, inc.describe()
    assert float(m.group(1)) == pytest.approx(20, rel=0.3)
    assert float(m.group(2)) == pytest.approx(0.16, rel=0.3)
    assert 5 <= float(m.group(3)) <= 12
    assert float(m.group(4)) < 0.04 and float(m.group(5)) > 0.1


# -- hangs --------------------------------------------------------------------------------


def test_call_cancelled_by_its_callers_timeout_is_hung(tmp_path: Path) -> None:
    """Iteration 12 sleeps 2.5 s; the driver gives each call 1.5 s."""
    run = _run(tmp_path, iterations=14, sleep=SLEEP, slow_at=12, slow_factor=50.0,
               step_timeout=1.5)
    recs = [json.loads(line) for f in run.path.glob("*.jsonlog")
            for line in f.read_text().splitlines()]
    [tag] = [r["academy.action_tag"] for r in recs
             if r.get("academy.action_state") == "cancelled"]
    res = detect(run)
    [inc] = of_kind(res, HUNG)
    assert inc.tags == [tag] and inc.detail["how"] == "cancelled"
    m = re.fullmatch(r"#\d+ high: 1 call of GeneratorAgent\.next_item hung: cancelled by its "
                     r"caller after (1\.\d\d) s, past its limit of 1\.00 s \((\d+\.\d)x its "
                     r"median (\d+\.\d) ms\)", inc.describe())
    assert m is not None, inc.describe()
    assert float(m.group(1)) == pytest.approx(1.5, abs=0.3)
    row = res.flags["tag"].tolist().index(tag)
    assert res.flags["flag"][row] == HUNG_FLAG
    from features.report import anomalies_section

    sec = anomalies_section(run)
    line = next(ln for ln in sec.lines if "hung: cancelled by its caller" in ln)
    cite = re.search(r"\[([0-9a-f]{8}:\d+)\]$", line)
    assert cite is not None, line
    assert raw_line(run.path, cite.group(1))["academy.action_tag"] == tag


def test_shutdown_that_takes_many_times_the_others_is_hung(tmp_path: Path) -> None:
    pool = asyncio.run(stuck_shutdown(tmp_path, "tests.shutdown"))
    run = Run(pool)
    run.load()
    res = detect(run)
    [inc] = of_kind(res, HUNG)
    recs = [json.loads(line) for f in pool.glob("*.jsonlog") for line in f.read_text().splitlines()]
    stuck = [r for r in recs if r.get("msg", "").startswith("Shutdown agent")]
    slowest = max(stuck, key=lambda r: float(r["created"]))
    assert inc.agents == [slowest["academy.agent_id"]]
    m = re.fullmatch(r"#\d+ high: Worker (AgentId<[0-9a-f]{8}>) hung in shutdown: (2\.\d\d) s "
                     r"from 'Shutting down agent' \((\d+)% of the run\), while the other agents "
                     r"took [\d.]+ (?:ms|us), with a TimeoutError while waiting for it",
                     inc.describe())
    assert m is not None, inc.describe()
    assert float(m.group(2)) == pytest.approx(2.5, abs=0.3) and int(m.group(3)) > 50
    from features.report import anomalies_section

    line = next(ln for ln in anomalies_section(run).lines if "hung in shutdown" in ln)
    cites = re.search(r"\[([^\]]+)\]$", line)
    assert cites is not None, line
    got = [raw_line(pool, c) for c in cites.group(1).split(", ")]
    assert got[0]["msg"].startswith("Shutting down agent") and \
        got[0]["academy.agent_id"] == m.group(1)
    assert any("TimeoutError" in str(r.get("exc_text")) for r in got)


def test_process_whose_log_stops_mid_call(shift_run: Run, tmp_path: Path) -> None:
    """The pool cut right after iteration 25 started executing, its file an hour old: the
    process's log just stops in the middle of that call."""
    dst = tmp_path / shift_run.path.name
    shutil.copytree(shift_run.path, dst)
    [f] = list(dst.glob("*.jsonlog"))
    lines = f.read_text().splitlines(keepends=True)
    tag = raw_calls(shift_run.path)[25]["tag"]
    cut = next(i for i, ln in enumerate(lines) if json.loads(ln).get("academy.action_tag") == tag
               and json.loads(ln).get("academy.action_state") == "execute_start")
    f.write_text("".join(lines[:cut + 1]))
    old = f.stat().st_mtime - 3600
    os.utime(f, (old, old))
    run = Run(dst)
    run.load()
    assert not run.live
    [inc] = of_kind(run, HUNG)
    assert inc.tags == [tag] and inc.detail["how"] == "process stopped"
    assert re.fullmatch(rf"#\d+ high: the log of process {f.name[:8]} stopped at \+\d+\.\d{{3}} "
                        r"s in the middle of 1 call of GeneratorAgent\.next_item: hung or "
                        r"killed", inc.describe()), inc.describe()
    # The same incident found without the run's start (a notebook's incidents(flags)):
    # said without the time, not a TypeError.
    flags = detect(run).flags
    [bare] = [i for i in incidents(flags) if i.kind == HUNG]
    assert bare.describe().endswith(f"the log of process {f.name[:8]} stopped in the middle "
                                    "of 1 call of GeneratorAgent.next_item: hung or killed")


def test_the_run_catalog_says_what_hung(tmp_path: Path) -> None:
    """``runs`` leads a hung run's rule with the hang, not only "crashed"."""
    from features.status import status_of

    pool = asyncio.run(stuck_shutdown(tmp_path, "tests.shutdown"))
    run = Run(pool)
    run.load()
    st, rule = status_of(run, run.last_write(), now=run.last_write() + 3600)
    assert st == "failed"
    assert re.match(r"shutdown of AgentId<[0-9a-f]{8}> hung 2\.\d\d s until a TimeoutError",
                    rule), rule
