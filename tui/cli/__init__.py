"""The ``academy-tui`` command line (its subcommands one module each; what they share in
:mod:`tui.cli.common`, the parser in :mod:`tui.cli.parser`, the handlers in
:mod:`tui.cli.handlers`, the dispatch in :mod:`tui.cli.commands`).

``academy-tui [RUN]`` opens the terminal app; the subcommands print or export what the
app shows. Every failure is one line on stderr and a non-zero exit, never a traceback.
Heavy imports (Textual, academy) happen only in the subcommands that need them, so
``academy-tui runs`` starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``academy-tui`` entry point (see :func:`tui.cli.commands.main`). The module is
    not called ``main``: importing ``tui.cli.main`` would replace this function on the
    package with the module."""
    from tui.cli.commands import main as run

    return run(argv)


__all__ = ["main"]
