"""`python -m ccrelay_worker`: the worker image's entry point (see :mod:`ccrelay_worker.boot`)."""

from __future__ import annotations

import os
import sys

from ccrelay_worker.boot import configure_logging, main

if __name__ == "__main__":
    configure_logging(os.environ)
    sys.exit(main(sys.argv[1:]))
