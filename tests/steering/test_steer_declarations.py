"""Steerable declarations: the decorator, the docstring marker read back through a real
``agent_describe`` call, bounds, proposals; and the policy's judge. (Bounds held at the
action are in test_trust_steerable.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from academy.agent import Agent, action
from steerkit import KNOB, Knobbed, local_run

from steering.policy import RateLimiter, judge, remedy_args
from steering.steerable import (
    MARKER,
    AgentRef,
    Range,
    SteerableSpec,
    declarations,
    from_description,
    steerable,
)
from steering.watch import CheckData


def test_decorator() -> None:
    (spec,) = declarations(Knobbed).values()
    assert (spec.action, spec.knob, spec.ref, spec.current) == ("set_knob", "knob", None,
                                                                 "get_knob")
    assert spec.bounds == KNOB
    assert Knobbed.set_knob.__doc__.splitlines()[-1].startswith(MARKER)


def test_declarations_are_checked() -> None:
    with pytest.raises(TypeError, match="not in its signature"):
        steerable(speed=(0, 1))(Knobbed.step)
    with pytest.raises(ValueError, match="one or more Range"):
        SteerableSpec.build("f", a=AgentRef())  # nothing to move
    with pytest.raises(ValueError, match="lo <= hi"):
        Range(2, 1)
    with pytest.raises(ValueError, match="factor"):
        Range(0, 1, factor=1.5)

    class Bad(Agent):
        @steerable(x=(0, 1), current="missing")
        @action
        async def set_x(self, x: float) -> None:
            """Set x."""

    with pytest.raises(ValueError, match="needs an @action"):
        declarations(Bad)

    class Unenforceable(Agent):
        # Bounds in a class attribute could not hold at the action: refused, not ignored.
        STEERABLE = {"set_rate": {"rate": (1, 10)}}

    with pytest.raises(ValueError, match="STEERABLE is no longer read"):
        declarations(Unenforceable)
    def set_x(self: object, x: float) -> None:
        """Not async: Academy actions are."""

    with pytest.raises(TypeError, match="async"):
        steerable(x=(0, 1))(set_x)


def test_bounds_and_proposals() -> None:
    r = Range(0.0, 2.0, factor=0.5)
    assert [r.contains(v) for v in (0.0, 2.0, 2.01, -1, math.nan, True, "1")] == \
        [True, True, False, False, False, False, False]
    assert r.propose(1.0) == 0.5
    assert r.propose(0.0) is None  # nothing left to decrease
    assert r.propose(None) is None
    assert Range(0, 1, on_slow="min").propose(None) == 0.0
    assert Range(0, 8, on_slow="increase", integer=True).propose(3) == 6.0
    spec = SteerableSpec.build("set_weight", agent=AgentRef(), weight=(0.0, 1.0))
    uid = "6a00a76f-2b12-48d2-a810-ee5784d37053"
    assert remedy_args(spec, 1.0, uid) == {"weight": 0.5, "agent": uid}
    assert remedy_args(spec, 1.0, "not a uuid") is None
    assert spec.check({"weight": 0.5}) is not None
    assert spec.check({"weight": 0.5, "agent": uid, "extra": 1}) is not None


def test_marker_round_trip_and_garbage() -> None:
    spec = declarations(Knobbed)["set_knob"]
    desc = {"actions": {"set_knob": {"doc": Knobbed.set_knob.__doc__},
                        "step": {"doc": "not steerable"},
                        "evil": {"doc": MARKER + "{not json"},
                        "other": {"doc": MARKER + json.dumps(spec.as_dict())}}}
    # A marker naming another action than the one it documents is ignored.
    assert from_description(desc) == {"set_knob": spec}


async def test_describe_over_the_exchange(tmp_path: Path) -> None:
    async with local_run(tmp_path) as (m, cfg, _):
        h = await m.launch(Knobbed, log_config=cfg)
        desc = await h.agent_describe()
    assert from_description(desc) == declarations(Knobbed)


def test_rate_limiter() -> None:
    lim = RateLimiter()
    for t in (0.0, 1.0):
        assert lim.allowed("k", 2, now=t)
        lim.record("k", now=t)
    assert not lim.allowed("k", 2, now=30.0)
    assert lim.allowed("k", 2, now=60.5)


def test_judge() -> None:
    base = 0.1
    fast = CheckData([0.11, 0.1, 0.12], [], 0, 0, base)
    assert judge(fast, False, 2.5)[0] == "resolved"
    slow = CheckData([0.8, 0.8, 0.8], [], 0, 0, base)
    assert judge(slow, False, 2.5, incident_ratio=8.0)[0] == "not_improved"
    half = CheckData([0.4, 0.4, 0.4], [], 0, 0, base)
    assert judge(half, False, 2.5, incident_ratio=8.0)[0] == "improved"
    assert judge(CheckData([0.8], [], 0, 0, base), False, 2.5)[0] is None
    moved = CheckData([0.4], [0.1] * 15, 4, 16, base)
    assert judge(moved, True, 2.5)[0] == "resolved"
    stuck = CheckData([0.4] * 4, [0.1] * 12, 4, 16, base)
    assert judge(stuck, True, 2.5)[0] == "not_improved"


def test_the_trail_counts_agents_with_nothing_to_steer_as_they_are_launched() -> None:
    """'not steerable: WorkerAgent (N agent(s) ...)' is said when a class's agents are
    first seen and again when more of them were launched since (on a loaded machine a
    worker can be launched after the steering agent's first look): the last word has every
    agent, and nothing is said again while the count stands."""
    from steering.agent import OWN_CLASSES, SteeringAgent
    from steering.audit import Audit
    from steering.targets import Claim, Targets

    me = "00000000-0000-4000-8000-0000000000aa"
    agent = SteeringAgent.__new__(SteeringAgent)  # its startup attaches to an exchange
    agent.audit = Audit(me, "AgentId<000000aa>", "suggest")
    agent.targets_ = Targets(me, None, 1.0, OWN_CLASSES)
    agent.claims, agent.claims_seen_, agent.unsteerable_ = [], 0, {}

    def launched(i: int) -> None:
        agent.claims.append(Claim(f"AgentId<{i:08x}>", f"{i:032x}", "WorkerAgent"))
        agent._say_unsteerable()

    launched(1)
    launched(2)
    agent._say_unsteerable()  # nothing new
    said = [json.loads(e["agents"]) for e in agent.audit.history("targets")]
    assert said == [["AgentId<00000001>"], ["AgentId<00000001>", "AgentId<00000002>"]]
