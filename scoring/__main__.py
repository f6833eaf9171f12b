"""``python -m scoring``: the ``algoperf score`` command."""

import sys

from scoring.cli import main

sys.exit(main())
