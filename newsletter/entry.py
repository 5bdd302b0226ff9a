"""Console-script entry point: keeps start-up lean before the CLI is imported."""

import sys


def main() -> None:
    # sqlite-utils imports pandas and numpy, when installed, only to map their scalar types
    # to column types; the store never sees such values, and the imports cost ~0.1 s a run.
    for name in ("numpy", "pandas"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    from newsletter.cli import main as run

    run()
