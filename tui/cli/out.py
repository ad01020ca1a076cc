"""The command line's output streams: everything a subcommand writes passes one sanitizer.

Records are untrusted: a message, a logger name or a key may hold ``ESC[2J``, an OSC title
or link, ``ESC[6n`` (which makes a terminal type into the shell), C1 controls, bidi
overrides or zero-width characters. :func:`guard` replaces ``sys.stdout`` and
``sys.stderr`` with :class:`SafeText` writers for the length of one command, so no code
path (``print``, ``sys.stdout.write``, bytes to ``sys.stdout.buffer``) can put such a
character on the terminal raw:

- ``text``: :func:`features.safe.visible` (newlines and tabs kept);
- ``json``: :func:`features.safe.json_escape` (``\\uXXXX``, lossless: the data still
  round-trips);
- ``data``: unchanged (CSV going to a file or a pipe is data, kept exact).
"""

from __future__ import annotations

import codecs
import contextlib
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, Literal, TextIO, cast

from features.safe import json_escape, visible

Mode = Literal["text", "json", "data"]

_ESCAPE: dict[str, Callable[[str], str]] = {"text": visible, "json": json_escape}


class SafeBytes:
    """A binary stream (``sys.stdout.buffer``) whose UTF-8 text is escaped like its text
    stream's; other attributes are the wrapped stream's."""

    def __init__(self, raw: IO[bytes], mode: Mode, encoding: str = "utf-8") -> None:
        self._raw = raw
        self._mode = mode
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._encoding = encoding

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if self._mode == "data":
            self._raw.write(data)
            return n
        # Incremental: a character split across two writes is decoded once, whole.
        text = self._decoder.decode(bytes(data))
        if text:
            self._raw.write(_ESCAPE[self._mode](text).encode(self._encoding, "replace"))
        return n

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)

    def finish(self) -> None:
        """Write out what is left of a character cut at the end of the output."""
        rest = self._decoder.decode(b"", final=True)
        if rest and self._mode != "data":
            self._raw.write(_ESCAPE[self._mode](rest).encode(self._encoding, "replace"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class SafeText:
    """A text stream that escapes what it writes (see the module docstring); ``flush``,
    ``fileno``, ``isatty``, ``encoding`` and the rest are the wrapped stream's."""

    def __init__(self, stream: TextIO, mode: Mode) -> None:
        self.wrapped = stream
        """The stream written to."""
        self.mode: Mode = mode
        self._escape = _ESCAPE.get(mode)
        self._buffer: SafeBytes | None = None

    def write(self, text: str) -> int:
        self.wrapped.write(self._escape(text) if self._escape else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def control(self, text: str) -> None:
        """Write our own terminal control text (the progress line's redraws), unescaped.
        Never record text."""
        self.wrapped.write(text)

    @property
    def buffer(self) -> SafeBytes:
        """The binary stream under this one, escaped the same way."""
        if self._buffer is None:
            raw = self.wrapped.buffer  # AttributeError for a StringIO, as unwrapped
            encoding = getattr(self.wrapped, "encoding", None) or "utf-8"
            self._buffer = SafeBytes(raw, self.mode, encoding)
        return self._buffer

    def finish(self) -> None:
        """Flush what the binary side still holds."""
        if self._buffer is not None:
            self._buffer.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def escaped_binary(stream: TextIO, mode: Mode) -> IO[bytes] | None:
    """The binary stream under ``stream`` for bytes already escaped as ``mode`` asks (JSON
    Lines escaped by :mod:`features.jsonl`'s workers), with all written before flushed;
    None when ``stream`` escapes otherwise, or has no binary side."""
    if not isinstance(stream, SafeText) or stream.mode != mode:
        return None
    raw = getattr(stream.wrapped, "buffer", None)
    if raw is None:
        return None
    stream.finish()
    stream.wrapped.flush()
    raw.flush()
    return cast(IO[bytes], raw)


def stdout_mode(kind: str, stream: TextIO) -> Mode:
    """``text``, ``json`` or ``csv`` output, as written to ``stream``: CSV is data unless a
    terminal shows it."""
    if kind == "json":
        return "json"
    if kind == "csv":
        return "text" if _isatty(stream) else "data"
    return "text"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def guard(kind: str) -> Callable[[], None]:
    """Replace ``sys.stdout`` (escaped as ``kind`` output needs: ``text``, ``json`` or
    ``csv``) and ``sys.stderr`` (always text) with escaping writers; returns the function
    that puts the original streams back."""
    out, err = sys.stdout, sys.stderr
    wrappers = []
    if out is not None:
        w = SafeText(out, stdout_mode(kind, out))
        wrappers.append(w)
        sys.stdout = cast(TextIO, w)
    if err is not None:
        e = SafeText(err, "text")
        wrappers.append(e)
        sys.stderr = cast(TextIO, e)

    def restore() -> None:
        for w in wrappers:
            # A reader that went away (a closed pipe) has nothing left to be shown.
            with contextlib.suppress(OSError, ValueError):
                w.finish()
        sys.stdout, sys.stderr = out, err

    return restore


def control(stream: TextIO, text: str) -> None:
    """Write our own terminal control text to ``stream``, past its escaping if it has one
    (progress redraws); never record text."""
    write = getattr(stream, "control", None)
    (write or stream.write)(text)
