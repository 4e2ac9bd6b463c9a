"""`python -m segtutor ...`: see `segtutor.cli`."""

import sys

from segtutor.cli import main

sys.exit(main())
