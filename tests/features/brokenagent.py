"""An agent whose module cannot be imported in a worker process (as with a Parsl worker
missing a dependency): the agent is launched but never starts there."""

from __future__ import annotations

import multiprocessing

from academy.agent import Agent, action

if multiprocessing.parent_process() is not None:  # a spawned worker, not the test
    raise ImportError("no module named 'numpy_that_is_missing' (in the worker)")


class Broken(Agent):
    """Never runs in a worker."""

    @action
    async def work(self) -> int:
        """Never called."""
        return 1
