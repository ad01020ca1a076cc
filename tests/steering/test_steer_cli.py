"""``academy-tui demo --scenario straggler --steer apply --no-tui`` and ``academy-tui steer``
through the real command line (in process), on a real run."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from tui.cli import main


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A straggler run steered in apply mode, and what the demo command printed."""
    home = tmp_path_factory.mktemp("cli-home")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["--home", str(home), "demo", "--scenario", "straggler", "--steer", "apply",
                   "--no-tui", "--iterations", "14", "--sleep", "0.03", "--workers", "3",
                   "--slow-factor", "6"])
    assert rc == 0
    return home, out.getvalue()


def test_demo_straggler_prints_pool_report_and_steering(steered: tuple[Path, str]) -> None:
    home, text = steered
    assert text.startswith(f"pool: {home.resolve()}/logs/")
    assert "makespan:" in text
    steering = text.split("\nSteering (", 1)[1]
    assert "call(s) applied" in steering.splitlines()[0]
    assert "suggestion" in steering and "apply" in steering and "set_weight" in steering


def test_steer_trail(steered: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    home, _ = steered
    assert main(["--home", str(home), "steer", "latest"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Steering trail of ") and " applied" in lines[0]
    sugs = lines[lines.index("Suggestions") + 1:]
    # Its state first (applied, checked: resolved...), then which and what.
    assert sugs[0].startswith(("  applied", "  checked")) and "  s1  +" in sugs[0]
    assert "set_weight(" in sugs[0]
    assert any(ln.startswith("  WorkerAgent.work on AgentId<") for ln in lines)
    assert not any(ln.startswith("{") for ln in lines)
    assert main(["--home", str(home), "steer", "latest", "--records"]) == 0
    records = capsys.readouterr().out.splitlines()
    assert any(" apply " in ln and "calling set_weight" in ln for ln in records)


def test_steer_errors_are_one_line(steered: tuple[Path, str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    home, _ = steered
    assert main(["--home", str(home), "steer", "latest", "--approve", "s1"]) == 2
    err = capsys.readouterr().err
    # Mode apply: s1 was applied already (and the run is over): nothing to approve.
    assert err.count("\n") == 1 and "nothing was changed" in err, err
    assert main(["--home", str(home), "steer", "latest", "--exchange", "local://x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach an exchange" in err
