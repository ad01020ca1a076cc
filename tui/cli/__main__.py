"""``python -m tui.cli``: the ``academy-tui`` command."""

import sys

from tui.cli.commands import main

sys.exit(main())
