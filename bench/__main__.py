"""``python -m bench``: run the host comparison (see bench/README.md)."""

import sys

from bench.run import main

sys.exit(main())
