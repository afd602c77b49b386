"""``python -m consentry_examples.stripepy_like``: the stripepy-like command line."""

from __future__ import annotations

import sys

from consentry_examples.stripepy_like.cli import main

sys.exit(main())
