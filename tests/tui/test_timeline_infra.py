"""Blocks and managers on the timeline, under the agents they hosted, and CPU per process
(issue 16): the real Parsl sample (tests/data/parsl-sample.tar.xz) opened with its
monitoring database joined, as `academy-tui RUN --with DIR` does."""

from __future__ import annotations

from pathlib import Path

from pilotkit import until
from test_timeline import SIZE, lane_line, lines, open_timeline

from features.source_kinds import open_source
from tui.app import AcademyApp

POOL = "7ea557a4-c126-4292-b558-94a130940b3f"



async def test_blocks_and_managers_lead_the_process_they_hosted(parsl_sample: Path) -> None:
    app = AcademyApp(run=str(parsl_sample / "pool" / POOL),
                     sources=(open_source(parsl_sample / "parsl"),))
    async with app.run_test(size=SIZE) as pilot:
        _, tl = await open_timeline(pilot, app)
        keys = [(ln.kind, ln.key) for ln in tl.data.lanes]
        assert ("infra", "block 0") in keys and ("infra", "manager a29224de") in keys
        # Grouped by process: the worker process's group holds the block, the manager,
        # then its two agents; its header shows the process's CPU from Parsl's samples.
        await pilot.press("g")
        await until(pilot, lambda: any(r[0] == "group" for r in tl.rows))
        rows = tl.rows
        g = next(k for k, r in enumerate(rows) if r[0] == "group" and "32359" in r[2])
        # Under the header: the process's memory line, then its lanes.
        assert rows[g + 1] == ("memory", 32359, rows[g][2])
        members = [tl.data.lanes[r[1]].key for r in rows[g + 2:g + 6]]
        assert members[:2] == ["block 0", "manager a29224de"]
        assert set(members[2:]) == {"AgentId<4db67cbd>", "AgentId<e407babf>"}
        text = lines(tl)
        header = next(t for t in text if "32359" in t and "▾" in t)
        assert " cpu≤10%" in header and any(ch in header for ch in "▂▃▄▅▆▇█")
        memory = text[text.index(header) + 1]
        assert memory.lstrip().startswith("rss≤184.2 MB") and "█" in memory
        # Selecting the block lane: the readout says when it was submitted and ran.
        block = next(i for i, ln in enumerate(tl.data.lanes) if ln.key == "block 0")
        tl._select_lane(block)
        await pilot.pause(0.05)
        assert "block 0: submitted +5.721 s, running +10.724 s, scaled_in +16.571 s; " \
            "hosted pid 32359" in tl.readout()
        y = lane_line(tl, block)
        assert lines(tl)[y].lstrip(" ▶").startswith("block 0")
