"""Test fixture: a script a skill ships (never run by the tests)."""

import os
import sys

FONT_DIR = os.environ.get("PDF_FONT_DIR", "/usr/share/fonts")
print(sys.argv[1:], FONT_DIR)
