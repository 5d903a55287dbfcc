"""``python -m sk_zerror`` is the ``sk-zerror`` command."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
