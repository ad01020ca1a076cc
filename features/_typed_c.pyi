"""features._typed_c (features/_typed_c.c): features.typed's rule in C for the values it
decides at a glance; the rest goes to the Python rule given to :func:`configure`."""

from collections.abc import Callable
from typing import Any

def configure(null_strings: frozenset[str], rule: Callable[[Any], Any], num_start: str,
              id_start: str, long_text: int, /) -> None: ...
def typed(value: Any, /) -> Any: ...
def typed_record(rec: dict[str, Any], /) -> dict[str, Any]: ...
