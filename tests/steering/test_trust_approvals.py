"""Approvals go only where the user's own session file says, carry a proof, and read JSON
only (SECURITY.md R1-R3, R8). Forged pools point at loopback listeners that count every
connection; a hostile 'steering agent' on a second loopback HTTP exchange answers pickled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from academy.exception import DeserializationMethodProhibitedError
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from forge import forge, forged_steering, launched, steering_session, suggest
from steerkit import FAST, Knobbed, drive_until, kinds, steering_calls

from features.run import Run
from features.trust import make_approval, suggestion_digest
from steering.agent import launch_steering
from steering.attach import AttachError, prepare_decision, proof_for, send_decision

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def listener() -> Iterator[tuple[int, list[int]]]:
    """A loopback TCP port that accepts and counts connections (and closes them)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    hits: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            hits.append(1)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1]), hits
    finally:
        stop.set()
        t.join(2)
        srv.close()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli", "--home", str(home), "steer",
                           *args], capture_output=True, text=True, timeout=120, check=False)


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err and "Unclosed" not in err, err
    return err


def pool_dir(home: Path) -> Path:
    p = home / "logs" / "0c1a7d7e-93a2-4a62-9b7b-5d3c8e2f4a10"
    p.mkdir(parents=True)
    return p


@pytest.mark.parametrize("scheme", ["http", "redis"])
def test_a_forged_exchange_gets_zero_connections(tmp_path: Path, scheme: str) -> None:
    with listener() as (port, hits):
        pool = pool_dir(tmp_path)
        forge(pool, forged_steering(f"{scheme}://127.0.0.1:{port}",
                                    "9d0c7b1e-1111-4c1b-9d0e-0123456789ab"))
        res = cli(tmp_path, pool.name, "--approve", "s1")
        assert res.returncode == 2
        assert "not the steering agent's own" in one_line(res.stderr)
        # Even when the user is talked into typing the address, nothing proves the approval.
        res = cli(tmp_path, pool.name, "--approve", "s1", "--exchange",
                  f"{scheme}://127.0.0.1:{port}")
        assert res.returncode == 2
        one_line(res.stderr)
        time.sleep(0.3)
        assert hits == []


def test_approvals_go_where_the_session_file_says(tmp_path: Path) -> None:
    with listener() as (real, real_hits), listener() as (fake, fake_hits):
        with steering_session(tmp_path, exchange=f"http://127.0.0.1:{real}") as (pool, _, a):
            a.emit("start", "steering", exchange=f"http://127.0.0.1:{real}")
            suggest(a)
        forge(pool, forged_steering(f"http://127.0.0.1:{fake}",
                                    "9d0c7b1e-2222-4c1b-9d0e-0123456789ab"))
        res = cli(tmp_path, pool.name, "--approve", "s1")
        # The real address is no exchange (a bare listener here): one line, nothing else.
        assert res.returncode == 2
        assert "cannot reach the exchange" in one_line(res.stderr)
        time.sleep(0.3)
        assert real_hits and fake_hits == []


def test_a_pickled_reply_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    port = free_port()
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_steering.py"), str(marker),
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        assert fake.stdout is not None
        line = fake.stdout.readline()
        assert line.startswith("READY "), line
        uid = line.split()[1]
        url = f"http://127.0.0.1:{port}"
        # The user's own session for that agent (its name was taken over on the exchange),
        # with a genuine pending suggestion: the CLI connects, and must still not unpickle.
        with steering_session(tmp_path, exchange=url, agent=uid) as (pool, _, audit):
            audit.emit("start", "steering", exchange=url)
            suggest(audit)
        forge(pool, [launched(uid, "SteeringAgent")])  # as the old code needed to call it
        res = cli(tmp_path, pool.name, "--approve", "s1")
        assert res.returncode == 2
        assert "approve s1" in one_line(res.stderr) and "failed" in res.stderr
        run = Run(pool)
        run.load(workers=1)
        with pytest.raises(AttachError):
            asyncio.run(send_decision(prepare_decision(run, "s1"), "reject"))
        assert not marker.exists()
    finally:
        # Its whole group: the HTTP exchange it spawned too (else it outlives the test).
        os.killpg(fake.pid, signal.SIGKILL)
        fake.wait()


def test_approving_once_the_exchange_is_gone_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens any more
    with steering_session(tmp_path, exchange=url) as (pool, _, audit):
        audit.emit("start", "steering", exchange=url)
        suggest(audit)
    res = cli(tmp_path, pool.name, "--approve", "s1")
    assert res.returncode == 2 and "cannot reach the exchange" in one_line(res.stderr)
    res = cli(tmp_path, pool.name, "--reject", "s1")
    assert res.returncode == 2
    one_line(res.stderr)


def test_a_lost_agents_suggestion_has_expired(tmp_path: Path) -> None:
    with listener() as (port, hits):
        url = f"http://127.0.0.1:{port}"
        with steering_session(tmp_path, exchange=url) as (pool, _, audit):
            audit.emit("start", "steering", exchange=url)
            suggest(audit)  # then killed: no stop record
        old = time.time() - 3600
        for f in pool.glob("*.jsonlog"):
            import os

            os.utime(f, (old, old))
        res = cli(tmp_path, pool.name, "--approve", "s1")
        assert res.returncode == 2
        err = one_line(res.stderr)
        assert "s1 is expired (the steering agent is gone (lost)): nothing was changed" in err
        trail = cli(tmp_path, pool.name)
        assert "\nSteering agents\n" in trail.stdout
        assert " lost (its process ended without a stop record)" in trail.stdout
        assert "\n  expired: the steering agent is gone (lost)  s1  +" in trail.stdout
        time.sleep(0.3)
        assert hits == []


async def test_the_steering_agent_takes_json_and_proofs_only(tmp_path: Path) -> None:
    """A real steering agent on Academy's HTTP exchange, in mode confirm."""
    from academy.logging.configs.jsonpool import JSONPoolLogging
    from academy.manager import Manager

    from steering.runenv import academy_home_env, pool_logging

    cfg = JSONPoolLogging()
    port = free_port()
    with academy_home_env(tmp_path), pool_logging(cfg), \
            spawn_http_exchange("127.0.0.1", port) as factory:
        async with await Manager.from_exchange_factory(
                factory, executors=ThreadPoolExecutor(4), log_config=cfg) as m:
            target = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
            steer = await launch_steering(m, log_config=cfg, mode="confirm", llm=None,
                                          options=FAST)

            async def pending() -> bool:
                return any(s["status"] == "pending" for s in await steer.suggestions())

            await drive_until(target, pending, every=2)
            (s,) = [s for s in await steer.suggestions() if s["status"] == "pending"]
            # Pickle in: refused before it is read.
            with pytest.raises(DeserializationMethodProhibitedError):
                await asyncio.wait_for(Handle(steer.agent_id).suggestions(), 20)
            # No proof, a proof for another call, a proof from a stranger's key: refused.
            res = await steer.approve(s["id"])
            assert res["status"] == "pending" and "no proof" in res["denied"]
            other = suggestion_digest(s["target_uuid"], "shutdown_all", "{}")
            good = proof_for(s)
            from features.trust import load_sessions

            (session,) = [x for x in load_sessions()[0] if x.agent_uuid == s["session"]]
            wrong_call = make_approval(session, "approve", s["id"], other)
            res = await steer.approve(s["id"], wrong_call)
            assert "another call" in res["denied"]
            forged: dict[str, Any] = dict(good, mac="0" * 64)
            assert (await steer.approve(s["id"], forged))["denied"] == "bad proof"
            assert not [c for c in steering_calls(str(target.agent_id.uid))
                        if c[0] == "set_knob"]
            res = await steer.approve(s["id"], good)
            assert res["status"] == "applied"
            events = list(await steer.history(None, 1000))
    denied = kinds(events, "denied")
    assert len(denied) == 3 and all(d["verb"] == "approve" for d in denied)
    assert [c for c in steering_calls(str(target.agent_id.uid)) if c[0] == "set_knob"]


@pytest.mark.parametrize("scheme", ["http", "redis"])
def test_attaching_to_a_dead_exchange_is_one_error_line(tmp_path: Path, scheme: str) -> None:
    with steering_session(tmp_path) as (pool, _, audit):
        suggest(audit)
    res = cli(tmp_path, pool.name, "--exchange", f"{scheme}://127.0.0.1:{free_port()}",
              "--mode", "apply", "--targets", "steering.demo.straggleragents:CoordinatorAgent")
    assert res.returncode == 2
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "nothing answers there" in errors[0], res.stderr
    assert "Traceback" not in res.stderr and "Unclosed" not in res.stderr
    # The pool was written just now: a live run's exchange is not said to have ended.
    assert "the run is live" in errors[0] and "probably ended" not in errors[0], errors[0]
    old = time.time() - 3600
    for f in pool.glob("*.jsonlog"):
        os.utime(f, (old, old))
    res = cli(tmp_path, pool.name, "--exchange", f"{scheme}://127.0.0.1:{free_port()}",
              "--mode", "apply", "--targets", "steering.demo.straggleragents:CoordinatorAgent")
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert res.returncode == 2 and len(errors) == 1, res.stderr
    assert "probably ended" in errors[0] and "live" not in errors[0], errors[0]
