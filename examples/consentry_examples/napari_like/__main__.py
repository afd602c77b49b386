"""``python -m consentry_examples.napari_like``: the napari-like viewer (needs the ``gui`` extra)."""

from __future__ import annotations

import sys

try:
    from consentry_examples.napari_like.gui import main
except ImportError as error:  # qtpy, or a Qt binding, is missing
    sys.stderr.write(
        f"The napari-like viewer needs Qt ({error}).\n"
        'Install it with: pip install "consentry-examples[gui]" (qtpy and PySide6).\n'
    )
    raise SystemExit(1) from None

raise SystemExit(main())
