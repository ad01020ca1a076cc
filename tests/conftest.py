"""Shared fixtures: the sample pools, and an environment that never touches the
developer's real home, config, cache or Academy logs."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
# The eval's run makers (bench/ask_runs.py) make the tests' runs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

SAMPLE = {
    "thread": "08a98d9a-187e-463f-8012-cdac8e694d8f",
    "redis": "bfb81d0a-658d-4de2-8c6a-f3c39ba09f51",
    "exception": "2ecb7d3e-da4b-40f9-9d11-3c78d4b53842",
    "agent_driver": "5cb68564-3349-43fb-831c-2738a28aaa58",
    "http": "ebe7713b-28de-443e-86fd-1a7e6f450409",
    "pairs": "f56a2ad5-c530-4226-ae69-12187b3ca52a",
    "big_records": "f8680ad0-c4ed-44ac-9f63-3237d9ec68e2",
    "fork": "ab995d49-a2a6-474b-b8f7-97c0c842c6a6",
}
"""Sample pools (see tests/data/samples.tar.xz, a copy of shared/samples)."""


@pytest.fixture(scope="session")
def samples_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ACADEMY_HOME holding the eight sample pools (read-only use, please)."""
    root = tmp_path_factory.mktemp("samples")
    with tarfile.open(DATA / "samples.tar.xz") as tar:
        tar.extractall(root, filter="data")
    return root / "academy_home"


@pytest.fixture(scope="session")
def parsl_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Parsl HTEX run (tests/data/parsl-sample.tar.xz, a copy of shared/samples/
    parsl): its ``pool/``, Parsl's ``parsl/`` run directory with ``monitoring.db`` and logs,
    and the README with its timeline. Read-only: a test that changes it copies it."""
    root = tmp_path_factory.mktemp("parsl-sample")
    with tarfile.open(DATA / "parsl-sample.tar.xz") as tar:
        tar.extractall(root, filter="data")
    return root / "parsl" / "A1-parsl-monitoring"


@pytest.fixture(scope="session")
def sample(samples_home: Path):  # type: ignore[no-untyped-def]
    """``sample("http")`` -> the pool directory of that scenario."""
    def get(name: str) -> Path:
        return samples_home / "logs" / SAMPLE[name]
    return get


LLM_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ACADEMY_TUI_MODEL", "ACADEMY_TUI_LLM_TIMEOUT",
           "ACADEMY_TUI_LLM_MAX_RETRIES", "ACADEMY_TUI_LLM_MAX_TOKENS",
           "ACADEMY_TUI_LLM_TOKEN_BUDGET", "ACADEMY_TUI_LLM_TEMPERATURE", "ACADEMY_TUI_LLM_MODE",
           "ACADEMY_TUI_LLM_LOG_CALLS")


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The same isolation for the whole session, before any module or session fixture runs
    (they are set up before function fixtures): nothing of the developer's home is read or
    written, and steering session files made in module fixtures are found by every test."""
    home = tmp_path_factory.mktemp("session-home")
    state = tmp_path_factory.mktemp("session-state")
    mp = pytest.MonkeyPatch()
    mp.setenv("HOME", str(home))
    for key, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"),
                     ("XDG_STATE_HOME", ".local/state")):
        mp.setenv(key, str(home / sub))
    mp.setenv("ACADEMY_HOME", str(home / "academy"))
    mp.setenv("ACADEMY_TUI_STATE_DIR", str(state))
    mp.delenv("ACADEMY_TUI_CACHE_DIR", raising=False)
    for key in LLM_ENV:
        mp.delenv(key, raising=False)
    yield state
    mp.undo()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch, _session_env: Path) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("ACADEMY_TUI_CACHE_DIR", raising=False)
    monkeypatch.setenv("ACADEMY_HOME", str(home / "academy"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    # Steering session files (the keys that verify a run's steering trail) live outside
    # the pools, as for a user; shared by the session so module fixtures' runs verify.
    monkeypatch.setenv("ACADEMY_TUI_STATE_DIR", str(_session_env))
    for key in LLM_ENV:
        monkeypatch.delenv(key, raising=False)
