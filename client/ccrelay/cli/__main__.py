import sys

from ccrelay.cli import main

sys.exit(main())
