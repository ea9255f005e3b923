"""The frozen bundle's entry point: `layerdeck` with no verb opens the window, else the CLI.

The built-in store's containers re-enter the bundle with `--container-init PLAN` to run
their init inside the new namespaces (a frozen bundle has no `python -c`).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--container-init":
        from core.store.runtime import container_init

        container_init(sys.argv[2])
    from core.cli import main

    sys.exit(main())
