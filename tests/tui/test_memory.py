"""The app's process gives freed big arrays back to the system (tui.memory): after a
pass that freed a big block, glibc served the next arrays from its heap and kept them
resident once freed (blocks freed above 32 MB do not move the threshold; 16 MB ones do)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PASS = r"""
import json, sys
import numpy as np
from tui.memory import settle
took = settle() if sys.argv[1] == "settle" else None
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("RssAnon")).split()[1])
big = np.ones(2_000_000); del big           # a pass frees a 16 MB array
base = rss()
arrays = [np.ones(400_000) for _ in range(40)]  # then 3 MB arrays, 128 MB
keep = arrays[-1]
del arrays                                  # all freed but the last
print(json.dumps({"took": took, "held_mb": (rss() - base) / 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_freed_arrays_leave_the_apps_process() -> None:
    def held(mode: str) -> dict[str, float]:
        out = subprocess.run([sys.executable, "-c", PASS, mode], cwd=ROOT, check=True,
                             capture_output=True, text=True,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        return json.loads(out.stdout)

    settled = held("settle")
    if not settled["took"]:
        pytest.skip("not glibc: the threshold is the C library's own")
    assert settled["held_mb"] < 20  # the one array kept (3 MB), not the 125 MB freed
    assert held("as is")["held_mb"] > 60  # what glibc keeps when left alone


# -- the cyclic collector in the app (tui.app, tui.screens.run_work) ---------------------


async def _judged(pilot, app):  # type: ignore[no-untyped-def]
    """The app's run screen once its run is read, analysed and judged."""
    from pilotkit import until

    from tui.screens.run import RunScreen

    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    scr = app.screen
    m = scr.model
    await until(pilot, lambda: not m.loading and m.detection is not None
                and not scr._detecting and not scr._analysing, timeout=120)
    return scr


async def _workers_of_earlier_apps_done() -> None:
    """Earlier tests' apps may have left an analysis computing (q does not wait for it,
    tui.threads); its first end freezes. Wait for it, so that only this app counts."""
    import asyncio
    import time

    from tui.threads import _POOLS

    deadline = time.monotonic() + 120
    while any(p.busy for p in _POOLS) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def test_a_growing_run_freezes_nothing_after_its_first_analysis_and_judgement(  # type: ignore[no-untyped-def]
        sample, tmp_path: Path) -> None:
    """Each ``gc.freeze()`` also froze Textual's rendered lines cached at that moment,
    which refer to themselves: dropped later, they were never freed (an app on a run
    growing by 1,000 records/s grew by ~150 MB a minute). After the first analysis and
    the first judgement (their imports are for good), the app freezes nothing more."""
    import gc

    from pilotkit import until

    from tui.app import AcademyApp

    await _workers_of_earlier_apps_done()
    src = sample("http")
    pool = tmp_path / "logs" / src.name
    pool.mkdir(parents=True)
    rest: dict[str, list[bytes]] = {}
    for f in sorted(src.glob("*.jsonlog")):
        lines = f.read_bytes().splitlines(keepends=True)
        cut = len(lines) // 4
        (pool / f.name).write_bytes(b"".join(lines[:cut]))
        rest[f.name] = lines[cut:]
    app = AcademyApp(str(pool))
    async with app.run_test(size=(150, 40)) as pilot:
        m = (await _judged(pilot, app)).model
        frozen = gc.get_freeze_count()
        for step in range(3):  # the run grows: analysed and judged again each time
            # Everything written is waited for (the store growing at all was waited for,
            # and on a loaded machine the count taken then was short of what the
            # analysis later saw: never equal).
            total = len(m.run.store)
            for name, lines in rest.items():
                part = lines[step * len(lines) // 3:(step + 1) * len(lines) // 3]
                total += sum(1 for line in part if line.strip())
                with (pool / name).open("ab") as fh:
                    fh.write(b"".join(part))
            await until(pilot, lambda total=total: len(m.run.store) == total, timeout=60)
            await until(pilot, lambda total=total: m.analysis is not None
                        and m.analysis.events == total and m.detected_events == total,
                        timeout=120)
            for _ in range(3):  # the screen drawn anew with what came
                await pilot.press("end", "pageup")
        assert gc.get_freeze_count() <= frozen  # it only shrinks as frozen objects die


async def test_reading_a_run_freezes_nothing(  # type: ignore[no-untyped-def]
        sample, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load froze the collector's objects 4 times a second, and once more at its end,
    and with them the lines Textual had drawn by then (cycles: never freed once dropped).
    The store leaves few objects the collector tracks (its columns are arrays), so no
    freeze is needed: only the app's start and its first analysis and judgement (their
    imports are for good) freeze."""
    import gc
    import sys as _sys

    from tui.app import AcademyApp

    await _workers_of_earlier_apps_done()
    callers: list[str] = []
    real = gc.freeze

    def counted() -> None:
        callers.append(_sys._getframe(1).f_code.co_name)
        real()

    monkeypatch.setattr(gc, "freeze", counted)
    app = AcademyApp(str(sample("pairs")))  # 9 files, 10,943 records: batches of progress
    async with app.run_test(size=(150, 40)) as pilot:
        assert (await _judged(pilot, app)).model.load_total > 0  # it reported progress
    assert callers and set(callers) <= {"__init__", "_freeze_once"}, callers


async def test_a_full_collection_waits_for_the_person_to_pause(sample) -> None:  # type: ignore[no-untyped-def]
    """Full collections are made when no key has come for a second (they held the UI
    50-95 ms amid the keys on a 1M-record run), not after the usual 10 younger ones."""
    import gc

    from pilotkit import until

    from tui.app import IDLE_GC_AFTER, AcademyApp
    from tui.screens.run import RunScreen

    app = AcademyApp(str(sample("http")))
    async with app.run_test(size=(150, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        scr = app.screen
        await until(pilot, lambda: not scr.model.loading and scr.model.analysis is not None)
        await pilot.press("down", "down")
        full = gc.get_stats()[2]["collections"]
        junk = [[i] for i in range(200_000)]  # ~30 younger collections' worth
        del junk
        assert gc.get_count()[2] >= IDLE_GC_AFTER
        assert gc.get_stats()[2]["collections"] == full  # not yet: no automatic one
        await until(pilot, lambda: gc.get_stats()[2]["collections"] > full, timeout=60)
        assert gc.get_count()[2] < IDLE_GC_AFTER
