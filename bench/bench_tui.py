"""TUI benchmark: first screen, live-tail latency and UI-thread stalls, measured headless.

    python bench/bench_tui.py [--records 1000000] [--seconds 15]

1. First screen: a fresh process opens the 1M-record pool (built by bench_core); time from
   process start to the first painted rows of the event view, and to the end of the load.
2. Live tail: a writer process appends realistic records to 8 files at 4,000 records/s in
   total while the app follows them; latency from a record's write (its ``created``) to the
   moment its row is in the view and painted.
3. UI thread: a 10 ms heartbeat on the app's event loop records how late it fires while
   the app loads 1M records, applies filters and scrolls; the worst lateness is the
   longest the UI thread was blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def ok(flag: bool) -> str:
    return "ok " if flag else "MISS"


# -- 1. first screen (run in a child process: launch time counts) ----------------------

FIRST = r"""
import sys, time, json
T0 = float(sys.argv[2])
import asyncio
from tui.app import AcademyApp
from tui.screens.run import RunScreen

async def main():
    app = AcademyApp(sys.argv[1])
    first = done = pct = None
    async with app.run_test(size=(160, 45)) as pilot:
        while True:
            await asyncio.sleep(0.005)
            scr = app.screen
            if not isinstance(scr, RunScreen):
                continue
            log = scr.query_one("#event-log")
            if first is None and len(scr.model.view.rows) and \
                    any(log.render_line(y).text.strip() for y in range(1, 5)):
                first = time.time() - T0
                pct = scr.model.load_done / max(scr.model.load_total, 1) * 100
            if not scr.model.loading:
                done = time.time() - T0
                break
    print(json.dumps({"first": first, "first_pct": pct, "done": done}))
if __name__ == "__main__":
    asyncio.run(main())
"""


def first_screen(pool: Path, rounds: int, label: str, env: dict[str, str]) -> None:
    firsts, dones, pcts = [], [], []
    for _ in range(rounds):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", FIRST, str(pool), repr(t0)], cwd=ROOT,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        if out.returncode:
            print(f"  first-screen run failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        firsts.append(r["first"])
        dones.append(r["done"])
        pcts.append(r["first_pct"])
    if not firsts:
        return
    f = statistics.median(firsts)
    print(f"\nfirst screen on {label} (fresh process; launch = process start)")
    print(f"  [{ok(f <= 0.5)}] first rows painted after {f:.2f} s (median of {rounds}; "
          f"{statistics.median(pcts):.0f}% loaded then; target <= 0.5 s)")
    print(f"        whole run loaded after {statistics.median(dones):.2f} s, progress shown")


# -- 2. live tail latency ---------------------------------------------------------------

WRITER = r"""
import json, os, sys, time, uuid
pool, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
files = [open(os.path.join(pool, f"{uuid.uuid4()}.jsonlog"), "a") for _ in range(8)]
base = {"formatted": "", "name": "bench.writer", "msg": "step %d of %s", "args": "",
        "levelname": "INFO", "levelno": "20", "pathname": "/x/writer.py",
        "filename": "writer.py", "module": "writer", "exc_info": "None", "exc_text": "None",
        "stack_info": "None", "lineno": "10", "funcName": "loop", "msecs": "0",
        "relativeCreated": "0", "thread": "1", "threadName": "MainThread",
        "processName": "MainProcess", "process": str(os.getpid()), "taskName": "Task-1",
        "academy.action": "next_item", "academy.action_state": "execute_start",
        "academy.agent_id": "AgentId<0000beef>", "fib.payload": "x" * 600}
t0 = time.time(); i = 0
while time.time() - t0 < seconds:
    target = t0 + i / rate
    now = time.time()
    if target > now:
        time.sleep(target - now)
    d = dict(base)
    now = time.time()
    d["created"] = repr(now); d["message"] = d["formatted"] = f"step {i}"
    d["academy.action_tag"] = str(uuid.UUID(int=i + 1))
    f = files[i % 8]
    f.write(json.dumps(d) + "\n"); f.flush()
    i += 1
print(i)
"""


async def live_tail(rate: float, seconds: float) -> None:
    from tui.app import AcademyApp
    from tui.screens.run import RunScreen

    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    pool = tmp / "logs" / "00000000-0000-4000-8000-0000000000aa"
    pool.mkdir(parents=True)
    app = AcademyApp(str(pool))
    latencies: list[float] = []
    async with app.run_test(size=(160, 45)) as pilot:
        while not isinstance(app.screen, RunScreen):
            await pilot.pause(0.01)
        scr = app.screen
        log = scr.query_one("#event-log")
        seen = 0
        orig = log.rows_changed

        def measured() -> None:
            # Wraps the event view's refresh hook: called once per ingested batch.
            orig()

            def painted() -> None:
                nonlocal seen
                ev = scr.model.events()
                now = time.time()
                rows = scr.model.view.rows
                new = rows[seen:]
                seen = len(rows)
                latencies.extend((now - ev.created[new]).tolist())
            log.call_after_refresh(painted)

        log.rows_changed = measured  # type: ignore[method-assign]
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(pool), str(rate),
                                   str(seconds)], stdout=subprocess.PIPE, text=True)
        while writer.poll() is None:
            await pilot.pause(0.05)
        written = int(writer.stdout.read().strip() or 0)  # type: ignore[union-attr]
        deadline = time.time() + 10
        while len(scr.model.view.rows) < written and time.time() < deadline:
            await pilot.pause(0.05)
        shown = len(scr.model.view.rows)
    lat = sorted(latencies) or [float("inf")]
    p95 = lat[int(len(lat) * 0.95)] if lat else float("inf")
    p50 = lat[len(lat) // 2] if lat else float("inf")
    print(f"\nlive tail: 8 files growing at {rate:,.0f} records/s in total for {seconds:.0f} s")
    print(f"  [{ok(p95 <= 0.25 and shown == written)}] write -> painted row latency p95 "
          f"{p95 * 1000:.0f} ms, p50 {p50 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
          f"({shown:,} of {written:,} records shown; target p95 <= 250 ms)")


# -- 3. UI-thread stalls ----------------------------------------------------------------


async def stalls(pool: Path) -> None:
    from tui.app import AcademyApp
    from tui.screens.run import RunScreen

    app = AcademyApp(str(pool))
    gaps: dict[str, list[float]] = {"load": [], "filter": [], "scroll": []}
    phase = ["load"]
    async with app.run_test(size=(160, 45)) as pilot:
        last = [0.0]

        def beat() -> None:
            now = time.perf_counter()
            if last[0]:  # the first beat only starts the clock
                gaps[phase[0]].append(now - last[0] - 0.01)
            last[0] = now

        app.set_interval(0.01, beat)
        while not isinstance(app.screen, RunScreen):
            await pilot.pause(0.01)
        scr = app.screen
        while scr.model.loading or scr.model.analysis is None:
            await pilot.pause(0.02)
        phase[0] = "filter"
        for expr in ("levelno>=30", 'message~"fib step 9"', "academy.action=next_item",
                     "fib.iteration>8000", ""):
            scr.set_filter_text(expr)
            t = time.perf_counter()
            while scr.model.filter_text != expr and time.perf_counter() - t < 20:
                await pilot.pause(0.01)
            await pilot.pause(0.3)
        phase[0] = "scroll"
        await pilot.press("home")
        for key in ["pagedown"] * 40 + ["end"] + ["pageup"] * 40 + ["down"] * 50:
            await pilot.press(key)
        await pilot.pause(0.2)
    print("\nUI thread: lateness of a 10 ms heartbeat (= longest time the UI could not react)")
    for name, g in gaps.items():
        if not g:
            continue
        worst = max(g)
        p99 = sorted(g)[int(len(g) * 0.99)]
        print(f"  [{ok(worst <= 0.1)}] while {name:7s} worst {worst * 1000:6.1f} ms, "
              f"p99 {p99 * 1000:5.1f} ms over {len(g)} beats (target <= 100 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=4000)
    ap.add_argument("--seconds", type=float, default=15)
    a = ap.parse_args()
    from bench_core import installed_like  # type: ignore[import-not-found]

    installed_like()
    from bench_core import ensure_pool  # type: ignore[import-not-found]

    pool = ensure_pool(a.records)
    # From scratch unless a line says otherwise: the saved reading (features.cache) is
    # measured on its own.
    os.environ["ACADEMY_TUI_NO_CACHE"] = "1"
    first_screen(pool, a.rounds, "the 1M-record pool, 8 files", {})
    many = ensure_pool(a.records, files=828)
    first_screen(many, a.rounds, "the 1M-record pool, 828 files", {})
    with tempfile.TemporaryDirectory() as cache:
        saved = {"ACADEMY_TUI_NO_CACHE": "0", "ACADEMY_TUI_CACHE_DIR": cache}
        subprocess.run([sys.executable, "-c", "from features.run import Run; "
                        f"Run({str(many)!r}).load()"], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **saved})
        first_screen(many, a.rounds, "the same, opened again (its reading saved)", saved)
    asyncio.run(live_tail(a.rate, a.seconds))
    asyncio.run(stalls(pool))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
