"""The model's decision on one incident, within a time limit and off the steering agent's
event loop (:func:`decide_in_time`), with the template standing in whenever the model
cannot answer in time.

Apart from :mod:`steering.agent` because waiting on a blocking model call without holding
up the agent's loop or its stop, and saying why the template was used, is a job of its own
(see :mod:`steering.offloop` for why the wait is built this way).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from steering.summary import Decision, decide, template

if TYPE_CHECKING:
    from steering.offloop import OffLoop
    from steering.policy import Remedy
    from steering.steerer import Mode
    from steering.watch import SteerIncident, Watch


async def decide_in_time(client: Any, offloop: OffLoop, watch: Watch, inc: SteerIncident,
                         remedies: list[Remedy], limit: float, mode: Mode
                         ) -> tuple[Decision, float | None]:
    """The model's decision within ``limit`` seconds (+2 s for the explanation of the
    incident), or the template's, saying why, and the CPU seconds the model's thread spent
    (None when the template stood in). Never waits past a stop: when the agent stops while
    the model thinks, a decision in modes ``confirm`` and ``apply`` names no remedy, as
    nobody would be left to approve or check the change."""

    def work() -> tuple[Decision, float]:
        c0 = time.thread_time()
        lines = None
        with contextlib.suppress(Exception):
            from features.explain import explain

            run = watch.run
            lines = explain(run, inc.tags).lines() if run is not None else None
        return decide(client, inc, remedies, lines), time.thread_time() - c0

    t0 = time.monotonic()
    try:
        outcome, got = await offloop.run(work, limit + 2.0)
    except Exception as exc:  # the model call broke in a way decide() did not catch
        fallback = template(inc, remedies)
        fallback.error = f"{type(exc).__name__}: {exc}; template used"[:300]
        return fallback, None
    if outcome == "done" and got is not None:
        return got
    waited = time.monotonic() - t0
    if outcome == "stopped":
        stopped = "steering stopped" if mode != "suggest" else None
        fallback = template(inc, remedies, none_why=stopped)
        fallback.error = (f"the model did not answer within {waited:.1f} s (steering "
                          "stopped); template used")
    else:
        fallback = template(inc, remedies)
        fallback.error = f"the model did not answer within {limit:g} s; template used"
    fallback.llm_s = waited
    return fallback, None
