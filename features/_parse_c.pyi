"""features._parse_c (features/_parse_c.c): the per-record body of features.parse's block
loop in C."""

from collections.abc import Callable
from typing import Any

def scan(block: bytes, pos: int, offset: int, loads: Callable[[memoryview], Any],
         decode_error: type[BaseException], shapes: dict[tuple[str, ...], tuple[Any, ...]],
         new_entry: Callable[[tuple[str, ...]], tuple[Any, ...]],
         combos: dict[tuple[int, tuple[Any, ...]], int], created: list[Any],
         message: list[Any], exc_text: list[Any], offsets: list[int],
         shape: list[int], combo: list[int], /) -> tuple[int, int, int]: ...

def intern_codes(index: dict[Any, int], vals: list[Any], values: list[Any] | None = None,
                 /) -> list[int]: ...
