"""The frozen bundle's entry point: `layerdeck` with no verb opens the window, else the CLI."""

from __future__ import annotations

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
