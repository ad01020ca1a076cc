"""Attach later over Academy's HTTP exchange: a straggler run in its own process, with its
HTTP exchange on a known port, is joined by ``academy-tui steer RUN --exchange http://...
--mode apply`` from a second process, which moves work away from the slow worker and
stops cleanly when the exchange ends with the workflow. Its records land in the run's
pool, in a file of its own."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from steerkit import assert_calls_audited, pool_records

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until_listening(port: int, proc: subprocess.Popen[str], most_s: float = 120.0) -> None:
    """Return once something accepts connections on ``port`` (the workflow's exchange);
    fail if ``proc`` ends first or nothing listens within ``most_s`` (generous: a test
    waits for readiness here, it does not time it)."""
    deadline = time.monotonic() + most_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the workflow ended before its exchange listened"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_attach_apply_over_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wf = subprocess.Popen(
        # Long enough that the attached agent (its own process, started after the pool
        # appears) is up before the slowdown even on a loaded machine: with 60 rounds and
        # the slowdown from task 15, a full suite on 2 busy cores once saw the workflow end
        # before the attach reached its exchange.
        [PY, "-m", "steering.demo.straggler", "--workers", "3", "--rounds", "100",
         "--task-s", "0.04", "--slow-after", "40", "--slow-factor", "6",
         "--exchange", "http", "--http-port", str(port), "--academy-home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    attach = None
    try:
        assert wf.stdout is not None
        pool = Path(wf.stdout.readline().split("pool: ", 1)[1].strip())
        # Attach *later*: to a workflow whose exchange answers. The pool line comes before
        # the exchange listens; on a loaded machine the attach (which gives up at once when
        # nothing answers, saying so) could otherwise knock before anyone is there.
        until_listening(port, wf)
        attach = subprocess.Popen(
            [PY, "-m", "tui.cli", "--home", str(home), "steer", pool.name, "--exchange", url,
             "--mode", "apply", "--no-llm", "--idle", "2", "--poll", "0.1",
             # The user names the class to steer: the pool never names code to import.
             "--targets", "steering.demo.straggleragents:CoordinatorAgent"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wf.wait(timeout=180) == 0
        out, err = attach.communicate(timeout=120)
        assert attach.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        for p in (wf, attach):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    # Academy's HTTP exchange ends with the workflow's process: the attached agent stops
    # on that, says so, and keeps what it did.
    last = out.splitlines()[-1]
    assert last.startswith("stopped (exchange closed): ") and "workflow ended" in last
    assert ", 0 applied" not in last

    steering = assert_calls_audited(pool)
    (start,) = [r for r in steering if r["steering.kind"] == "start"]
    assert start["steering.exchange"] == url
    workflow_pid = {r["process"] for r in pool_records(pool) if r["msg"].startswith("round")}
    assert {r["process"] for r in steering}.isdisjoint(workflow_pid)
    applied = [r for r in steering if r["steering.kind"] == "apply"
               and r["steering.phase"] == "after"]
    assert applied and applied[0]["steering.result"] == "ok"
    assert applied[0]["steering.action"] == "set_weight"
    changes = [r for r in pool_records(pool) if r["msg"].startswith("weight of")]
    assert changes and float(changes[0]["straggler.weight"]) < 1.0
