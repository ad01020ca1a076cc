"""A model that never answers never delays the workflow: stopping the steering agent while
its decision waits on a hung model endpoint is quick, and that decision falls back to the
template and says why. Real academy-py run, real openai client, a loopback server that
reads the chat request and never replies."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, hang
from steerkit import FAST, Knobbed, drive_until, local_run, pool_records, steering_calls

from steering.agent import launch_steering
from steering.llm_config import LLMConfig
from steering.steerer import Mode

MODEL_TIMEOUT_S = 120.0
"""The model's own time-out, as a user with a slow local model sets it (40 s in the field);
long, so that only a stop that does not wait for the model call ends before it."""


@pytest.mark.parametrize("mode", ["suggest", "apply"])
async def test_stop_with_a_hung_model_is_quick(tmp_path: Path, mode: Mode) -> None:
    with FakeOpenAI() as server:
        server.script(*[hang() for _ in range(8)])
        llm = LLMConfig(base_url=server.base_url, api_key="sk-test", model="m1",
                        timeout_s=MODEL_TIMEOUT_S, max_retries=0)
        opts = replace(FAST, llm_timeout_s=MODEL_TIMEOUT_S)
        async with local_run(tmp_path) as (m, cfg, pool):
            before = set(threading.enumerate())
            worker = await m.launch(Knobbed, kwargs={"slow_from": 12}, log_config=cfg)
            steer = await launch_steering(m, log_config=cfg, mode=mode, llm=llm,
                                          options=opts)

            async def asked() -> bool:
                return bool(server.chat_requests)

            await drive_until(worker, asked)
            assert server.chat_requests, "the steering agent never asked the model"
            # The calls in flight: threads blocked in the openai client on the hung server.
            # Nothing but the server stopping (after the checks below) or the model's
            # time-out can end them.
            calls = [t for t in threading.enumerate()
                     if t.name == "steering-model" and t not in before]
            assert calls
            await m.shutdown(steer.agent_id, blocking=True)
            # Stop was not held up by the model: the agent has stopped while its model call
            # is still blocked (no clock read, so a loaded machine cannot flake it; a stop
            # that waited for the call would have waited out MODEL_TIMEOUT_S first).
            assert all(t.is_alive() for t in calls) and not server.stopping.is_set()
            await worker.step()  # the workflow goes on after its steering agent stopped
    recs = [r for r in pool_records(pool) if "steering.kind" in r]
    (sugg,) = [r for r in recs if r["steering.kind"] == "suggestion"]
    assert sugg["steering.source"] == "template"
    assert "the model did not answer within" in sugg["steering.llm_error"]
    assert "template used" in sugg["steering.llm_error"]
    kinds = [r["steering.kind"] for r in recs]
    assert kinds.index("suggestion") < kinds.index("stop")
    if mode == "suggest":  # the template's remedy, recorded
        assert sugg["steering.action"] == "set_knob"
    else:  # a change made while stopping would never be checked: none is made
        assert sugg["steering.action"] == "none" and "apply" not in kinds
        assert "No remedy chosen." in sugg["steering.summary"]
        assert "set_knob" not in {name for name, _ in steering_calls(str(worker.agent_id.uid))}
