"""``python -m tui.cli``: the ``academy-tui`` command."""

import sys

from tui.cli.main import main

sys.exit(main())
