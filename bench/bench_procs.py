"""The process sampler's cost: 100 sleeping processes sampled every 1 s for ~10 s.

Target (issue 16): at most 1 % of one core at 1 s intervals for 100 processes. This script
starts 100 sleeping child processes, writes a pool in which each is named by a file of its
own (as Academy's workers are) and this process by the driver's file (held open, as the
driver's log is), then runs the sampler on it with each reader at once, side by side
(``observe_processes``: a sampler process of its own, as a workflow starts it), and prints
each sampler's CPU share (its own user + system time over the wall time, after its start-up,
and with it) against the target.

    python bench/bench_procs.py [--processes 100] [--seconds 10] [--interval 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steering.observe import observe_processes

TARGET_PCT = 1.0
"""Of one core, at 1 s intervals for 100 processes."""
WARMUP_S = 2.0
"""The sampler's start-up (interpreter, imports, the first look at every process) is left
out of the steady share; the share with it is printed beside."""


def _record(pid: int, msg: str) -> str:
    return json.dumps({"created": time.time(), "name": "bench", "levelname": "INFO",
                       "levelno": 20, "message": msg, "process": pid}) + "\n"


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    from bench_core import installed_like  # type: ignore[import-not-found]

    installed_like()
    readers = ["proc", "psutil"] if sys.platform.startswith("linux") else ["psutil"]
    with tempfile.TemporaryDirectory(prefix="bench-procs-") as tmp:
        pool = Path(tmp) / "pool"
        pool.mkdir()
        driver = open(pool / "driver.jsonlog", "w")  # noqa: SIM115 (open for the run)
        driver.write(_record(os.getpid(), "workflow start"))
        driver.flush()
        kids = [subprocess.Popen(["sleep", "600"]) for _ in range(args.processes)]
        try:
            for k in kids:
                (pool / f"worker-{k.pid}.jsonlog").write_text(_record(k.pid, "worker start"))
            total = args.seconds + WARMUP_S
            obs = {r: observe_processes(pool, interval=args.interval, reader=r)
                   for r in readers}
            procs = {r: psutil.Process(o.pid) for r, o in obs.items()}
            t_start = time.monotonic()
            time.sleep(WARMUP_S)
            cpu_w = {r: _cpu(p) for r, p in procs.items()}
            t_w = time.monotonic()
            time.sleep(total - WARMUP_S)
            cpu_e = {r: _cpu(p) for r, p in procs.items()}
            t_e = time.monotonic()
            for o in obs.values():
                o.stop()
            driver.close()
        finally:
            for k in kids:
                k.kill()
            for k in kids:
                k.wait()
        print(f"process sampler: {args.processes} sleeping processes + the driver, "
              f"every {args.interval:g} s for {t_e - t_w:.1f} s "
              f"(target <= {TARGET_PCT:g} % of one core at 1 s for 100)")
        print(f"  {'reader':8} {'steady':>9} {'with start-up':>14} {'samples':>8} "
              f"{'written/s':>10} {'target':>8}  verdict")
        for r in readers:
            steady = (cpu_e[r] - cpu_w[r]) / (t_e - t_w) * 100
            whole = cpu_e[r] / (t_e - t_start) * 100
            path = obs[r].path
            lines = path.read_text().splitlines() if path else []
            n = sum(1 for ln in lines if '"proc.kind":"sample"' in ln)
            rate = (path.stat().st_size if path else 0) / (t_e - t_start)
            verdict = "OK" if steady <= TARGET_PCT else "MISS"
            default = " (default here)" if r == readers[0] else ""
            print(f"  {r:8} {steady:8.2f}% {whole:13.2f}% {n:8d} {rate / 1e3:8.1f}kB "
                  f"{TARGET_PCT:7.2f}%  {verdict}{default}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
