"""``academy-tui steer RUN``, the listing: suggestions by state (pending first, with the
command that approves them), incidents grouped per agent and action, ``--format json``;
on a pool written by a real steering session (its signed records through Academy's JSON
pool logging, tests/forge.py)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from forge import TARGET, applied, steering_session, suggest

from features.run import Run
from steering.attach import prepare_decision
from tui.cli import main

ROOT = Path(__file__).resolve().parents[2]
SLOW = "AgentId<5104a9e1>"


@pytest.fixture(scope="module")
def pending(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(home, pool): 40 incidents about one slow worker, one about two, a suggestion that
    was applied and one that waits for a person (the session is running: just written)."""
    home = tmp_path_factory.mktemp("trail-home")
    with steering_session(home, exchange="http://127.0.0.1:9") as (pool, _, audit):
        audit.emit("start", "steering %s", "x", exchange="http://127.0.0.1:9")
        for i in range(1, 41):
            kind = {"incident_kind": "slowdown"} | ({"change": "level_shift"} if i == 3
                                                    else {})
            audit.emit("incident", "incident %s: %s", f"i{i}", "slow calls",
                       level=logging.WARNING, incident=f"i{i}", group="Worker.work",
                       agents=[SLOW], count=2, max_ratio=3.0 + i / 10, severity="high",
                       **kind)
        audit.emit("incident", "incident %s: %s", "i41", "slow calls", incident="i41",
                   incident_kind="slowdown", group="Worker.work",
                   agents=[SLOW, "AgentId<0ther0000>"], count=2, max_ratio=2.6,
                   severity="medium")
        suggest(audit, "s1")
        applied(audit, "s1")
        suggest(audit, "s2", args={"knob": 0.25})
    return home, pool


def _live(pool: Path) -> None:
    """Files written just now: the run is live and its steering agent running (a slow
    machine may take longer than the live window between the fixture and a test)."""
    for f in pool.glob("*.jsonlog"):
        os.utime(f)


def test_pending_first_with_its_commands_and_incidents_grouped(
        pending: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    home, pool = pending
    _live(pool)
    assert main(["--home", str(home), "steer", pool.name[:8]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"Steering trail of {pool.name}") and "1 pending" in lines[0]
    sugs = lines[lines.index("Suggestions, pending first") + 1:]
    assert sugs[0].split()[:2] == ["pending", "s2"] and "set_knob(knob=0.25)" in sugs[0]
    assert sugs[1].strip() == "calls are slow"  # its summary, to decide on
    approve = sugs[2].split("approve: ", 1)[1]
    assert approve == f"academy-tui --home {shlex.quote(str(home))} steer {pool.name} " \
                      "--approve s2"
    assert sugs[3].split("reject:  ", 1)[1] == approve.replace("--approve", "--reject")
    assert any(ln.split()[:3] == ["applied:", "ok", "s1"] for ln in sugs)
    # The pasted command names the suggestion a decision is made on.
    argv = shlex.split(approve)[1:]
    run = Run(pool)
    run.load()
    assert prepare_decision(run, argv[-1]).suggestion.id == "s2"
    # 41 incident records: one line per agent and action, not one per record.
    inc = lines[lines.index("Incidents, per agent and action") + 1:]
    assert inc[0].startswith(f"  Worker.work on {SLOW}: 41 incidents (40 slowdowns, "
                             "1 level shift), +")
    assert "worst 7.0x, 82 slow calls; suggestions s1, s2" in inc[0]
    assert inc[1].startswith("  Worker.work on AgentId<0ther0000>: 1 incident (1 slowdown)")
    assert len(lines) < 20, out
    assert not any(ln.startswith("{") for ln in lines)  # no raw JSON for people


def test_json_is_one_document(pending: tuple[Path, Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    home, pool = pending
    _live(pool)
    assert main(["--home", str(home), "steer", pool.name, "--format", "json",
                 "--records"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pool"] == pool.name and doc["counts"]["incident"] == 41
    first = doc["suggestions"][0]
    assert first["key"] == "s2" and first["pending"] and first["args"] == {"knob": 0.25}
    assert first["target_uuid"] == TARGET and first["approve"].endswith("--approve s2")
    assert "approve" not in doc["suggestions"][1]
    g = doc["incidents"][0]
    assert (g["agent"], g["count"], g["worst_ratio"], g["calls"]) == (SLOW, 41, 7.0, 82)
    assert g["kinds"] == {"slowdown": 40, "level_shift": 1}
    assert len(doc["trail"]) == 1 + 41 + 1 + 2 + 1


def _heavy(*argvs: list[str]) -> list[str]:
    """The heavy packages importing ``tui.cli`` and running ``argvs`` loads, in a fresh
    process."""
    code = ("import sys\nfrom tui.cli import main\n"
            + "".join(f"assert main({a!r}) == 0\n" for a in argvs)
            + "print('HEAVY', ','.join(sorted(m for m in ('sklearn', 'scipy', 'academy', "
              "'textual') if m in sys.modules)))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[-1].removeprefix("HEAVY ").split(",")


def test_listing_imports_neither_scikit_learn_nor_academy(
        pending: tuple[Path, Path], samples_home: Path) -> None:
    """A person waits for these: scikit-learn's import alone took 2 s of a 3 s listing,
    and of a 352-record report (whose text never shows what the forest ranks)."""
    home, pool = pending
    assert _heavy(["--home", str(home), "steer", pool.name], ["runs"]) == [""]
    # Nor does a report on a small clean run: scipy.stats (0.6 s) only where a level
    # shift or a drift is to be tested for significance.
    assert _heavy(["--home", str(samples_home), "report", "08a9"]) == [""]
