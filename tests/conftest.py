"""Shared fixtures: the sample pools, and an environment that never touches the
developer's real home, config, cache or Academy logs."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

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
def sample(samples_home: Path):  # type: ignore[no-untyped-def]
    """``sample("http")`` -> the pool directory of that scenario."""
    def get(name: str) -> Path:
        return samples_home / "logs" / SAMPLE[name]
    return get


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("ACADEMY_TUI_CACHE_DIR", raising=False)
    monkeypatch.setenv("ACADEMY_HOME", str(home / "academy"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.delenv("ACADEMY_TUI_STATE_DIR", raising=False)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ACADEMY_TUI_MODEL",
                "ACADEMY_TUI_LLM_TIMEOUT", "ACADEMY_TUI_LLM_MAX_RETRIES",
                "ACADEMY_TUI_LLM_MAX_TOKENS", "ACADEMY_TUI_LLM_TOKEN_BUDGET",
                "ACADEMY_TUI_LLM_TEMPERATURE", "ACADEMY_TUI_LLM_MODE",
                "ACADEMY_TUI_LLM_LOG_CALLS"):
        monkeypatch.delenv(key, raising=False)
