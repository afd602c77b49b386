"""``python -m consentry_examples.slicer_like``: a short session of the slicer-like host."""

from __future__ import annotations

import sys

from consentry_examples.slicer_like.app import main

sys.exit(main())
