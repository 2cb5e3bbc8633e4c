"""``python -m tfckpt``: see :mod:`tfckpt.cli`."""

import sys

from .cli import main

sys.exit(main())
