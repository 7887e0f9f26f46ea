"""``python -m tensorcore``: the same as the ``tensorcore`` command."""

import sys

from tensorcore.cli import main

sys.exit(main())
