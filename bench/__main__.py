"""``python -m bench``: run the host comparison (see bench/README.md)."""

import sys

from bench import clientenv

clientenv.apply(sys.argv[1:])

from bench.run import main  # noqa: E402  (gRPC must see the environment set above)

sys.exit(main())
