"""Console-script entry point."""

from newsletter.cli import main

__all__ = ["main"]
