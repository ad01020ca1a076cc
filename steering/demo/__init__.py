"""The fibonacci demo workflow: real Academy agents writing a JSON log pool to observe and steer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steering.demo.workflow import (
        DemoOptions,
        DemoResult,
        PairResult,
        run_demo,
        run_demo_async,
    )

__all__ = ['DemoOptions', 'DemoResult', 'PairResult', 'run_demo', 'run_demo_async']


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m steering.demo.workflow` does not import the module twice (runpy warns
    # when the package has already imported the module it is about to run as __main__).
    if name in __all__:
        from steering.demo import workflow

        return getattr(workflow, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
