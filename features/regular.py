"""Opening a pool's files to read them: regular files only, never blocking (SECURITY.md R9).

A pool is untrusted, and so is what its records name (a Parsl run directory). A file of
it may be, or may become between two reads, a FIFO (opening one for reading blocks until
something opens it for writing: a live reader, ``events -f``, the steering watcher or
``latest`` among tied runs would hang for good), a device (``/dev/zero`` never ends; opening a
tape rewinds it) or a directory. :func:`open_regular` looks before it opens, opens
without blocking (``O_NONBLOCK``, which regular files ignore) or taking a controlling
terminal, and checks again what it opened; anything but a regular file is refused with
:class:`NotRegular`, an ``OSError``: every reader already takes an unreadable file as one
(said once, tried again later, the rest of the pool read).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import IO

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket, a directory)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.EINVAL, "not a regular file", os.fspath(path))


def open_regular(path: str | os.PathLike[str]) -> int:
    """A descriptor of the regular file at ``path``, open for reading (symbolic links
    followed). Raises :class:`NotRegular` for anything else, ``OSError`` as ``os.open``."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotRegular(path)
    fd = os.open(path, _FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since it was looked at
            raise NotRegular(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular_file(path: str | os.PathLike[str]) -> IO[bytes]:
    """:func:`open_regular` as a binary file object (``with open_regular_file(p) as f``)."""
    return os.fdopen(open_regular(path), "rb")


__all__ = ["NotRegular", "open_regular", "open_regular_file"]
