"""What the steering agent tells a person about itself in the run's trail, beside its
incidents: the periodic observation (:func:`observation`) and which launched agents it found
nothing to steer in (:func:`unsteerable_by_class`).

Apart from :mod:`steering.agent` because these are wording and grouping, pure functions of
what the agent counted, testable without starting an agent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from steering.targets import Claim


def observation(st: dict[str, Any], budget: float) -> tuple[str, tuple[Any, ...]]:
    """The observation a steering agent writes every ``observe_every_s``: what it read and
    judged, and on a run big enough that its full judgements wait for each other (to keep
    within ``budget`` of a core: :meth:`steering.watch.Watch.step`), how often they run, so
    a person knows a slowdown may be named that much later."""
    template = "steering watched %d records, judged %d calls, %d incident(s)"
    args: tuple[Any, ...] = (st["records"], st["judged"], st["incidents"])
    if st.get("judge_every_s"):
        template += ("; a run this big is judged in full at most every %.0f s (to keep to "
                     "%.0f%% of a core)")
        args += (st["judge_every_s"], budget * 100)
    return template, args


def unsteerable_by_class(claims: Iterable[Claim], own: Collection[str],
                         declared: Collection[str], found: Collection[str]
                         ) -> dict[str, list[str]]:
    """Class -> display ids of the launched agents with nothing to steer: not of the
    steering agent's ``own`` classes, of no ``declared`` class, and not among the agents
    ``found`` steerable (by uuid; a claim's uuid is compared in lower case)."""
    by_cls: dict[str, list[str]] = {}
    for c in claims:
        if c.cls in own or c.cls in declared or c.uuid.lower() in found:
            continue
        by_cls.setdefault(c.cls, []).append(c.agent_id)
    return by_cls
