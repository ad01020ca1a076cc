"""Runs of bench/paramwf.py (a workflow not shaped for steering), alone or with a steering
agent attached from another process by ``academy-tui steer RUN --knobs FILE``: shared by
bench/bench_steer.py and tests/steering/test_steer_knobs.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


@dataclass
class ParamRun:
    pool: Path
    makespan_s: float
    steer_out: str = ""
    """What ``academy-tui steer`` printed (empty when not steered)."""
    steer_err: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paramwf_run(home: Path, knobs: str | None, calls: int = 60, call_s: float = 0.05,
                slow_from: int = 20, slow_factor: float = 5.0,
                timeout_s: float = 240.0) -> ParamRun:
    """bench/paramwf.py in its own process; with ``knobs`` (a knobs file's text) a steering
    agent in ``apply`` mode attached from a second process. Raises ``RuntimeError`` when
    either fails."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    wf = subprocess.Popen([PY, str(HERE / "paramwf.py"), "--home", str(home), "--port",
                           str(port), "--calls", str(calls), "--call-s", str(call_s),
                           "--slow-from", str(slow_from), "--slow-factor", str(slow_factor)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    at = None
    try:
        assert wf.stdout is not None
        pool = Path(wf.stdout.readline().split("pool: ", 1)[1].strip())
        if knobs is not None:
            kf = home / "knobs.toml"
            kf.write_text(knobs)
            at = subprocess.Popen(
                [PY, "-m", "tui.cli", "--home", str(home), "steer", pool.name, "--exchange",
                 f"http://127.0.0.1:{port}", "--mode", "apply", "--no-llm", "--idle", "2",
                 "--poll", "0.1", "--knobs", str(kf)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                cwd=str(HERE.parent))
        rest = wf.stdout.read()
        if wf.wait(timeout=timeout_s) != 0:
            raise RuntimeError(f"paramwf.py exited with {wf.returncode}")
        out = err = ""
        if at is not None:
            out, err = at.communicate(timeout=120)
            if at.returncode != 0 or "Traceback" in err:
                raise RuntimeError(f"steer exited with {at.returncode}: {err[-2000:]}")
    finally:
        for p in (wf, at):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    makespan = next(float(line.split()[1]) for line in rest.splitlines()
                    if line.startswith("makespan:"))
    return ParamRun(pool, makespan, out, err)
