"""q quits at once, whatever the app's thread workers are computing (tui.threads)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tui.threads import WorkerThreads, finishing, wait_finishing

ROOT = Path(__file__).resolve().parents[2]
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>78]")


def test_worker_threads_run_tasks_as_a_pool_does() -> None:
    pool = WorkerThreads(max_workers=2)
    futs = [pool.submit(pow, 2, i) for i in range(20)]
    assert [f.result(timeout=30) for f in futs] == [2 ** i for i in range(20)]
    bad = pool.submit(int, "x")
    with pytest.raises(ValueError):
        bad.result(timeout=30)
    assert len(pool._daemons) <= 2
    assert all(t.daemon for t in pool._daemons)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(pow, 2, 2)


def test_shutdown_waits_for_finishing_work_only() -> None:
    pool = WorkerThreads(max_workers=4)
    release = threading.Event()
    started = [threading.Event(), threading.Event()]
    finished = threading.Event()

    def computing() -> None:  # an analysis nobody will read
        started[0].set()
        release.wait(120)

    def must_finish() -> None:  # a load stopping, a save
        with finishing():
            started[1].set()
            time.sleep(0.3)
            finished.set()

    computing_fut = pool.submit(computing)
    pool.submit(must_finish)
    assert started[0].wait(30) and started[1].wait(30)
    queued = [pool.submit(release.wait, 120) for _ in range(4)]  # more than the threads
    end = time.monotonic() + 30
    while pool.busy < 4 and time.monotonic() < end:  # the other two threads starting
        time.sleep(0.01)
    assert pool.busy == 4
    pool.shutdown(wait=True, cancel_futures=True)
    assert finished.is_set()  # waited for the finishing work
    assert not computing_fut.done()  # not for the computation
    assert any(f.cancelled() for f in queued)  # queued work is dropped
    release.set()
    assert computing_fut.result(timeout=30) is None
    assert wait_finishing(30)


class SilentModel:
    """A loopback "model endpoint" that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def _read_until(fd: int, pid: int, want: bytes, deadline: float) -> bytes:
    seen = b""
    while time.monotonic() < deadline and want not in seen:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 1 << 16)
            except OSError:
                break
    return seen


def test_q_while_a_question_waits_for_its_model_quits_at_once(sample) -> None:  # type: ignore[no-untyped-def]
    """A person asks a model that never answers (the call's timeout is an hour), then
    presses q: the app ends now, not when the call times out; the terminal is given back
    clean (no traceback)."""
    model = SilentModel()
    env = {"PYTHONPATH": str(ROOT), "OPENAI_BASE_URL": f"http://127.0.0.1:{model.port}/v1",
           "OPENAI_API_KEY": "sk-test", "ACADEMY_TUI_MODEL": "silent",
           "ACADEMY_TUI_LLM_MODE": "tools",  # every question goes to the model
           "ACADEMY_TUI_LLM_TIMEOUT": "3600", "ACADEMY_TUI_LLM_MAX_RETRIES": "0",
           "XDG_CONFIG_HOME": str(ROOT / "no-such-config")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, its terminal this pty
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
        os.environ.update(env)
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "tui.cli",
                                  str(sample("exception"))])
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
        deadline = time.monotonic() + 120
        seen = _read_until(fd, pid, b"events \xc2\xb7", deadline)  # the status bar: loaded
        os.write(fd, b"a")
        seen += _read_until(fd, pid, b"Ask about this run", deadline)  # its box, shown
        time.sleep(0.5)
        os.write(fd, b"what failed?")
        time.sleep(0.5)
        os.write(fd, b"\r")
        while not model.accepted.is_set() and time.monotonic() < deadline:
            seen += _read_until(fd, pid, b"\0", time.monotonic() + 0.2)  # drain the pty
        assert model.accepted.is_set(), \
            f"the question never reached the model: {ESCAPES.sub(b' ', seen[-3000:])!r}"
        time.sleep(0.5)  # the request is sent; its answer will not come
        os.write(fd, b"\x1b")  # esc: out of the question box
        time.sleep(0.5)
        os.write(fd, b"q")
        out = b""
        status = None
        end = time.monotonic() + 120  # liveness, not speed: the call would wait an hour
        while time.monotonic() < end:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
                break
            out += _read_until(fd, pid, b"\0", time.monotonic() + 0.1)
        assert status is not None, "q did not end the app while its question waited"
        assert os.waitstatus_to_exitcode(status) == 0
        assert b"Traceback" not in out
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
        model.close()
