"""Attach later, from other processes, over Redis: a straggler run (its own process) is
joined by ``academy-tui steer RUN --exchange redis://... --mode confirm`` (a second
process), whose suggestion is approved by ``academy-tui steer RUN --approve ID`` (a third,
over the exchange named in the attached agent's session file, with its proof).
The attached agent's records land in the run's pool, in a file of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from steerkit import assert_calls_audited, pool_records, redis_server

PY = sys.executable


def cli(home: Path, *args: str) -> list[str]:
    return [PY, "-m", "tui.cli", "--home", str(home), "steer", *args]


def wait_suggestion(pool: Path, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in pool_records_safe(pool):
            if r.get("steering.kind") == "suggestion" and \
                    r.get("steering.action") == "set_weight":
                return r
        time.sleep(0.2)
    raise AssertionError("no set_weight suggestion from the attached agent")


def pool_records_safe(pool: Path) -> list[dict[str, Any]]:
    """Records of a pool being written (an unterminated last line is skipped)."""
    out = []
    for f in pool.glob("*.jsonlog"):
        for line in f.read_text().split("\n")[:-1]:
            out.append(json.loads(line))
    return out


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
def test_attach_confirm_and_approve_over_redis(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with redis_server(tmp_path) as port:
        url = f"redis://127.0.0.1:{port}"
        wf = subprocess.Popen(
            [PY, "-m", "steering.demo.straggler", "--workers", "3", "--rounds", "90",
             "--task-s", "0.04", "--slow-after", "20", "--slow-factor", "6",
             "--exchange", "redis", "--redis-port", str(port), "--academy-home", str(home)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        attach = None
        try:
            assert wf.stdout is not None
            pool = Path(wf.stdout.readline().split("pool: ", 1)[1].strip())
            attach = subprocess.Popen(
                cli(home, pool.name, "--exchange", url, "--mode", "confirm", "--no-llm",
                    "--idle", "2", "--poll", "0.1",
                    "--targets", "steering.demo.straggleragents:CoordinatorAgent"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sugg = wait_suggestion(pool)
            # No --exchange: the attached agent's session file says where it is reachable.
            (start,) = [r for r in pool_records_safe(pool)
                        if r.get("steering.kind") == "start"]
            assert start["steering.exchange"] == url
            approve = subprocess.run(cli(home, pool.name, "--approve", sugg["steering.id"]),
                                     capture_output=True, text=True, timeout=60, check=False)
            assert approve.returncode == 0, approve.stdout + approve.stderr
            assert f"{sugg['steering.id']}: applied" in approve.stdout
            assert wf.wait(timeout=180) == 0
            out, err = attach.communicate(timeout=120)
            assert attach.returncode == 0, err
        finally:
            for p in (wf, attach):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
    assert "stopped (idle)" in out

    steering = assert_calls_audited(pool)
    workflow_pid = {r["process"] for r in pool_records(pool) if r["msg"].startswith("round")}
    assert {r["process"] for r in steering}.isdisjoint(workflow_pid)
    assert len({r["process"] for r in steering}) == 1
    (approval,) = [r for r in steering if r["steering.kind"] == "approval"]
    assert approval["steering.id"] == sugg["steering.id"]
    assert approval["steering.approved_by"].startswith("UserId<")
    applied = [r for r in steering if r["steering.kind"] == "apply"]
    assert [r["steering.phase"] for r in applied][:2] == ["before", "after"]
    assert applied[1]["steering.result"] == "ok"
    changes = [r for r in pool_records(pool) if r["msg"].startswith("weight of")]
    assert changes and float(changes[0]["straggler.weight"]) == 0.25

    trail = subprocess.run(cli(home, pool.name, "--format", "json"), capture_output=True,
                           text=True, timeout=60, check=False)
    assert trail.returncode == 0, trail.stderr
    counts = json.loads(trail.stdout)["counts"]
    assert counts["approval"] == 1 and counts["applied"] == 1
