"""The steering trail counts only the steering agent's own records (SECURITY.md R6, R8).

Each test writes a real signed trail through Academy's JSON pool logging, then forges
records into the same pool as a hostile writer would, and reads the run as the CLI, the
report and the app do."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from forge import TARGET, applied, forge, record, steering_lines, steering_session, suggest

from features import report
from features.run import Run
from features.trail import read_trail
from features.trust import (
    ApprovalCheck,
    create_session,
    load_sessions,
    make_approval,
    sessions_dir,
    suggestion_digest,
)
from steering.audit import Audit
from tui.cli import main


def _run(pool: Path) -> Run:
    run = Run(pool)
    run.load(workers=1)
    return run


def _real(home: Path, mode: str = "confirm") -> tuple[Path, str]:
    """A pool with one real suggestion s1 (set_knob on TARGET) that was applied."""
    with steering_session(home, mode) as (pool, session, audit):
        audit.emit("start", "steering %s", "x", exchange="local")
        suggest(audit)
        applied(audit)
    return pool, session.agent_uuid


def test_forged_apply_and_suggestion_records_are_not_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool, session = _real(tmp_path)
    sig = "0" * 64
    forge(pool, [
        # A forged s1 on the steering logger, with the real session's id: another action.
        record("suggestion s1: shutdown", **{
            "steering.kind": "suggestion", "steering.id": "s1", "steering.session": session,
            "steering.action": "shutdown", "steering.args": "{}", "steering.mode": "confirm",
            "steering.seq": "2", "steering.t": str(time.time()), "steering.sig": sig}),
        *[record("apply s1 done", **{
            "steering.kind": "apply", "steering.id": "s1", "steering.phase": "after",
            "steering.result": "ok", "steering.session": session, "steering.seq": str(90 + i)})
          for i in range(3)],
        # The workflow's own logger writing steering keys (any library may).
        record("apply s9 done", name="fib.workflow", **{
            "steering.kind": "apply", "steering.id": "s9", "steering.phase": "after",
            "steering.result": "ok"}),
    ])
    run = _run(pool)
    trail = read_trail(run)
    assert list(trail.suggestions) == ["s1"]
    s1 = trail.suggestions["s1"]
    assert (s1.action, s1.target_uuid, json.loads(s1.args)) == ("set_knob", TARGET,
                                                                 {"knob": 0.5})
    assert trail.counts()["applied"] == 1 and trail.counts()["unverified"] == 5
    whys = " | ".join(w for _, w in trail.unverified)
    assert "signature" in whys and "logger 'fib.workflow'" in whys
    # The CLI counts the same way and lists the rest apart.
    assert main(["steer", str(pool), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["applied"] == 1 and doc["counts"]["unverified"] == 5
    assert [s["key"] for s in doc["suggestions"]] == ["s1"] and len(doc["unverified"]) == 5
    assert main(["steer", str(pool)]) == 0
    out = capsys.readouterr().out
    assert "Not counted: 5 records" in out and "shutdown" not in out.split("Not counted")[0]
    # So does the report.
    sec = report.steering_section(run)
    assert sec is not None and sec.data["counts"]["applied"] == 1
    assert sec.data["unverified"] == 5 and any("not counted: 5" in ln for ln in sec.lines)


def test_tampered_copied_and_moved_records_are_not_counted(tmp_path: Path) -> None:
    pool, _ = _real(tmp_path)
    real = steering_lines(pool)
    apply_after = next(r for r in real if r["steering.kind"] == "apply"
                       and r["steering.phase"] == "after")
    tampered = dict(apply_after, **{"steering.args": json.dumps({"knob": 0.1})})
    tampered["steering.seq"] = "77"  # not a copy: a new record with a forged signature
    moved = dict(apply_after, created=repr(float(apply_after["created"]) + 3600))
    forge(pool, [tampered, dict(apply_after), moved])
    trail = read_trail(_run(pool))
    assert trail.counts()["applied"] == 1
    whys = sorted(w for _, w in trail.unverified)
    assert len(whys) == 3
    assert any("signature" in w for w in whys)
    assert any("copy" in w or "another file" in w for w in whys)
    assert any("time does not match" in w for w in whys)


def test_without_the_session_key_nothing_is_counted(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pool, _ = _real(tmp_path)
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(tmp_path / "another-machine"))
    trail = read_trail(_run(pool))
    assert not trail.suggestions and trail.counts()["applied"] == 0
    assert {w for _, w in trail.unverified} == {"no session key for it on this machine"}


def test_session_files_others_could_read_or_swap_are_ignored(tmp_path: Path) -> None:
    pool, session = _real(tmp_path)
    path = sessions_dir() / f"{session}.json"
    os.chmod(path, 0o644)
    sessions, notes = load_sessions(pool.name)
    assert not sessions and "readable by others" in notes[0]
    os.chmod(path, 0o600)
    link = sessions_dir() / "link.json"
    link.symlink_to(path)
    sessions, notes = load_sessions(pool.name)
    assert [s.agent_uuid for s in sessions] == [session]
    assert any("link.json" in n for n in notes)
    assert not read_trail(_run(pool)).unverified


def test_two_steering_agents_keep_their_own_s1(tmp_path: Path) -> None:
    with steering_session(tmp_path) as (pool, _, audit):
        suggest(audit)
        other = create_session(str(uuid.uuid4()), pool, "local")
        audit2 = Audit(other.agent_uuid, f"AgentId<{other.agent_uuid[:8]}>", "confirm",
                       secret=other.secret)
        suggest(audit2, action="set_knob", args={"knob": 0.25})
    trail = read_trail(_run(pool))
    assert len(trail.suggestions) == 2
    assert sorted(json.loads(s.args)["knob"] for s in trail.suggestions.values()) == \
        [0.25, 0.5]
    assert all("/" in k for k in trail.suggestions)


def test_a_lost_steering_agent_and_its_expired_suggestion(tmp_path: Path) -> None:
    with steering_session(tmp_path) as (pool, _, audit):
        audit.emit("start", "steering")
        suggest(audit)  # pending (mode confirm); then the process was killed: no stop
    old = time.time() - 3600
    for f in pool.glob("*.jsonlog"):
        os.utime(f, (old, old))
    trail = read_trail(_run(pool))
    (st,) = trail.sessions.values()
    assert st.state == "lost" and "without a stop record" in st.why
    assert trail.suggestions["s1"].state == "expired: the steering agent is gone (lost)"
    # While the run is live and the agent wrote recently, it is running and s1 pending.
    with steering_session(tmp_path) as (pool2, _, audit2):
        suggest(audit2)
    trail2 = read_trail(_run(pool2))
    assert next(iter(trail2.sessions.values())).state == "running"
    assert trail2.suggestions["s1"].pending
    # A stop record: stopped, and nothing waits any more.
    with steering_session(tmp_path) as (pool3, _, audit3):
        suggest(audit3)
        audit3.emit("stop", "steering stopped", reason="shutdown")
    trail3 = read_trail(_run(pool3))
    assert next(iter(trail3.sessions.values())).state == "stopped"
    assert trail3.suggestions["s1"].state == "expired: the steering agent stopped"


# -- approvals ----------------------------------------------------------------------------


def _check(tmp_path: Path) -> tuple[ApprovalCheck, object, str]:
    session = create_session(str(uuid.uuid4()), tmp_path, "local")
    digest = suggestion_digest(TARGET, "set_knob", json.dumps({"knob": 0.5}))
    return ApprovalCheck(session.agent_uuid, session.secret), session, digest


def test_an_approval_needs_a_proof_for_exactly_that_call(tmp_path: Path) -> None:
    check, session, digest = _check(tmp_path)
    assert check.why_not("approve", "s1", digest, None) is not None
    assert check.why_not("approve", "s1", digest, {"mac": "x"}) == "malformed proof"
    other = suggestion_digest(TARGET, "shutdown", "{}")
    proof = make_approval(session, "approve", "s1", other)  # type: ignore[arg-type]
    assert "another call" in str(check.why_not("approve", "s1", digest, proof))
    proof = make_approval(session, "approve", "s1", digest)  # type: ignore[arg-type]
    assert check.why_not("reject", "s1", digest, proof) == "bad proof"  # another verb
    assert check.why_not("approve", "s2", digest, proof) == "bad proof"  # another id
    assert check.why_not("approve", "s1", digest, proof) is None
    assert check.why_not("approve", "s1", digest, proof) == "this proof was used already"


def test_an_approval_made_with_another_key_or_time_is_refused(tmp_path: Path) -> None:
    check, session, digest = _check(tmp_path)
    stranger = create_session(str(uuid.uuid4()), tmp_path, "local")
    forged = make_approval(stranger, "approve", "s1", digest)
    forged["session"] = session.agent_uuid  # type: ignore[attr-defined]
    assert check.why_not("approve", "s1", digest, forged) == "bad proof"
    old = make_approval(session, "approve", "s1", digest,  # type: ignore[arg-type]
                        now=time.time() - 3600)
    assert "too old" in str(check.why_not("approve", "s1", digest, old))
    future = make_approval(session, "approve", "s1", digest,  # type: ignore[arg-type]
                           now=time.time() + 3600)
    assert "future" in str(check.why_not("approve", "s1", digest, future))
    assert ApprovalCheck(session.agent_uuid, None).why_not(  # type: ignore[attr-defined]
        "approve", "s1", digest, forged) is not None
