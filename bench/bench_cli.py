"""CLI start-up: process wall time of ``academy-tui runs``, ``steer RUN`` and ``report RUN``;
and how soon ``events -f`` prints a record after it is written.

    python bench/bench_cli.py [--repeat 5] [--target 1.0]

A person types these and waits: each is timed from process start to exit (imports, reading
the pool, the analyses, printing), several times, and its median compared with the target
(1 s on 2 cores). The runs are the small sample run of the tests (352 records, 1 process)
and a straggler run steered in mode ``apply`` made here with ``academy-tui demo`` (its
steering trail is what ``steer RUN`` lists). ``report --format json`` is shown beside them
without a target: it alone fits the detector's ranking forest (scikit-learn) for the
``mv_score`` it carries. Everything lives in a temporary home: nothing
of the user's Academy logs or steering session files is read or written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = "08a98d9a-187e-463f-8012-cdac8e694d8f"
"""The tests' ``thread`` sample: 352 records in one file."""


def cli() -> list[str]:
    """The installed entry point (what a person runs), else the module."""
    exe = Path(sys.executable).parent / "academy-tui"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tui.cli"]


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ACADEMY_TUI_MODEL"):
        env.pop(key, None)
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "home" / ".config"),
               XDG_CACHE_HOME=str(root / "home" / ".cache"),
               XDG_STATE_HOME=str(root / "home" / ".local" / "state"),
               ACADEMY_TUI_STATE_DIR=str(root / "state"), ACADEMY_HOME=str(root / "none"))
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return wall


def make_runs(root: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """(home with the sample pools, home with one steered straggler run)."""
    with tarfile.open(ROOT / "tests" / "data" / "samples.tar.xz") as tar:
        tar.extractall(root / "samples", filter="data")
    steered = root / "steered"
    res = subprocess.run([*cli(), "--home", str(steered), "demo", "--scenario", "straggler",
                          "--steer", "apply", "--no-tui", "--iterations", "30", "--sleep",
                          "0.03", "--workers", "3", "--slow-factor", "6"],
                         env=env, capture_output=True, text=True, cwd=str(ROOT))
    if res.returncode != 0:
        raise SystemExit(f"the steered demo run failed: {res.stderr.strip()[-400:]}")
    return root / "samples" / "academy_home", steered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    ap.add_argument("--target", type=float, default=1.0, help="seconds, per command")
    a = ap.parse_args()
    from bench_core import installed_like  # type: ignore[import-not-found]

    installed_like()
    root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        env = env_for(root)
        samples, steered = make_runs(root, env)
        target: float | None = a.target
        cases = [
            ("runs (8 sample runs)", ["--home", str(samples), "runs"], target),
            ("steer RUN (steered run, its trail)", ["--home", str(steered), "steer",
                                                    "latest"], target),
            ("steer RUN (sample run, no trail)", ["--home", str(samples), "steer", SAMPLE],
             target),
            ("report RUN (sample run, 352 records)", ["--home", str(samples), "report",
                                                      SAMPLE], target),
            ("report RUN --format json (sample run)", ["--home", str(samples), "report",
                                                       SAMPLE, "--format", "json"], None),
        ]
        print(f"CLI start-up: process wall time, median of {a.repeat} runs "
              f"(os.cpu_count()={os.cpu_count()})")
        for name, args, limit in cases:
            timed([*cli(), *args], env)  # the first run writes .pyc files and caches
            walls = [timed([*cli(), *args], env) for _ in range(a.repeat)]
            med = statistics.median(walls)
            verdict = ("no target (fits the ranking forest)" if limit is None else
                       f"target < {limit:.1f} s  {'OK' if med < limit else 'MISS'}")
            print(f"  {name:<40} {med:6.2f} s  (min {min(walls):.2f}, max {max(walls):.2f})"
                  f"  {verdict}")
        p95 = follow_latency(root, env)
        print(f"  {'events -f: record written -> printed, p95':<40} {p95 * 1000:6.0f} ms"
              f"  target <= 100 ms  {'OK' if p95 <= 0.1 else 'MISS'}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def follow_latency(root: Path, env: dict[str, str], n: int = 40) -> float:
    """p95 seconds from a record's write (its ``created``) to ``events -f`` printing it:
    a live pool of one file, appended to every 50 ms while ``-f --format jsonl`` reads."""
    import json
    import uuid

    pool = root / "follow" / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    f = pool / "writer.jsonlog"

    def rec(i: int) -> str:
        return json.dumps({"created": time.time(), "name": "bench", "msg": "tick %s",
                           "message": f"tick {i}", "levelname": "INFO", "levelno": 20,
                           "process": os.getpid(), "bench.i": i}) + "\n"

    f.write_text(rec(-1))
    proc = subprocess.Popen([*cli(), "events", str(pool), "-f", "--format", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    assert proc.stdout is not None
    proc.stdout.readline()  # the first record: it is following now
    lat = []
    try:
        with f.open("a") as out:
            for i in range(n):
                time.sleep(0.05)
                out.write(rec(i))
                out.flush()
                line = proc.stdout.readline()
                got = time.time()
                lat.append(got - float(json.loads(line)["created"]))
    finally:
        proc.kill()
        proc.wait()
    lat.sort()
    return lat[int(0.95 * (len(lat) - 1))]


if __name__ == "__main__":
    sys.exit(main())
