"""``python -m consentry.cli``."""

import sys

from consentry.cli import main

sys.exit(main())
