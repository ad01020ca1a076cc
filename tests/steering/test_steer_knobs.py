"""Steering a workflow that was not shaped for it (issue 15): the knobs it already has
(``set_param(name, value)`` with a range per name), declared from outside its code with a
knobs file; a steering agent attached from another process keeps stepping while the calls
stay slower than before the slowdown, escalates when the range runs out, and the run stays
"finished". The workflow is bench/paramwf.py: no academy-tui import, no docstring on two of
its actions, spawned worker processes on Academy's HTTP exchange."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramwf
import pytest
from academy.agent import Agent, action
from steer_runs import free_port, paramwf_run
from steerkit import assert_calls_audited, local_run, pool_records

from features.run import Run
from features.status import status_of
from steering.knobs import KnobsError, load_knobs, parse_knobs
from steering.knobspec import Named, Range, SteerableSpec
from steering.steerable import SteeringRefused, steerable
from tui.cli import main

PY = sys.executable
BENCH = Path(paramwf.__file__).resolve().parent


class Tuned(Agent):
    """A named setter, decorated: each name's own range holds at the action."""

    def __init__(self) -> None:
        super().__init__()
        self.params = {"scale": 1.0, "batch": 16.0}

    @action
    @steerable(name=Named("value", scale=Range(0.1, 1.0), batch=Range(1, 64, integer=True)),
               current="get_param")
    async def set_param(self, name: str, value: float) -> float:
        old, self.params[name] = self.params[name], value
        return old

    @action
    async def get_param(self, name: str) -> float:
        return self.params[name]


def test_a_named_knob_moves_one_name_within_its_own_range() -> None:
    spec = SteerableSpec.build("set_param", name=Named("value", scale=Range(0.1, 1.0),
                                                       batch=(1, 64)))
    assert spec.knobs == ("scale", "batch") and spec.arg_names == {"name", "value"}
    assert spec.args_for("scale", 0.5, None) == {"name": "scale", "value": 0.5}
    assert spec.args_for("scale", 5.0, None) is None  # outside scale's range
    assert spec.check({"name": "batch", "value": 5.0}) is None
    assert "outside" in str(spec.check({"name": "scale", "value": 5.0}))
    assert "outside" in str(spec.check({"name": "other", "value": 0.5}))
    assert spec.getter_args("batch", None) == {"name": "batch"}
    assert SteerableSpec.from_dict(spec.as_dict()) == spec


def test_several_range_knobs_on_one_action_pass_the_others_unchanged() -> None:
    spec = SteerableSpec.build("tune", delay=(0.0, 2.0), batch=Range(1, 64, integer=True))
    assert spec.knobs == ("delay", "batch")
    assert spec.args_for("delay", 0.5, None, {"batch": 8}) == {"delay": 0.5, "batch": 8}
    assert spec.args_for("delay", 0.5, None, {}) is None  # batch unknown: no call
    with pytest.raises(ValueError, match="exactly one Named"):
        SteerableSpec.build("f", a=(0, 1), n=Named("v", x=(0, 1)))


async def test_named_bounds_hold_at_the_action(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, _):
        h = await m.launch(Tuned, log_config=cfg)
        for args in [("scale", 5.0), ("batch", 0.5), ("other", 1.0), ("scale", "x")]:
            with pytest.raises(SteeringRefused):
                await h.set_param(*args)
        assert await h.set_param("batch", 32) == 16.0
        assert await h.get_param("batch") == 32


def test_knobs_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "knobs.toml"
    good.write_text(paramwf.KNOBS)
    (spec,) = load_knobs(good)["paramwf.Worker"].values()
    assert (spec.action, spec.named, spec.current, spec.knobs) == \
        ("set_param", "name", "get_param", ("scale",))
    assert spec.range_of("scale") == Range(0.05, 1.0, "decrease", 0.5)
    as_json = tmp_path / "knobs.json"
    as_json.write_text(json.dumps({"knob": [{"agent": "m:C", "action": "set_x",
                                             "params": {"x": {"lo": 0, "hi": 1}}}]}))
    assert list(load_knobs(as_json)) == ["m.C"]
    bad: list[tuple[Any, str]] = [
        ({"knob": [{"agent": "Worker", "action": "a", "params": {"x": {"lo": 0, "hi": 1}}}]},
         "module.Class"),
        ({"knob": [{"agent": "m.W", "action": "a", "params": {"x": {"lo": 2, "hi": 1}}}]},
         "lo <= hi"),
        ({"knob": [{"agent": "m.W", "action": "a", "paramz": {}}]}, "unknown keys"),
        ({"knob": [{"agent": "m.W", "action": "a", "named": "n"}]}, "needs 'named'"),
        ({"knob": [{"agent": "m.W", "action": "a", "params": {"x": {"lo": 0, "hi": 1,
                                                                  "step": 2}}}]},
         "unknown keys"),
    ]
    for data, why in bad:
        with pytest.raises(KnobsError, match=why):
            parse_knobs(data)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[knob]\nagent=")
    with pytest.raises(KnobsError, match="not valid TOML"):
        load_knobs(broken)


def test_a_bad_knobs_file_is_one_line_and_nothing_starts(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    pool = tmp_path / "logs" / "0f97b63c-0000-4000-8000-000000000000"
    pool.mkdir(parents=True)
    (pool / "a.jsonlog").write_text("")
    bad = tmp_path / "k.toml"
    bad.write_text('[[knob]]\nagent = "m.W"\naction = "a"\nparams.x = { lo = 3, hi = 1 }\n')
    assert main(["--home", str(tmp_path), "steer", pool.name, "--exchange",
                 "http://127.0.0.1:9", "--knobs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "knob 1 (m.W.a)" in err and "lo <= hi" in err, err


def steered_run(tmp: Path, knobs: str, calls: int = 60) -> tuple[Path, str]:
    """bench/paramwf.py in its own process, ``steer --knobs`` attached from another one:
    (pool, the attached agent's output)."""
    res = paramwf_run(tmp / "home", knobs, calls)
    return res.pool, res.steer_out


def _steering(pool: Path) -> list[dict[str, Any]]:
    return [r for r in assert_calls_audited(pool)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_it_keeps_stepping_until_the_calls_are_back_to_normal(tmp_path: Path) -> None:
    pool, out = steered_run(tmp_path, paramwf.KNOBS)
    recs = _steering(pool)
    targets = [r for r in recs if r["steering.kind"] == "targets"]
    assert {r["steering.source"] for r in targets} == {"knobs"} and len(targets) == 2
    applied = [json.loads(r["steering.args"]) for r in recs if r["steering.kind"] == "apply"
               and r["steering.phase"] == "after" and r["steering.result"] == "ok"]
    # Halving the scale left the calls ~2.5x slower: it stepped again, to a quarter.
    assert applied[:2] == [{"name": "scale", "value": 0.5}, {"name": "scale", "value": 0.25}]
    checks = [(r["steering.id"], r["steering.result"]) for r in recs
              if r["steering.kind"] == "check"]
    assert checks[0] == ("s1", "improved") and checks[-1][1] == "resolved", checks
    s2 = next(r for r in recs if r["steering.kind"] == "suggestion" and
              r["steering.id"] == "s2")
    assert json.loads(s2["steering.continues"]) == ["s1"] and str(s2["steering.step"]) == "2"
    resolved = next(r for r in recs if r["steering.kind"] == "check"
                    and r["steering.result"] == "resolved")
    ratio = float(resolved["steering.reason"].split("median ")[1].split("x")[0])
    assert ratio <= 1.5
    # The workflow saw its own setter called, with its own names.
    changes = [r for r in pool_records(pool) if r.get("paramwf.param") == "scale"]
    assert [float(r["paramwf.value"]) for r in changes][:2] == [0.5, 0.25]
    # Attaching left the run as it was: finished (the attached process's own exchange
    # errors after the workflow ended are said, not counted).
    run = Run(pool)
    run.load()
    state, rule = status_of(run, run.last_write(), now=run.last_write() + 3600)
    assert state == "finished", rule
    assert "stopped (exchange closed)" in out.splitlines()[-1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_when_the_range_runs_out_it_escalates_with_what_it_tried(tmp_path: Path) -> None:
    knobs = paramwf.KNOBS.replace("lo = 0.05", "lo = 0.5")
    pool, _ = steered_run(tmp_path, knobs, calls=45)
    recs = _steering(pool)
    applied = [json.loads(r["steering.args"]) for r in recs if r["steering.kind"] == "apply"
               and r["steering.phase"] == "after" and r["steering.result"] == "ok"]
    assert applied == [{"name": "scale", "value": 0.5}]
    esc = [r["steering.reason"] for r in recs if r["steering.kind"] == "escalation"]
    assert any("end of its declared range" in e and "scale=0.5 (improved)" in e
               for e in esc), esc


def _applied_in(pool: Path) -> bool:
    for f in pool.glob("*.jsonlog"):
        for line in f.read_text(errors="replace").splitlines():
            if '"steering.kind": "apply"' in line and '"steering.phase": "after"' in line:
                return True
    return False


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_restarted_steering_agent_checks_the_change_a_killed_one_left(tmp_path: Path
                                                                       ) -> None:
    """The first steering agent is killed (SIGKILL) right after its call, before it could
    check it; a second one attached to the same run finds the change in the verified trail
    (its session file says the first one's process is gone) and checks it as its own."""
    import time

    home, port = tmp_path / "home", free_port()
    (tmp_path / "knobs.toml").write_text(paramwf.KNOBS)
    wf = subprocess.Popen([PY, str(BENCH / "paramwf.py"), "--home", str(home), "--port",
                           str(port), "--calls", "40", "--call-s", "0.2", "--slow-from", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cmd = [PY, "-m", "tui.cli", "--home", str(home), "steer", "", "--exchange",
           f"http://127.0.0.1:{port}", "--mode", "apply", "--no-llm", "--idle", "2",
           "--poll", "0.1", "--knobs", str(tmp_path / "knobs.toml")]
    procs: list[subprocess.Popen[str]] = [wf]
    try:
        assert wf.stdout is not None
        pool = Path(wf.stdout.readline().split("pool: ", 1)[1].strip())
        cmd[6] = pool.name
        first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(first)  # type: ignore[arg-type]
        deadline = time.monotonic() + 90
        while not _applied_in(pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()
        first.wait()
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        procs.append(second)
        assert wf.wait(timeout=240) == 0
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0 and "Traceback" not in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    recs = sorted(assert_calls_audited(pool), key=lambda r: float(r["created"]))
    sessions = list(dict.fromkeys(r["steering.session"] for r in recs))
    assert len(sessions) == 2
    old, new = ([r for r in recs if r["steering.session"] == s] for s in sessions)
    assert not [r for r in old if r["steering.kind"] in ("check", "stop")]
    (rec,) = [r for r in new if r["steering.kind"] == "recovery"]
    assert rec["steering.recovered"] == f"{sessions[0][:8]}/s1"
    assert json.loads(rec["steering.args"]) == {"name": "scale", "value": 0.5}
    checked = [r for r in new if r["steering.kind"] == "check"
               and r["steering.id"] == rec["steering.id"]]
    assert checked and checked[0]["steering.result"] in ("improved", "resolved",
                                                         "not_improved")
