"""``python -m tfckpt``: see :mod:`tfckpt.cli`."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: one line, as once running
    print("tfckpt: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
